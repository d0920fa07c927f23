"""The stage engine with the in-process executor and toy stages over a test table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.app import registry
from etl.engine.config import Config
from etl.engine.errors import BadInput, Interrupted, SkipItem, TransientError
from etl.engine.runner import RunOptions, StageRunner, stage_counts
from etl.engine.stage import Stage
from etl.app.store import open_writer


@dataclass(frozen=True)
class ToyParams:
    factor: int = 2


def double(item: dict[str, Any], params: ToyParams) -> int:
    value = item["value"]
    if value == 13:
        raise BadInput("thirteen is unlucky")
    if value == 7:
        raise TransientError("seven is busy")
    if value == 0:
        raise SkipItem("nothing to do for zero")
    if value == 99:
        raise ZeroDivisionError("a bug")
    return value * params.factor


def write_doubled(con: duckdb.DuckDBPyConnection, outcomes: list, params: ToyParams) -> None:
    for o in outcomes:
        if o.status == "done":
            con.execute("INSERT OR REPLACE INTO doubled VALUES (?, ?)", [o.item_id, o.result])


TOY = Stage(name="toy", description="doubles numbers", process=double, write=write_doubled, Params=ToyParams,
            items_sql="SELECT id AS item_id, CAST(value AS VARCHAR) AS input_fp, value FROM toy_items")


def summed(item: dict[str, Any], params: Any) -> int:
    return item["doubled"] + 1


DOWNSTREAM = Stage(
    name="downstream", description="depends on toy", process=summed, needs=("toy",),
    # Its input fingerprint includes the upstream state's fingerprint: a toy rerun makes it pending.
    items_sql="SELECT d.id AS item_id, s.fingerprint AS input_fp, d.doubled FROM doubled d "
              "JOIN stage_items s ON s.stage = 'toy' AND s.item_id = d.id AND s.status = 'done'",
)


def make_config(**cli: Any) -> Config:
    settings = {"run.executor": "inline", "run.batch_size": 2, **cli}
    return Config.load({**registry.params_types(), "toy": ToyParams, "downstream": DOWNSTREAM.Params},
                       environ={}, cli=settings)


@pytest.fixture
def writer(db: Path):
    w = open_writer(db, create=True)
    w.con.execute("CREATE TABLE toy_items (id VARCHAR PRIMARY KEY, value INTEGER)")
    w.con.execute("CREATE TABLE doubled (id VARCHAR PRIMARY KEY, doubled INTEGER)")
    w.con.execute("INSERT INTO toy_items SELECT 'i' || lpad(CAST(v AS VARCHAR), 3, '0'), v FROM range(1, 11) t(v)")
    yield w
    w.close()


def run_toy(writer, config: Config | None = None, stage: Stage = TOY, **options: Any):
    config = config or make_config()
    return StageRunner(writer, stage, config, RunOptions(run_id=options.pop("run_id", "r1"), executor="inline",
                                                         **options)).run()


def states(writer) -> dict[str, tuple]:
    rows = writer.con.execute(
        "SELECT item_id, status, attempts, last_error, retryable FROM stage_items WHERE stage='toy'").fetchall()
    return {r[0]: r[1:] for r in rows}


def test_processes_everything_once_and_records_state(writer) -> None:
    report = run_toy(writer)
    assert (report.pending, report.done, report.failed, report.skipped) == (10, 9, 1, 0)
    assert writer.con.execute("SELECT sum(doubled) FROM doubled").fetchone()[0] == 2 * (55 - 7)
    seven = states(writer)["i007"]
    assert seven == ("failed", 1, "seven is busy", True)
    # Nothing pending now except the retryable failure, which is retried automatically.
    report = run_toy(writer, run_id="r2")
    assert report.pending == 1 and report.failed == 1
    assert states(writer)["i007"][1] == 2


def test_permanent_failures_wait_for_retry_failed_up_to_max_attempts(writer) -> None:
    writer.con.execute("UPDATE toy_items SET value = 13 WHERE id = 'i003'")
    run_toy(writer)
    assert states(writer)["i003"] == ("failed", 1, "thirteen is unlucky", False)
    assert run_toy(writer, run_id="r2").pending == 1  # only i007 (retryable)
    config = make_config(**{"run.max_attempts": 3})
    for attempt in (2, 3):
        report = StageRunner(writer, TOY, config, RunOptions(run_id=f"x{attempt}", executor="inline",
                                                             retry_failed=True)).run()
        assert states(writer)["i003"][1] == attempt
    report = StageRunner(writer, TOY, config, RunOptions(run_id="x4", executor="inline", retry_failed=True)).run()
    assert report.pending == 0  # both failures reached max_attempts
    assert states(writer)["i003"][1] == 3


def test_skips_and_unexpected_errors_are_recorded(writer) -> None:
    writer.con.execute("UPDATE toy_items SET value = 0 WHERE id = 'i001'")
    writer.con.execute("UPDATE toy_items SET value = 99 WHERE id = 'i002'")
    report = run_toy(writer)
    assert report.skipped == 1
    st = states(writer)
    assert st["i001"][0] == "skipped" and st["i001"][2] == "nothing to do for zero"
    assert st["i002"][0] == "failed" and "ZeroDivisionError: a bug" in st["i002"][2]


def test_changed_input_or_params_make_exactly_the_affected_items_pending(writer) -> None:
    run_toy(writer)
    writer.con.execute("UPDATE toy_items SET value = 11 WHERE id = 'i004'")
    report = run_toy(writer, run_id="r2")
    assert report.pending == 2  # i004 (changed) and i007 (retryable failure)
    assert writer.con.execute("SELECT doubled FROM doubled WHERE id='i004'").fetchone()[0] == 22
    report = run_toy(writer, make_config(**{"toy.factor": 3}), run_id="r3")
    assert report.pending == 10
    assert writer.con.execute("SELECT doubled FROM doubled WHERE id='i004'").fetchone()[0] == 33


def test_dependants_become_pending_when_upstream_reruns(writer) -> None:
    config = make_config()
    run_toy(writer, config)
    assert run_toy(writer, config, stage=DOWNSTREAM).done == 9
    assert stage_counts(writer.con, DOWNSTREAM, DOWNSTREAM.Params())["pending"] == 0
    changed = make_config(**{"toy.factor": 5})
    run_toy(writer, changed, run_id="r2")
    assert stage_counts(writer.con, DOWNSTREAM, DOWNSTREAM.Params())["pending"] == 9


def test_items_left_running_by_a_dead_run_are_picked_up(writer) -> None:
    writer.con.execute("INSERT INTO stage_items (stage, item_id, status, run_id) VALUES ('toy', 'i001', 'running', 'dead')")
    assert stage_counts(writer.con, TOY, ToyParams())["running"] == 1
    report = run_toy(writer)
    assert report.done == 9 and states(writer)["i001"][0] == "done"


def test_limit_and_dry_run(writer) -> None:
    assert run_toy(writer, dry_run=True).pending == 10
    assert writer.con.execute("SELECT count(*) FROM stage_items").fetchone()[0] == 0
    report = run_toy(writer, limit=4)
    assert report.processed == 4
    assert run_toy(writer, run_id="r2").pending == 6


def interrupting(item: dict[str, Any], params: Any) -> int:
    if item["value"] == 6:
        raise KeyboardInterrupt
    return item["value"]


def test_ctrl_c_commits_finished_batches_and_releases_the_rest(writer) -> None:
    stage = Stage(name="toy", description="", process=interrupting, write=write_doubled, Params=ToyParams,
                  items_sql=TOY.items_sql)
    with pytest.raises(Interrupted):
        run_toy(writer, stage=stage)
    st = states(writer)
    assert sorted(k for k, v in st.items() if v[0] == "done") == ["i001", "i002", "i003", "i004"]
    assert not [k for k, v in st.items() if v[0] == "running"]
    assert writer.con.execute("SELECT count(*) FROM doubled").fetchone()[0] == 4
    assert run_toy(writer, run_id="r2").pending == 6


def test_items_released_at_ctrl_c_go_back_to_what_they_were(writer) -> None:
    """A stopped run used to leave every claimed-but-unfinished item `pending`, though its last
    result was still current: status showed them pending and the next run redid them (found trying
    the README as a user)."""
    run_toy(writer)
    stage = Stage(name="toy", description="", process=interrupting, write=write_doubled, Params=ToyParams,
                  items_sql=TOY.items_sql)
    with pytest.raises(Interrupted):
        run_toy(writer, make_config(**{"toy.factor": 3}), stage=stage, run_id="r2")
    st = states(writer)
    assert not [k for k, v in st.items() if v[0] in ("running", "pending")]
    assert st["i007"][0] == "failed" and st["i009"][0] == "done"
    # Back under the old setting only the items the stopped run redid are pending.
    assert stage_counts(writer.con, TOY, ToyParams())["pending"] == 4


def test_a_failing_writer_fails_only_the_items_at_fault(writer) -> None:
    """A write error is isolated: the batch is retried in halves; the item at fault fails with the
    reason, the rest commit (before: the whole run stopped and the batch stayed `running`)."""
    def bad_write(con, outcomes, params):
        for o in outcomes:
            if o.status == "done":
                if o.item_id == "i004":
                    raise ValueError("value 8 does not fit its column")
                con.execute("INSERT INTO doubled VALUES (?, ?)", [o.item_id, o.result])

    stage = Stage(name="toy", description="", process=double, write=bad_write, Params=ToyParams,
                  items_sql=TOY.items_sql)
    report = run_toy(writer, make_config(**{"run.batch_size": 10}), stage=stage)
    st = states(writer)
    assert st["i004"][0] == "failed" and "could not store the result: ValueError: value 8" in st["i004"][2]
    assert st["i004"][3] is False  # a value that does not fit will not fit next time either
    assert sorted(k for k, v in st.items() if v[0] == "done") == [f"i{n:03d}" for n in (1, 2, 3, 5, 6, 8, 9, 10)]
    assert writer.con.execute("SELECT count(*) FROM doubled").fetchone()[0] == 8
    assert not [v for v in st.values() if v[0] == "running"]
    assert (report.done, report.failed) == (8, 2)


def test_a_stage_that_cannot_run_here_is_skipped_with_its_reason(writer) -> None:
    stage = Stage(name="toy", description="", process=double, Params=ToyParams, items_sql=TOY.items_sql,
                  unavailable=lambda params: "model toy.pt not found in /models; see README")
    report = run_toy(writer, stage=stage)
    assert report.skipped_reason == "model toy.pt not found in /models; see README"
    assert report.processed == 0
    assert writer.con.execute("SELECT count(*) FROM stage_items").fetchone()[0] == 0


# --- process_batch: a chunk of items at once -------------------------------------------------

_batch_calls: list[list[int]] = []


def double_batch(items: list[dict[str, Any]], params: ToyParams) -> list[Any]:
    """`double` on a whole chunk: an item's own error is returned in its place; 55 breaks the batch
    as a whole (as a model call does on an input it cannot take), so nothing says which item did it."""
    values = [item["value"] for item in items]
    _batch_calls.append(values)
    if 55 in values:
        raise RuntimeError("the batched call broke")
    results: list[Any] = []
    for item in items:
        try:
            results.append(double(item, params))
        except Exception as error:
            results.append(error)
    return results


def double_unless_55(item: dict[str, Any], params: ToyParams) -> int:
    if item["value"] == 55:
        raise BadInput("fifty-five cannot be doubled")
    return double(item, params)


BATCHED = Stage(name="toy", description="doubles numbers in chunks", process=double_unless_55,
                process_batch=double_batch, write=write_doubled, Params=ToyParams, items_sql=TOY.items_sql,
                chunk_size=lambda params: params.factor + 1)


def test_process_batch_gives_each_item_its_own_outcome(writer) -> None:
    writer.con.execute("UPDATE toy_items SET value = 13 WHERE id = 'i003'")
    writer.con.execute("UPDATE toy_items SET value = 0 WHERE id = 'i004'")
    _batch_calls.clear()
    report = run_toy(writer, stage=BATCHED)
    batched = (states(writer), writer.con.execute("SELECT * FROM doubled ORDER BY id").fetchall())
    # The inline executor hands the whole claim batch ([run] batch_size = 2) to process_batch.
    assert _batch_calls == [[1, 2], [13, 0], [5, 6], [7, 8], [9, 10]]
    assert (report.done, report.failed, report.skipped) == (7, 2, 1)
    st = batched[0]
    assert st["i003"] == ("failed", 1, "thirteen is unlucky", False)
    assert st["i004"][0] == "skipped" and st["i004"][2] == "nothing to do for zero"
    assert st["i007"] == ("failed", 1, "seven is busy", True)
    # The same items one by one (the plain stage) end exactly the same way.
    writer.con.execute("DELETE FROM doubled")
    writer.con.execute("DELETE FROM stage_items")
    run_toy(writer, run_id="plain")
    assert (states(writer), writer.con.execute("SELECT * FROM doubled ORDER BY id").fetchall()) == batched


def test_a_batch_that_breaks_as_a_whole_is_run_one_by_one(writer) -> None:
    writer.con.execute("UPDATE toy_items SET value = 55 WHERE id = 'i006'")
    _batch_calls.clear()
    report = run_toy(writer, stage=BATCHED)
    assert [5, 55] in _batch_calls
    assert (report.done, report.failed) == (8, 2)  # 55 and the retryable 7
    st = states(writer)
    assert st["i006"] == ("failed", 1, "fifty-five cannot be doubled", False)
    assert writer.con.execute("SELECT doubled FROM doubled WHERE id = 'i005'").fetchone() == (10,)


def test_chunk_size_may_follow_the_params() -> None:
    assert BATCHED.chunk_items(ToyParams(factor=3)) == 4
    assert TOY.chunk_items(ToyParams()) == 1
