"""What a stage is: a small declaration in its own module under etl/stages/.

A stage module defines `STAGE = Stage(...)`. The engine finds it there; adding a stage means
adding that module, its SQL (sql/stages/<name>.sql) and, when it has result tables, a migration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from etl.pool import Outcome


@dataclass(frozen=True)
class NoParams:
    """For stages without parameters."""


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    # sql/<items_sql>: every item the stage should have, as columns `item_id`, `input_fp` (a text
    # that changes whenever the item's input changes, upstream params hashes included) and the
    # payload the worker needs. The engine turns it into "pending" by comparing with stage_items.
    # (Tests and benchmarks may give the SQL text itself instead of a file name.)
    items_sql: str
    # Pure worker function: (item dict, params) -> result. Raises ItemError / SkipItem.
    process: Callable[[dict[str, Any], Any], Any]
    # Writes the results of one batch inside the engine's transaction (with the items' state).
    write: Callable[[duckdb.DuckDBPyConnection, list[Outcome], Any], None] | None = None
    needs: tuple[str, ...] = ()
    Params: type = NoParams
    # Loads models once per worker process.
    init_worker: Callable[[Any], None] | None = None
    # Coordinator-side look at the world outside the database before items are selected (ingest
    # walks the source folders): (params, source folders) -> a function that records what was
    # found, run inside the engine's transaction. The walk itself holds no database lock.
    discover: Callable[[Any, list[str]], Callable[[duckdb.DuckDBPyConnection], None]] | None = None
    # Returns why the whole stage cannot run here (e.g. model weights missing), or None.
    unavailable: Callable[[Any], str | None] | None = None
    # Model-backed stages: (params) -> one dict per model (name, found, files, licence, install) for
    # `etl models`.
    models: Callable[[Any], list[dict[str, Any]]] | None = None
    # Writes artifact files: each item gets `artifact_dir` (<data_dir>/<stage name>, absolute).
    artifacts: bool = False
    batch_size: int | None = None  # default: [run] batch_size
    chunk_size: int = 1            # items per pool task: >1 for items that take milliseconds
