"""What a stage is: a small declaration in its own folder, etl/stages/<name>/__init__.py.

A stage module defines `STAGE = Stage(...)`; the application layer (etl/app/registry.py) finds it
and the engine runs it without importing any stage. Everything about a stage lives in its folder:
the declaration and algorithm, items.sql and write.sql, its tables (migrations/), its columns of
the views (views.sql), what the report shows of it (report.toml), its models (models.toml), its
Python requirements (requirements.txt) and its documentation (README.md). docs/adding-a-stage.md
walks through one.

Lineage is declared, not computed by the stage: `reads` says which upstream stages' outputs an
item uses and through which column of its items query (the upstream key: a track id, a crop id);
`outputs` says what the item produced under which keys. The engine hashes both into fingerprints
(see etl/engine/lineage.py). `version` is the stage's code version: bump it when the algorithm changes its
results, and every item of the stage is recomputed (and, where the results changed, its dependants).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.engine import resources
from etl.engine.errors import Reason  # noqa: F401  (stages declare `unavailable` with it from here)
from etl.engine.tables import Write

if TYPE_CHECKING:
    import duckdb

    from etl.engine.pool import Outcome


def unreadable(error: OSError) -> Reason:
    """Why a stage cannot run when a model file or folder its settings name cannot be read (its
    permissions): what `etl status`, `etl models` and `etl run` say, not an error that stops them."""
    what, why = error.filename or "its model files", error.strerror or str(error)
    return Reason(f"cannot read {what}: {why} (check the permissions of the folder its settings name)",
                  f"cannot read {what}: {why}")


def short_reason(reason: str | None) -> str | None:
    """The one-line form of a stage's `unavailable()` answer (a plain string is its own)."""
    return None if reason is None else getattr(reason, "short", reason)


@dataclass(frozen=True)
class NoParams:
    """For stages without parameters."""


@dataclass(frozen=True)
class Read:
    """An upstream stage whose output this stage's items use, found by `key`: the column of this
    stage's items query that holds the upstream key (e.g. "track_id" for a per-track stage read
    by a per-crop one)."""

    stage: str
    key: str = "item_id"
    # Optional: a key the upstream stage produced nothing under adds nothing to the fingerprint
    # (instead of "absent"). For a read that only some items have (the multitrack stage's tracks),
    # added to a stage with a store full of results: those results stay current.
    optional: bool = False
    # Whether the upstream stage's items may share output keys (its `shared_keys`): set by the
    # registry (etl/app/registry.py), which knows every stage. None (a stage used outside the
    # registry): assume so, the join that is right either way.
    shared: bool | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    # Pure worker function: (item dict, params) -> result. Raises ItemError / SkipItem.
    process: Callable[[dict[str, Any], Any], Any]
    # Writes the results of one batch inside the engine's transaction (with the items' state): a
    # `Write` declaration (etl/engine/tables.py: the rows each done outcome makes, the statements of
    # write.sql that store them) or, for a write that does more, a function (con, outcomes, params).
    write: Write | Callable[[duckdb.DuckDBPyConnection, list[Outcome], Any], None] | None = None
    # Every item the stage should have (default: the stage folder's items.sql), as columns
    # `item_id`, `input_fp` (what the item reads from outside the store, e.g. a file's size and
    # mtime; NULL when its upstream outputs say it all), the key columns named in `reads`, and the
    # payload the worker needs. The engine derives fingerprints and "pending" from it. An item that
    # disappears from it is retired: its rows cleared and its files superseded.
    # (Tests and benchmarks may give the SQL text itself instead of a file name.)
    items_sql: str = ""
    needs: tuple[str, ...] = ()
    # The upstream outputs each item's fingerprint covers (see `Read`). Stages in `reads` are
    # implicitly in `needs`.
    reads: tuple[Read, ...] = ()
    # (result, item) -> {key: what was produced under it}: hashed into stage_outputs for the
    # stages that read this one. Default: the whole result under the item's id.
    outputs: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    # Several items may produce the same output key (ingest: several paths holding the same
    # audio are one track). Stages read by others join this stage's outputs with a GROUP BY then.
    shared_keys: bool = False
    # Artifact stages: (result) -> the files the result names (absolute paths). Every other file in
    # the item's folder is superseded once the result is committed.
    files: Callable[[Any], list[str]] | None = None
    # The statements named `clear*` (and `retire*`, run only when the item is gone for good) delete
    # an item's rows (table `cleared`, column item_id), run by the engine before a done or skipped
    # result is written and when an item is retired. A failed outcome never clears: the previous
    # good result stays. Default: the stage folder's write.sql, where there is one.
    clear_sql: str | None = None
    # The items query yields a boolean `present`: false when the source file the item reads is gone
    # (from a source folder that is still reachable). Such an item is held: kept as it is (rows,
    # files, outputs), neither processed nor retired, and counted as `missing`, until its file is
    # back or `etl gc` forgets it after [gc] missing_grace_days.
    presence: bool = False
    # Code version: part of the stage's own hash (bump when results change).
    version: int = 1
    Params: type = NoParams
    # Loads models once per worker process.
    init_worker: Callable[[Any], None] | None = None
    # Coordinator-side look at the world outside the database before items are selected (ingest
    # walks the source folders): (params, source folders, the store's own paths to leave out) -> a
    # function that records what was found, run inside the engine's transaction. The walk itself
    # holds no database lock.
    discover: Callable[[Any, list[str], tuple[str, ...]], Callable[[duckdb.DuckDBPyConnection], None]] | None = None
    # Returns why the whole stage cannot run here (e.g. model weights missing), or None: a `Reason`
    # when the whole text (how to install) is longer than a status line.
    unavailable: Callable[[Any], str | None] | None = None
    # Model-backed stages: (params) -> one dict per model (name, found, files, licence, install) for
    # `etl models`.
    models: Callable[[Any], list[dict[str, Any]]] | None = None
    # Model-backed stages: (params) -> the files whose content the results depend on beyond the
    # parameters (weights, label metadata, and which heads are installed). The engine folds their
    # fingerprint into the stage hash, so installing, replacing or removing one re-queues the items.
    model_files: Callable[[Any], list[str]] | None = None
    # (params) -> named values the items query uses as `$name`, bound wherever the engine runs it
    # (pending, counts, payloads, retiring). For what an item's fingerprint needs beyond the stage
    # hash without being a stored output: the captions stage binds each prompt kind with its
    # template's hash, so an edited template re-queues that kind's items and no other.
    item_binds: Callable[[Any], dict[str, Any]] | None = None
    # Writes artifact files: each item gets `artifact_dir`, its own folder
    # (<data_dir>/<stage name>/<id[:2]>/<id>, absolute), which holds only its files.
    artifacts: bool = False
    batch_size: int | None = None  # default: [run] batch_size
    # Items per pool task: >1 for items that take milliseconds, or for `process_batch`; a function of
    # the params where a setting decides it (a model's batch).
    chunk_size: int | Callable[[Any], int] = 1
    # Optional, for models that run faster on several items at once: (items of one chunk, params) ->
    # one result per item, in order, or the exception that item raised (it alone fails). Raising
    # as a whole makes the engine run the chunk's items one by one through `process`, so a failure
    # the batch cannot pin on one item still lands on the right one. `process` must give each item
    # the result the batch gives it.
    process_batch: Callable[[list[dict[str, Any]], Any], list[Any]] | None = None
    # The stage's folder: etl/stages/<name> by default; a stage kept in a package of its own
    # (`MUSIC_ETL_STAGE_PACKAGES`, see docs/adding-a-stage.md) passes `folder=Path(__file__).parent`.
    folder: Path | None = None

    def __post_init__(self) -> None:
        if self.folder is None:
            object.__setattr__(self, "folder", resources.stage_dir(self.name))
        # In-tree stages name their SQL "stages/<name>/<file>.sql" (as their own code does); a stage
        # elsewhere by its path.
        prefix = f"stages/{self.name}" if self.folder == resources.stage_dir(self.name) else str(self.folder)
        if not self.items_sql:
            object.__setattr__(self, "items_sql", f"{prefix}/items.sql")
        if self.clear_sql is None and resources.has_sql(f"{prefix}/write.sql"):
            object.__setattr__(self, "clear_sql", f"{prefix}/write.sql")
        if isinstance(self.write, Write) and not self.write.sql:  # the module's own `write` too
            object.__setattr__(self.write, "sql", f"{prefix}/write.sql")

    def why_unavailable(self, params: Any) -> str | None:
        """`unavailable(params)`, where a model file or folder this user may not read is a reason too."""
        try:
            return self.unavailable(params) if self.unavailable is not None else None
        except OSError as error:
            return unreadable(error)

    def chunk_items(self, params: Any) -> int:
        """Items per pool task under these params."""
        return max(1, self.chunk_size(params) if callable(self.chunk_size) else self.chunk_size)

    @property
    def upstream(self) -> tuple[str, ...]:
        """Every stage that must run before this one."""
        return tuple(dict.fromkeys([*self.needs, *(r.stage for r in self.reads)]))
