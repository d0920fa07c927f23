"""The real spawn pool: models load once per worker, a crashing worker fails only its item."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from etl.app import registry
from etl.engine.config import Config
from etl.engine.runner import RunOptions, StageRunner
from etl.engine.stage import Stage
from etl.app.store import open_writer

_loads = 0


def load_model(params: Any) -> None:
    global _loads
    _loads += 1


def report_worker(item: dict[str, Any], params: Any) -> dict[str, int]:
    if item["item_id"] == "crash":
        os.abort()  # what a segfault in a decoder looks like to the pool
    return {"pid": os.getpid(), "loads": _loads}


def collect(con, outcomes, params) -> None:
    for o in outcomes:
        if o.status == "done":
            con.execute("INSERT INTO seen VALUES (?, ?, ?)", [o.item_id, o.result["pid"], o.result["loads"]])


def make_stage(items_sql: str) -> Stage:
    return Stage(name="probe", description="", process=report_worker, write=collect, init_worker=load_model,
                 items_sql=items_sql, chunk_size=2)


def run(db: Path, stage: Stage, workers: int = 2):
    writer = open_writer(db, create=True)
    writer.con.execute("CREATE TABLE IF NOT EXISTS seen (item_id VARCHAR, pid INTEGER, loads INTEGER)")
    config = Config.load({**registry.params_types(), "probe": stage.Params}, environ={},
                         cli={"run.batch_size": 10})
    try:
        report = StageRunner(writer, stage, config, RunOptions(run_id="p", workers=workers)).run()
        rows = writer.con.execute("SELECT item_id, pid, loads FROM seen").fetchall()
        failed = writer.con.execute("SELECT item_id, last_error FROM stage_items WHERE status = 'failed'").fetchall()
    finally:
        writer.close()
    return report, rows, failed


def test_model_is_loaded_once_per_worker_process(db: Path) -> None:
    stage = make_stage("SELECT 'i' || CAST(i AS VARCHAR) AS item_id, '' AS input_fp FROM range(60) t(i)")
    report, rows, _ = run(db, stage)
    assert report.done == 60
    assert {loads for _, _, loads in rows} == {1}
    pids = {pid for _, pid, _ in rows}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids


def test_a_crashing_item_fails_alone_and_the_rest_completes(db: Path) -> None:
    stage = make_stage("SELECT item_id, '' AS input_fp FROM (SELECT 'i' || CAST(i AS VARCHAR) AS item_id "
                       "FROM range(30) t(i) UNION ALL SELECT 'crash') ")
    report, rows, failed = run(db, stage)
    assert (report.done, report.failed) == (30, 1)
    assert len(rows) == 30
    assert failed[0][0] == "crash" and "worker process died" in failed[0][1]


def hang_on_one(item: dict[str, Any], params: Any) -> dict[str, int]:
    if item["item_id"] == "hang":
        import threading

        threading.Event().wait()  # a decoder or model that never returns
    if item["item_id"] == "spin":
        while True:  # a pure-Python busy loop holding the GIL
            pass
    return {"pid": os.getpid(), "loads": _loads}


def _items(*extra: str, n: int = 20) -> str:
    union = "".join(f" UNION ALL SELECT '{name}'" for name in extra)
    return (f"SELECT item_id, '' AS input_fp FROM (SELECT 'i' || lpad(CAST(i AS VARCHAR), 2, '0') AS item_id "
            f"FROM range({n}) t(i){union}) ORDER BY item_id")


def _guard(seconds: int):
    """Fail (instead of hanging the suite) if the run never ends."""
    import signal

    def expired(signum, frame):
        raise TimeoutError(f"the run did not finish within {seconds} s")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


def test_a_hanging_item_times_out_alone_and_the_run_goes_on(db: Path) -> None:
    import signal
    import time

    stage = Stage(name="probe", description="", process=hang_on_one, write=collect, init_worker=load_model,
                  items_sql=_items("hang", "spin"), chunk_size=4)
    config = Config.load({**registry.params_types(), "probe": stage.Params}, environ={},
                         cli={"run.batch_size": 10, "probe.item_timeout_s": 2})
    writer = open_writer(db, create=True)
    writer.con.execute("CREATE TABLE IF NOT EXISTS seen (item_id VARCHAR, pid INTEGER, loads INTEGER)")
    _guard(120)
    started = time.monotonic()
    try:
        report = StageRunner(writer, stage, config, RunOptions(run_id="p", workers=2)).run()
        seen = writer.con.execute("SELECT item_id FROM seen").fetchall()
        failed = writer.con.execute("SELECT item_id, last_error, retryable FROM stage_items "
                                    "WHERE status = 'failed' ORDER BY item_id").fetchall()
    finally:
        signal.alarm(0)
        writer.close()
    elapsed = time.monotonic() - started
    assert (report.done, report.failed) == (20, 2)
    assert sorted(item for (item,) in seen) == [f"i{i:02d}" for i in range(20)]
    assert failed == [("hang", "timed out after 2 s", False), ("spin", "timed out after 2 s", False)]
    assert elapsed < 60


def test_a_timed_out_item_stays_failed_until_retry_failed(db: Path) -> None:
    stage = Stage(name="probe", description="", process=hang_on_one, write=collect,
                  items_sql=_items("hang", n=3), chunk_size=1)
    config = Config.load({**registry.params_types(), "probe": stage.Params}, environ={},
                         cli={"run.item_timeout_s": 1})
    writer = open_writer(db, create=True)
    writer.con.execute("CREATE TABLE IF NOT EXISTS seen (item_id VARCHAR, pid INTEGER, loads INTEGER)")
    import signal

    _guard(120)
    try:
        first = StageRunner(writer, stage, config, RunOptions(run_id="a", workers=1)).run()
        again = StageRunner(writer, stage, config, RunOptions(run_id="b", workers=1)).run()
    finally:
        signal.alarm(0)
        writer.close()
    assert (first.done, first.failed) == (3, 1)
    assert again.pending == 0  # permanent: not retried by a plain run


def slow_or_hang(item: dict[str, Any], params: Any) -> str:
    import time

    with open(item["log"], "a") as log:
        log.write(item["item_id"] + "\n")
    if item["item_id"] == "hang":
        time.sleep(3600)
    if item["item_id"] in ("pause", "slow"):
        time.sleep(1.0)  # each within the deadline; together running when "hang" passes it
    return item["item_id"]


def test_the_executor_resubmits_what_was_in_flight_when_it_restarts(tmp_path: Path) -> None:
    """A chunk running beside the culprit is not failed: it runs again on the new pool."""
    from concurrent.futures import wait

    from etl.engine.pool import ProcessExecutor

    executor = ProcessExecutor(slow_or_hang, None, workers=2, item_timeout_s=1.5)
    try:
        log = str(tmp_path / "started.txt")
        first = executor.submit([{"item_id": i, "log": log} for i in ("a1", "hang", "a2")])
        second = executor.submit([{"item_id": i, "log": log} for i in ("pause", "slow")])
        third = executor.submit([{"item_id": "c1", "log": log}])
        done, not_done = wait([first, second, third], timeout=60)
        assert not not_done
        outcomes = {o.item_id: o for f in (first, second, third) for o in f.result()}
    finally:
        executor.shutdown(cancel=True)
    assert {i: (o.status, o.error, o.retryable) for i, o in outcomes.items()} == {
        "a1": ("done", None, False), "a2": ("done", None, False), "pause": ("done", None, False),
        "slow": ("done", None, False),
        "c1": ("done", None, False), "hang": ("failed", "timed out after 1.5 s", False)}
    assert outcomes["hang"].elapsed_s >= 1.5
    assert executor.restarts == 1
    started = (tmp_path / "started.txt").read_text().split()
    assert started.count("slow") == 2 and started.count("hang") == 1  # killed mid-way, run again once


def report_batch(items: list[dict[str, Any]], params: Any) -> list[Any]:
    """Each item's result says how many items its worker's batch held; `bad` fails alone."""
    return [ValueError("a bad item in a batch") if item["item_id"] == "bad" else
            {"pid": os.getpid(), "loads": len(items)} for item in items]


def test_process_batch_runs_in_the_workers_one_chunk_at_a_time(db: Path) -> None:
    stage = Stage(name="probe", description="", process=report_worker, process_batch=report_batch, write=collect,
                  items_sql=_items("bad", n=11), chunk_size=lambda params: 4)
    report, rows, failed = run(db, stage)
    assert (report.done, report.failed) == (11, 1)
    assert failed == [("bad", "bad input: ValueError: a bad item in a batch")]
    # batch_size 10 claims [bad, i00..i08] then [i09, i10]: chunks of 4, 4, 2, then 2.
    assert sorted(size for _, _, size in rows) == sorted([4] * 3 + [4] * 4 + [2] * 2 + [2] * 2)


# --- a stage that cannot work: a crash loop, a model that fails to load -----------------------

def crash_on_c(item: dict[str, Any], params: Any) -> dict[str, int]:
    """Items named c... kill their worker, as a segfault in a library would."""
    if item["item_id"].startswith("c"):
        segfault_in_a_library()
    return {"pid": os.getpid(), "loads": _loads}


def segfault_in_a_library() -> None:
    import ctypes

    ctypes.string_at(0)  # reads address 0: SIGSEGV


def run_as_pipeline(db: Path, stage: Stage, workers: int = 2) -> tuple[Any, dict[str, str]]:
    """The stage as `etl run` runs it: an error stopping it is recorded, its claims released."""
    from etl.app.pipeline import _run_stage

    writer = open_writer(db, create=True)
    writer.con.execute("CREATE TABLE IF NOT EXISTS seen (item_id VARCHAR, pid INTEGER, loads INTEGER)")
    config = Config.load({**registry.params_types(), "probe": stage.Params}, environ={},
                         cli={"run.batch_size": 10})
    stopped: dict[str, str] = {}
    try:
        report = _run_stage(writer, stage, config, RunOptions(run_id="p", workers=workers), None, stopped)
    finally:
        writer.close()
    return report, stopped


def _pending_and_failed(db: Path) -> tuple[int, int]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FILTER (status = 'pending'), count(*) FILTER (status = 'failed') "
                           "FROM stage_items WHERE stage = 'probe'").fetchone()


def test_a_crash_loop_stops_the_stage_early_and_fails_nothing(db: Path) -> None:
    import pytest

    from etl.engine.errors import CrashLoop

    items = "SELECT 'c' || lpad(CAST(i AS VARCHAR), 2, '0') AS item_id, '' AS input_fp FROM range(20) t(i)"
    stage = Stage(name="probe", description="", process=crash_on_c, write=collect, items_sql=items)
    with pytest.raises(CrashLoop):
        run(db.with_name("direct.duckdb"), stage)  # what the runner raises
    report, stopped = run_as_pipeline(db, stage)
    reason = stopped["probe"]
    assert report.skipped_reason == f"stopped: {reason}"
    # the signal and the last Python frame, from the workers' faulthandler reports
    assert "SIGSEGV in ctypes.string_at" in reason, reason
    assert "first 3 items" in reason and "pending" in reason
    assert _pending_and_failed(db) == (20, 0)  # released as pending; nothing failed


def test_a_crashing_first_item_still_fails_alone_once_others_succeed(db: Path) -> None:
    items = ("SELECT item_id, '' AS input_fp FROM (SELECT 'i' || lpad(CAST(i AS VARCHAR), 2, '0') AS item_id "
             "FROM range(12) t(i) UNION ALL SELECT 'c-bad') ORDER BY item_id")  # c-bad comes first
    stage = Stage(name="probe", description="", process=crash_on_c, write=collect, items_sql=items, chunk_size=2)
    report, rows, failed = run(db, stage)
    assert (report.done, report.failed) == (12, 1)
    assert failed[0][0] == "c-bad"
    assert "worker process died (SIGSEGV in ctypes.string_at)" in failed[0][1]


def fail_to_load(params: Any) -> None:
    raise ValueError("Failed to load model from file: /models/half.gguf")


def test_a_model_that_fails_to_load_stops_the_stage_once_with_its_reason(db: Path) -> None:
    import pytest

    from etl.engine.errors import WorkerStartFailed

    stage = Stage(name="probe", description="", process=report_worker, write=collect, init_worker=fail_to_load,
                  items_sql=_items(n=10))
    with pytest.raises(WorkerStartFailed) as raised:
        run(db.with_name("direct.duckdb"), stage)
    assert "could not start: ValueError: Failed to load model from file: /models/half.gguf" in str(raised.value)
    report, stopped = run_as_pipeline(db, stage)
    assert stopped["probe"].startswith("its model or worker could not start: ValueError: Failed to load model")
    assert _pending_and_failed(db) == (10, 0)
