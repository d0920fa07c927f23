"""One writer at a time (named when refused); readers get in while a run is going."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from etl.app import registry
from etl.app import pipeline
from etl.engine.config import Config
from etl.engine.runner import RunOptions
from etl.engine.stage import Stage
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


# --- readers never stop a run (issue 10, finding 7) --------------------------------------------

HOLD_READ_ONLY = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""

# A reader that asks the writer to step aside (as `etl status` / `etl query` do), then keeps the file.
HOLD_THROUGH_OPEN_READER = """
import sys, time
from pathlib import Path
from etl.app.store import open_reader
with open_reader(Path(sys.argv[1]), timeout_s=30) as con:
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(script: str, db: Path, seconds: float) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", script, str(db), str(seconds)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    assert process.stdout.readline().strip() == "holding"
    return process


def test_writer_waits_for_a_reader_past_the_old_deadline_and_names_it(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from etl.engine import store

    pipeline.init_database(db)
    # The old writer gave up once WRITER_OPEN_TIMEOUT_S had passed with the lock still taken.
    monkeypatch.setattr(store, "WRITER_OPEN_TIMEOUT_S", 0.3, raising=False)
    monkeypatch.setattr(store, "WRITER_NOTICE_S", 0.2, raising=False)
    reader = _hold(HOLD_READ_ONLY, db, 2.5)
    messages: list[str] = []
    writer = store.Writer(db)
    writer.on_wait = messages.append
    started = time.monotonic()
    try:
        writer.con.execute("SELECT 1")
    finally:
        writer.close()
        reader.kill()
        reader.wait()
    assert time.monotonic() - started > 1.5, "the writer did not wait for the reader"
    notices = [m for m in messages if m]
    assert notices and f"pid {reader.pid}" in notices[0] and "duckdb.connect" in notices[0], messages


def test_run_goes_on_while_a_reader_holds_the_file_longer_than_the_old_timeout(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from etl.engine import store
    from etl.engine.runner import ProgressSink

    monkeypatch.setattr(store, "WRITER_OPEN_TIMEOUT_S", 0.3, raising=False)
    monkeypatch.setattr(store, "WRITER_NOTICE_S", 0.2, raising=False)
    pipeline.init_database(db)

    class Recorder(ProgressSink):
        def __init__(self) -> None:
            self.messages: list[str | None] = []

        def waiting(self, message: str | None) -> None:
            self.messages.append(message)

    sink = Recorder()
    stage = Stage(name="slow", description="sleeps", process=slow,
                  items_sql="SELECT CAST(i AS VARCHAR) AS item_id, '' AS input_fp FROM range(200) t(i)")
    monkeypatch.setattr(registry, "select", lambda names: [stage])
    config = Config.load({**registry.params_types(), "slow": stage.Params}, environ={},
                         cli={"run.executor": "inline", "run.batch_size": 5})
    errors: list[BaseException] = []
    reports: list[Any] = []

    def go() -> None:
        try:
            reports.extend(pipeline.run(db, config, options=RunOptions(run_id="t", executor="inline",
                                                                       progress=sink)))
        except BaseException as error:  # reported by the test
            errors.append(error)

    thread = threading.Thread(target=go)
    thread.start()
    time.sleep(0.3)
    # Longer than the old writer's 5 s step-aside plus its open deadline.
    reader = _hold(HOLD_THROUGH_OPEN_READER, db, 6.5)
    thread.join(timeout=60)
    reader.wait()
    assert not errors, errors
    assert reports and reports[0].done == 200
    notices = [m for m in sink.messages if m]
    assert any(f"pid {reader.pid}" in m for m in notices), sink.messages
    assert sink.messages[-1] is None, "the waiting notice was not cleared"


def test_request_file_of_a_reused_pid_is_ignored(db: Path) -> None:
    from etl.engine import store

    pipeline.init_database(db)
    readers = Path(str(db) + ".readers")
    readers.mkdir()
    # A live pid (this very process) whose start time is not the one the request recorded: the
    # reader that wrote it died and the pid was reused.
    reused = readers / f"{os.getpid()}.1.deadbeef"
    reused.touch()
    dead = readers / "999999999.1.deadbeef"
    dead.touch()
    writer = store.Writer(db)
    try:
        writer.con.execute("SELECT 1")
        started = time.monotonic()
        let_in = writer.let_readers_in()
        elapsed = time.monotonic() - started
    finally:
        writer.close()
    assert not let_in and elapsed < 0.5, f"waited {elapsed:.1f} s for a stale request"
    assert not reused.exists() and not dead.exists()


def test_request_file_identifies_a_live_reader(db: Path) -> None:
    """A request written now (pid and start time of this process) counts as a waiting reader."""
    from etl.engine import store

    pipeline.init_database(db)
    request = store._new_request(db)
    try:
        assert store._waiting_readers(db) == [request]
        pid, start = request.name.split(".")[:2]
        assert int(pid) == os.getpid() and int(start) == store._process_start_time(os.getpid())
    finally:
        request.unlink()


def test_a_stop_while_a_reader_holds_the_file_ends_the_wait(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while the writer waits for a reader: it waits WRITER_STOP_WAIT_S more, then stops."""
    import signal

    from etl.engine import store
    from etl.engine.errors import Interrupted
    from etl.engine.runner import ProgressSink

    monkeypatch.setattr(store, "WRITER_NOTICE_S", 0.2)
    monkeypatch.setattr(store, "WRITER_STOP_WAIT_S", 1.0)
    pipeline.init_database(db)
    waiting = threading.Event()

    class Recorder(ProgressSink):
        def waiting(self, message: str | None) -> None:
            if message:
                waiting.set()

    monkeypatch.setattr(registry, "select", lambda names: [SLOW])
    config = Config.load({**registry.params_types(), "slow": SLOW.Params}, environ={},
                         cli={"run.executor": "inline", "run.batch_size": 5})
    options = RunOptions(run_id="t", executor="inline", progress=Recorder())
    errors: list[BaseException] = []

    def go() -> None:
        try:
            pipeline.run(db, config, options=options)
        except BaseException as error:  # reported by the test
            errors.append(error)

    thread = threading.Thread(target=go)
    thread.start()
    time.sleep(0.3)
    reader = _hold(HOLD_THROUGH_OPEN_READER, db, 30)
    try:
        assert waiting.wait(timeout=15), "the writer never said it was waiting"
        options.stop.signum, options.stop.requested = signal.SIGTERM, True
        stopped = time.monotonic()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the run kept waiting after the stop"
        assert time.monotonic() - stopped < 5
    finally:
        reader.kill()
        reader.wait()
        thread.join()
    assert len(errors) == 1 and isinstance(errors[0], Interrupted), errors
    assert errors[0].exit_code == 143 and f"pid {reader.pid}" in str(errors[0])
