"""The real spawn pool: models load once per worker, a crashing worker fails only its item."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from etl import stages as registry
from etl.config import Config
from etl.engine import RunOptions, StageRunner
from etl.stage import Stage
from etl.store import open_writer

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
