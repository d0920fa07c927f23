"""Lineage in the engine: output fingerprints, early cut-off, retirement, artifacts that follow commits.

Toy stages over a test table, the in-process executor. Each test names the finding of issue 10
it reproduces where there is one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.app import registry
from etl.app import pipeline
from etl.engine import artifacts, lineage
from etl.engine.config import Config, not_hashed
from etl.engine.errors import TransientError
from etl.engine.runner import RunOptions, StageRunner, stage_counts, sweep_superseded
from etl.engine.stage import Read, Stage
from etl.app.store import open_writer


@dataclass(frozen=True)
class UpParams:
    factor: int = 2
    label: str = "a"      # hashed, but changes no result (like ingest's verify_s)
    fail: str = ""        # an item id whose next attempt fails (transiently)


def up_process(item: dict[str, Any], params: UpParams) -> int:
    if item["item_id"] == params.fail:
        raise TransientError("the disk was busy")
    return item["value"] * params.factor


def up_write(con: duckdb.DuckDBPyConnection, outcomes: list, params: UpParams) -> None:
    for o in outcomes:
        if o.status == "done":
            con.execute("INSERT INTO up_rows VALUES (?, ?)", [o.item_id, o.result])


UP = Stage(name="up", description="", process=up_process, write=up_write, Params=UpParams,
           clear_sql="DELETE FROM up_rows WHERE id IN (SELECT item_id FROM cleared)",
           items_sql="SELECT id AS item_id, CAST(value AS VARCHAR) AS input_fp, value FROM toy_items")


@dataclass(frozen=True)
class DownParams:
    offset: int = 1


def down_process(item: dict[str, Any], params: DownParams) -> str:
    """Writes a file named after its content into the item's own folder (like crops)."""
    if item.get("fail_down"):
        raise TransientError("out of disk")
    folder = Path(item["artifact_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    temporary = artifacts.temporary_name(folder, "out.txt")
    temporary.write_text(str(item["up"] + params.offset))
    path, _ = artifacts.publish(temporary, "out", "txt")
    return str(path)


def down_write(con: duckdb.DuckDBPyConnection, outcomes: list, params: DownParams) -> None:
    for o in outcomes:
        if o.status == "done":
            con.execute("INSERT INTO down_rows VALUES (?, ?)", [o.item_id, o.result])


DOWN = Stage(name="down", description="", process=down_process, write=down_write, Params=DownParams,
             reads=(Read("up"),), artifacts=True, files=lambda result: [result],
             outputs=lambda result, item: {item["item_id"]: Path(result).name},
             clear_sql="DELETE FROM down_rows WHERE id IN (SELECT item_id FROM cleared)",
             items_sql="SELECT u.id AS item_id, NULL AS input_fp, u.doubled AS up, "
                       "coalesce(f.fail, false) AS fail_down FROM up_rows u LEFT JOIN fail_down f USING (id)")


def config(**cli: Any) -> Config:
    return Config.load({**registry.params_types(), "up": UpParams, "down": DownParams}, environ={},
                       cli={"run.executor": "inline", "run.batch_size": 3, **cli})


@pytest.fixture
def writer(db: Path):
    w = open_writer(db, create=True)
    w.con.execute("CREATE TABLE toy_items (id VARCHAR PRIMARY KEY, value INTEGER)")
    w.con.execute("CREATE TABLE up_rows (id VARCHAR PRIMARY KEY, doubled INTEGER)")
    w.con.execute("CREATE TABLE down_rows (id VARCHAR PRIMARY KEY, path VARCHAR)")
    w.con.execute("CREATE TABLE fail_down (id VARCHAR PRIMARY KEY, fail BOOLEAN)")
    w.con.execute("INSERT INTO toy_items SELECT 'i' || lpad(CAST(v AS VARCHAR), 3, '0'), v FROM range(1, 7) t(v)")
    yield w
    w.close()


def run(writer, stage: Stage, cfg: Config | None = None, run_id: str = "r"):
    return StageRunner(writer, stage, cfg or config(), RunOptions(run_id=run_id, executor="inline")).run()


def pending(writer, stage: Stage, cfg: Config | None = None) -> int:
    params = (cfg or config()).params(stage.name)
    return stage_counts(writer.con, stage, params)["pending"]


def data_dir(writer) -> Path:
    return (writer.db_path.parent / "etl-data").resolve()


def files_on_disk(writer) -> set[str]:
    folder = data_dir(writer)
    return set(artifacts.walk(folder)) if folder.is_dir() else set()


def referenced(writer) -> set[str]:
    rows = writer.con.execute("SELECT unnest(files) FROM stage_items WHERE files IS NOT NULL").fetchall()
    return {r[0] for r in rows}


def both(writer, cfg: Config | None = None) -> None:
    run(writer, UP, cfg)
    run(writer, DOWN, cfg)


def test_a_setting_that_changes_no_result_stops_at_its_stage(writer) -> None:
    """Finding 5: upstream *parameters* used to enter downstream inputs, so e.g. ingest's verify_s
    re-ran demucs on the whole library. Now the engine compares what upstream produced."""
    both(writer)
    relabelled = config(**{"up.label": "b"})
    assert pending(writer, UP, relabelled) == 6  # its own items re-run...
    run(writer, UP, relabelled)
    assert pending(writer, DOWN, relabelled) == 0  # ...and their output is the same: nothing below


def test_a_changed_output_requeues_exactly_its_dependants(writer) -> None:
    both(writer)
    writer.con.execute("UPDATE toy_items SET value = 40 WHERE id = 'i004'")
    run(writer, UP)
    assert pending(writer, DOWN) == 1
    report = run(writer, DOWN)
    assert report.done == 1
    assert writer.con.execute("SELECT path FROM down_rows WHERE id = 'i004'").fetchone()[0].endswith(".txt")
    assert (Path(writer.con.execute("SELECT path FROM down_rows WHERE id = 'i004'").fetchone()[0])
            .read_text() == "81")


def test_a_stage_version_bump_recomputes_the_stage(writer) -> None:
    both(writer)
    bumped = Stage(**{**UP.__dict__, "version": 2})
    assert pending(writer, bumped) == 6


def test_an_item_that_disappears_is_retired_with_its_rows_and_files(writer) -> None:
    both(writer)
    old = set(files_on_disk(writer))
    writer.con.execute("DELETE FROM toy_items WHERE id = 'i002'")
    assert run(writer, UP).retired == 1
    assert writer.con.execute("SELECT count(*) FROM up_rows WHERE id = 'i002'").fetchone()[0] == 0
    assert run(writer, DOWN).retired == 1
    assert writer.con.execute("SELECT count(*) FROM down_rows WHERE id = 'i002'").fetchone()[0] == 0
    assert writer.con.execute("SELECT count(*) FROM stage_items WHERE item_id = 'i002'").fetchone()[0] == 0
    assert writer.con.execute("SELECT count(*) FROM stage_outputs WHERE item_id = 'i002'").fetchone()[0] == 0
    assert len(files_on_disk(writer)) == len(old) - 1
    assert files_on_disk(writer) == referenced(writer)


def test_a_failed_attempt_keeps_the_previous_good_result(writer) -> None:
    """Finding 6: a failure counted as "replaced": a transient failure dropped good rows and files,
    and an upstream failure cascaded into its dependants."""
    both(writer)
    before = writer.con.execute("SELECT * FROM down_rows ORDER BY id").fetchall()
    failing = config(**{"up.factor": 3, "up.fail": "i003"})
    run(writer, UP, failing)
    status, = writer.con.execute("SELECT status FROM stage_items WHERE stage='up' AND item_id='i003'").fetchone()
    assert status == "failed"
    assert writer.con.execute("SELECT doubled FROM up_rows WHERE id = 'i003'").fetchone()[0] == 6  # kept
    run(writer, DOWN, failing)
    after = dict(writer.con.execute("SELECT * FROM down_rows").fetchall())
    assert after["i003"] == dict(before)["i003"]  # the failure did not re-queue it
    assert Path(after["i003"]).is_file()
    # Down failing itself keeps its old row and file too.
    writer.con.execute("INSERT INTO fail_down VALUES ('i001', true)")
    writer.con.execute("UPDATE toy_items SET value = 10 WHERE id = 'i001'")
    run(writer, UP, failing)
    run(writer, DOWN, failing)
    assert writer.con.execute("SELECT status FROM stage_items WHERE stage='down' AND item_id='i001'").fetchone()[0] \
        == "failed"
    assert writer.con.execute("SELECT path FROM down_rows WHERE id = 'i001'").fetchone()[0] == after["i001"]
    assert Path(after["i001"]).read_text() == "4"
    assert files_on_disk(writer) == referenced(writer)


def test_superseded_files_go_only_after_the_commit_and_a_kill_in_between_is_swept(writer, monkeypatch) -> None:
    """Finding 6: files were deleted before the commit that superseded them."""
    both(writer)
    old_path = writer.con.execute("SELECT path FROM down_rows WHERE id = 'i005'").fetchone()[0]
    writer.con.execute("UPDATE toy_items SET value = 50 WHERE id = 'i005'")
    run(writer, UP)
    # A run killed between its commit and the removal: the commit lists the old file...
    monkeypatch.setattr(artifacts, "remove", lambda paths, folder: [])
    run(writer, DOWN)
    monkeypatch.undo()
    new_path = writer.con.execute("SELECT path FROM down_rows WHERE id = 'i005'").fetchone()[0]
    assert new_path != old_path and Path(new_path).is_file()
    assert Path(old_path).is_file()  # not removed yet...
    listed = writer.con.execute("SELECT path FROM superseded_files").fetchall()
    assert listed == [(os.path.relpath(old_path, data_dir(writer)),)]
    # ...and the next run's start sweeps it.
    with writer.transaction() as con:
        assert sweep_superseded(con, data_dir(writer)) == 1
    assert not Path(old_path).exists()
    assert writer.con.execute("SELECT count(*) FROM superseded_files").fetchone()[0] == 0
    assert files_on_disk(writer) == referenced(writer)


def test_gc_removes_what_no_row_names(writer, tmp_path: Path) -> None:
    both(writer)
    folder = data_dir(writer) / "down" / "i0" / "i001"
    stray = folder / ".out.txt.tmp-12345"  # a worker killed mid-write
    stray.write_text("half")
    orphan = folder / "out-0123456789ab.txt"  # written, never committed
    orphan.write_text("x")
    db = writer.db_path
    writer.close()
    cfg = config()
    dry = pipeline.gc(db, cfg, dry_run=True)
    assert sorted(dry["orphans"]) == sorted(os.path.relpath(p, data_dir(writer)) for p in (stray, orphan))
    assert stray.exists() and orphan.exists()
    pipeline.gc(db, cfg)
    assert not stray.exists() and not orphan.exists()
    assert files_on_disk(writer) == referenced(writer)


def test_gc_removes_only_what_a_stage_could_have_written(writer, tmp_path: Path) -> None:
    """A user's files in the data folder, beside the stages' folders, are not orphans."""
    both(writer)
    notes, mine = data_dir(writer) / "notes.txt", data_dir(writer) / "mine" / "model.pt"
    mine.parent.mkdir()
    notes.write_text("mine")
    mine.write_bytes(b"weights")
    db = writer.db_path
    writer.close()
    assert pipeline.gc(db, config(), dry_run=True)["orphans"] == []
    pipeline.gc(db, config())
    assert notes.read_text() == "mine" and mine.read_bytes() == b"weights"


def full_counts(writer, stage: Stage, cfg: Config | None = None) -> dict[str, int]:
    params = (cfg or config()).params(stage.name)
    row = writer.con.execute(lineage.stage_sql(stage, "counts"),
                             {"stage": stage.name, "stage_hash": lineage.stage_hash(stage, params)}).fetchone()
    return dict(zip(lineage.COUNT_COLUMNS, row))


def test_status_counts_without_lineage_joins_only_while_nothing_upstream_moved(writer) -> None:
    """`etl status` skips the upstream joins after a whole pass; any upstream commit, a new setting
    or a partial run sends it back to the full count, so it always agrees with it."""
    def agree(cfg: Config | None = None) -> bool:
        fast = lineage._checked(writer.con, DOWN) == (
            lineage.stage_hash(DOWN, (cfg or config()).params("down")), lineage.upstream_versions(writer.con, DOWN))
        assert stage_counts(writer.con, DOWN, (cfg or config()).params("down")) == full_counts(writer, DOWN, cfg)
        return fast

    both(writer)
    assert agree()  # a whole pass: the check holds
    writer.con.execute("UPDATE toy_items SET value = 70 WHERE id = 'i006'")
    run(writer, UP)
    assert not agree() and pending(writer, DOWN) == 1  # upstream committed: full count
    run(writer, DOWN)
    assert agree()
    assert not agree(config(**{"down.offset": 5}))  # another setting: full count
    writer.con.execute("UPDATE toy_items SET value = 80 WHERE id = 'i006'")
    run(writer, UP)
    run(writer, DOWN)
    assert agree()
    writer.con.execute("UPDATE toy_items SET value = 90 WHERE id = 'i006'")
    writer.con.execute("INSERT INTO toy_items VALUES ('i007', 7)")
    run(writer, UP)
    StageRunner(writer, DOWN, config(), RunOptions(run_id="part", executor="inline", limit=1)).run()
    assert not agree() and pending(writer, DOWN) == 1  # a partial pass records nothing


def test_every_artifact_stage_fingerprints_its_output_without_file_paths() -> None:
    """A result naming its files by absolute path would make a store and a fresh run of the same
    music (another data folder) disagree on every output fingerprint, and re-queue dependants after
    a move: stages writing files must say what their output is (`outputs`), content hashes in."""
    from etl.app import registry

    artifact_stages = [s for s in registry.all_stages() if s.artifacts]
    assert {"stems", "crops", "midi", "multitrack"} <= {s.name for s in artifact_stages}
    assert [s.name for s in artifact_stages if s.outputs is None] == []


@dataclass(frozen=True)
class VariantParams:
    # variant=version; not in the stage hash: each variant's items take their own version as input
    recipes: tuple[str, ...] = not_hashed(("a=1", "b=1"))


VARIANT = Stage(name="variant", description="", process=lambda item, params: item["item_id"], Params=VariantParams,
                item_binds=lambda params: {"variants": [dict(zip(("name", "fp"), r.split("="))) for r in params.recipes]},
                items_sql="SELECT t.id || '/' || v.name AS item_id, v.fp AS input_fp FROM toy_items AS t "
                          "CROSS JOIN (SELECT unnest(CAST($variants AS STRUCT(name VARCHAR, fp VARCHAR)[])) AS v)")


def test_item_binds_give_items_their_own_inputs_from_the_params(writer) -> None:
    """A value bound into the items query (Stage.item_binds) re-queues only the items it enters,
    in `etl status` and in the run; an entry that goes away retires its items."""
    def cfg(*recipes: str) -> Config:
        return Config.load({**registry.params_types(), "variant": VariantParams}, environ={},
                           cli={"run.executor": "inline", "variant.recipes": ",".join(recipes)})

    assert run(writer, VARIANT, cfg("a=1", "b=1")).done == 12
    assert pending(writer, VARIANT, cfg("a=1", "b=1")) == 0
    assert pending(writer, VARIANT, cfg("a=1", "b=2")) == 6  # only b's items
    assert run(writer, VARIANT, cfg("a=1", "b=2")).done == 6
    report = run(writer, VARIANT, cfg("b=2"))
    assert (report.done, report.retired) == (0, 6)
