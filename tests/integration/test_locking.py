"""One writer at a time (named when refused); readers get in while a run is going."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from etl import pipeline
from etl import stages as registry
from etl.config import Config
from etl.engine import RunOptions
from etl.stage import Stage
from tests.helpers import REPO, etl, etl_command, write_tone


def slow(item: dict[str, Any], params: Any) -> None:
    time.sleep(0.02)


SLOW = Stage(name="slow", description="sleeps", process=slow,
             items_sql="SELECT CAST(i AS VARCHAR) AS item_id, '' AS input_fp FROM range(300) t(i)")


@pytest.fixture
def running_pipeline(db: Path, monkeypatch: pytest.MonkeyPatch):
    """A real coordinator (lock, writer, engine loop) running a slow stage in a thread."""
    pipeline.init_database(db)
    monkeypatch.setattr(registry, "select", lambda names: [SLOW])
    config = Config.load({**registry.params_types(), "slow": SLOW.Params}, environ={},
                         cli={"run.executor": "inline", "run.batch_size": 5})
    errors: list[BaseException] = []

    def go() -> None:
        try:
            pipeline.run(db, config, options=RunOptions(run_id="t", executor="inline"))
        except BaseException as error:  # reported by the test
            errors.append(error)

    thread = threading.Thread(target=go)
    thread.start()
    lock = Path(str(db) + ".lock")
    deadline = time.monotonic() + 10
    while not (lock.exists() and lock.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield thread
    thread.join(timeout=60)
    assert not errors, errors


def test_second_writer_is_refused_at_once_naming_the_holder(db: Path, running_pipeline) -> None:
    started = time.monotonic()
    result = etl("run", db=db)
    elapsed = time.monotonic() - started
    assert running_pipeline.is_alive(), "the first run ended before the second started"
    assert result.returncode == 1
    assert f"pid {os.getpid()}" in result.stderr and socket.gethostname() in result.stderr
    assert "started" in result.stderr and "Traceback" not in result.stderr
    assert elapsed < 5
    assert etl("init", db=db).returncode == 1  # migrating under a run is refused too


def test_status_answers_during_a_run(db: Path, running_pipeline) -> None:
    answered = 0
    while running_pipeline.is_alive():
        started = time.monotonic()
        result = etl("status", "--json", db=db)
        assert result.returncode == 0, result.stderr
        assert {row["stage"] for row in json.loads(result.stdout)} >= {"ingest", "metadata"}
        assert time.monotonic() - started < 5
        answered += 1
    assert answered >= 2


def test_status_and_failures_poll_a_real_cli_run(tmp_path: Path) -> None:
    src = tmp_path / "music"
    for i in range(300):
        write_tone(src / f"{i:03d}.wav", seconds=0.2, freq_hz=100 + i, sample_rate=8000)
    db = tmp_path / "etl.duckdb"
    etl("init", db=db, check=True)
    run = subprocess.Popen(etl_command("run", "--source", str(src), "--workers", "1", db=db), cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    overlapping = 0
    while run.poll() is None:
        result = etl("status", "--json", db=db)
        assert result.returncode == 0, result.stderr
        overlapping += run.poll() is None
        assert etl("failures", "--json", db=db).returncode == 0
    assert run.wait() == 0, run.stderr.read()
    assert overlapping >= 1, "the run ended before any status call overlapped it"
    rows = {r["stage"]: r for r in json.loads(etl("status", "--json", db=db, check=True).stdout)}
    assert rows["ingest"]["done"] == 300 and rows["metadata"]["done"] == 300


def test_query_answers_during_a_run(db: Path, running_pipeline) -> None:
    answered = 0
    while running_pipeline.is_alive():
        result = etl("query", "SELECT count(*) AS n FROM stage_items", "--format", "json", db=db)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[0]["n"] >= 0
        answered += 1
    assert answered >= 1
