"""Finding 9 (issue 10): a stage that crashes does not stop the stages that do not depend on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.app import registry
from etl.app import pipeline
from etl.engine.config import Config
from etl.engine.errors import EtlError, Interrupted
from etl.engine.runner import RunOptions
from etl.engine.stage import Stage
from tests.helpers import rows

ITEMS = "SELECT 'i' || CAST(i AS VARCHAR) AS item_id, '' AS input_fp FROM range(3) t(i)"


def ok(item: dict[str, Any], params: Any) -> str:
    return item["item_id"]


def recorder(name: str):
    def write(con: duckdb.DuckDBPyConnection, outcomes: list, params: Any) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS wrote (stage VARCHAR, item_id VARCHAR)")
        for o in outcomes:
            con.execute("INSERT INTO wrote VALUES (?, ?)", [name, o.item_id])
    return write


def broken_write(con: duckdb.DuckDBPyConnection, outcomes: list, params: Any) -> None:
    # Not an item's fault (an I/O error is never blamed on items, unlike a value that does not fit):
    # the stage stops.
    if outcomes:
        raise duckdb.IOException("the write has a bug")


def toy(name: str, needs: tuple[str, ...] = (), write=None, process=ok) -> Stage:
    return Stage(name=name, description=name, items_sql=ITEMS, process=process, needs=needs,
                 write=write or recorder(name))


def run_toys(db: Path, monkeypatch: pytest.MonkeyPatch, toys: list[Stage], options: RunOptions | None = None):
    by_name = {s.name: s for s in toys}
    monkeypatch.setattr(registry, "select", lambda names: registry.order_stages(by_name))
    config = Config.load({**registry.params_types(), **{s.name: s.Params for s in toys}}, environ={},
                         cli={"run.executor": "inline"})
    done: list = []
    options = options or RunOptions(run_id="r", executor="inline")
    try:
        pipeline.run(db, config, options=options, on_stage_done=done.append)
    except BaseException as error:
        return {r.stage: r for r in done}, error
    return {r.stage: r for r in done}, None


def test_a_crashing_stage_skips_its_dependants_and_the_rest_runs(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toys = [toy("alpha", write=broken_write), toy("beta", ("alpha",)), toy("gamma", ("beta",)),
            toy("delta"), toy("epsilon", ("delta",))]
    reports, error = run_toys(db, monkeypatch, toys)
    assert isinstance(error, EtlError) and type(error).__name__ == "StageFailed"
    message = str(error)
    assert "\n" not in message and "alpha" in message and "the write has a bug" in message
    assert set(reports) == {"alpha", "beta", "gamma", "delta", "epsilon"}
    assert "alpha" in reports["beta"].skipped_reason and "alpha" in reports["gamma"].skipped_reason
    assert reports["delta"].done == 3 and reports["epsilon"].done == 3
    wrote = rows(db, "SELECT stage, count(*) AS n FROM wrote GROUP BY stage ORDER BY stage")
    assert wrote == [{"stage": "delta", "n": 3}, {"stage": "epsilon", "n": 3}]
    # The crashed stage's claimed items went back to the queue, and the run is recorded as an error.
    assert rows(db, "SELECT DISTINCT status FROM stage_items WHERE stage = 'alpha'") == [{"status": "pending"}]
    assert rows(db, "SELECT outcome FROM runs") == [{"outcome": "error"}]


def test_several_crashes_are_all_named(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toys = [toy("alpha", write=broken_write), toy("delta", write=broken_write), toy("omega")]
    reports, error = run_toys(db, monkeypatch, toys)
    assert type(error).__name__ == "StageFailed"
    assert "alpha" in str(error) and "delta" in str(error) and "\n" not in str(error)
    assert reports["omega"].done == 3


def test_ctrl_c_still_stops_everything(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = RunOptions(run_id="r", executor="inline")

    def press_ctrl_c(item: dict[str, Any], params: Any) -> str:
        options.stop.requested = True
        return item["item_id"]

    toys = [toy("alpha", process=press_ctrl_c), toy("delta")]
    reports, error = run_toys(db, monkeypatch, toys, options)
    assert isinstance(error, Interrupted)
    assert "delta" not in reports
