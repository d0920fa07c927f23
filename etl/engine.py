"""The coordinator: selects pending items, feeds a pool, commits results in batches.

One process owns the read-write connection. For each stage it claims a batch of pending items
(one transaction marks them `running`), hands them to the executor in chunks, and commits the
finished items' result rows together with their state in one transaction per batch. A run that
dies leaves only `running` rows and uncommitted work, which the next run picks up again.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb

from etl.config import Config, params_hash
from etl.errors import Interrupted
from etl.pool import Executor, InlineExecutor, Outcome, ProcessExecutor
from etl.resources import execute, registered, sql
from etl.stage import Stage
from etl.store import Writer

_NO_LIMIT = 2**62
_POLL_S = 0.1  # how often an idle coordinator looks for readers waiting to get in
_PAYLOAD_BATCHES = 10  # payloads are fetched this many batches ahead, in one query


def stage_sql(stage: Stage, name: str) -> str:
    """An engine statement specialised with the stage's items query."""
    text = sql(stage.items_sql) if stage.items_sql.endswith(".sql") else stage.items_sql
    items = text.rstrip().rstrip(";")
    return sql("engine/state.sql", name).replace("{items}", items)


def stage_counts(con: duckdb.DuckDBPyConnection, stage: Stage, params: Any) -> dict[str, int]:
    row = con.execute(stage_sql(stage, "counts"), {"stage": stage.name, "params_hash": params_hash(params)}).fetchone()
    return dict(zip(("pending", "running", "done", "failed", "skipped"), row))


@dataclass
class StageReport:
    stage: str
    pending: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    skipped_reason: str | None = None  # the whole stage could not run here
    interrupted: bool = False
    elapsed_s: float = 0.0

    @property
    def processed(self) -> int:
        return self.done + self.failed + self.skipped


class ProgressSink:
    """Receives progress events; the CLI draws bars, tests and benchmarks ignore them."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, count: int) -> None: ...

    def finish(self, stage: str) -> None: ...

    def waiting(self, message: str | None) -> None:
        """The writer is kept out of the database: `message` says by whom; None when it got in."""


ExecutorFactory = Callable[[Stage, Any, int], Executor]


def default_executor_factory(kind: str, quiet_stderr: bool = True) -> ExecutorFactory:
    def make(stage: Stage, params: Any, workers: int) -> Executor:
        if kind == "inline":
            return InlineExecutor(stage.process, params, stage.init_worker)
        return ProcessExecutor(stage.process, params, stage.init_worker, workers, quiet_stderr)
    return make


# What stops a run: Ctrl-C, and what timeout(1), systemd, docker stop and batch schedulers send
# (SIGTERM), or a closed terminal (SIGHUP).
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignal:
    """Ctrl-C, SIGTERM or SIGHUP as a request: the first asks the run to stop after committing
    finished work and putting claimed items back; the CLI then exits 128 + the signal's number.

    A handler that only sets a flag never interrupts a DuckDB statement halfway; the loop checks
    the flag between steps. A second signal raises KeyboardInterrupt at once (still safe: every
    commit is atomic, so at worst the last batch is redone). A SIGHUP that was ignored when the
    run started (nohup) stays ignored.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None

    @property
    def name(self) -> str:
        """The signal's name (SIGTERM, ...), or "interrupted" when the stop came from elsewhere."""
        return signal.Signals(self.signum).name if self.signum else "interrupted"

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum

    @contextmanager
    def installed(self) -> Iterator[StopSignal]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {}
        for signum in _STOP_SIGNALS:
            if signum != signal.SIGINT and signal.getsignal(signum) == signal.SIG_IGN:
                continue
            previous[signum] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@dataclass
class RunOptions:
    run_id: str
    limit: int | None = None
    retry_failed: bool = False
    dry_run: bool = False
    workers: int | None = None  # CLI --workers: overrides every stage's setting
    executor: str = "process"   # process | inline
    quiet_worker_stderr: bool = True
    progress: ProgressSink = field(default_factory=ProgressSink)
    stop: StopSignal = field(default_factory=StopSignal)


def _submit(executor: Executor, chunk: list[dict[str, Any]]) -> Future[list[Outcome]]:
    """Submit, turning "the pool broke before this chunk was sent" into a crashed future."""
    try:
        return executor.submit(chunk)
    except BrokenProcessPool as error:
        future: Future[list[Outcome]] = Future()
        future.set_exception(error)
        return future


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Let a commit finish even if Ctrl-C (or SIGTERM, SIGHUP) comes again while it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in _STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class StageRunner:
    """Runs one stage to completion (or until interrupted) against the writer."""

    def __init__(self, writer: Writer, stage: Stage, config: Config, options: RunOptions,
                 executor_factory: ExecutorFactory | None = None) -> None:
        self.writer = writer
        self.stage = stage
        self.options = options
        self.params = config.params(stage.name)
        self.params_hash = params_hash(self.params)
        run = config.run
        self.batch_size = config.engine(stage.name, "batch_size", stage.batch_size or run.batch_size)
        self.workers = options.workers or config.engine(stage.name, "workers", run.workers)
        self.commit_interval_s = run.commit_interval_s
        self.artifact_dir = (writer.db_path.parent / run.data_dir / stage.name).resolve()
        self.max_attempts = run.max_attempts
        self.executor_factory = executor_factory or default_executor_factory(
            options.executor, options.quiet_worker_stderr)
        self.report = StageReport(stage.name)

    # --- database steps (each its own transaction) --------------------------------------

    def _select_pending(self) -> list[dict[str, Any]]:
        binds = {
            "stage": self.stage.name,
            "params_hash": self.params_hash,
            "max_attempts": self.max_attempts,
            "retry_failed": self.options.retry_failed,
            "limit": self.options.limit or _NO_LIMIT,
        }
        record = None
        if self.stage.discover is not None:
            with self.writer.transaction() as con:
                sources = [row[0] for row in execute(con, "pipeline.sql", "list_sources").fetchall()]
            self.writer.close()  # readers may come and go while the folders are walked
            record = self.stage.discover(self.params, sources)
        with self.writer.transaction(rollback=self.options.dry_run) as con:
            execute(con, "engine/state.sql", "reset_running", {"stage": self.stage.name})
            if record is not None:
                record(con)
            return con.sql(stage_sql(self.stage, "pending"), params=binds).to_arrow_table().to_pylist()

    def _sync(self, finished: list[Outcome], claim: list[dict[str, Any]], items: dict[str, dict[str, Any]]) -> None:
        """One transaction: commit finished items (results + state) and claim the next batch.

        Doing both at once halves the number of transactions per batch.
        """
        import pyarrow as pa  # here: `etl status` / `etl query` import this module and must start fast

        binds = {"stage": self.stage.name, "params_hash": self.params_hash, "run_id": self.options.run_id}
        with self.writer.transaction() as con:
            if finished:
                for outcome in finished:
                    outcome.item = items[outcome.item_id]
                if self.stage.write is not None:
                    self.stage.write(con, finished, self.params)
                finished_batch = pa.table({
                    "item_id": [o.item_id for o in finished],
                    "status": [o.status for o in finished],
                    "fingerprint": [o.item["fingerprint"] for o in finished],
                    "error": [o.error for o in finished],
                    "retryable": [o.retryable for o in finished],
                    "elapsed_s": [o.elapsed_s for o in finished],
                })
                with registered(con, finished_batch=finished_batch):
                    execute(con, "engine/state.sql", "finish", binds)
            if claim:
                claimed_batch = pa.table({"item_id": [item["item_id"] for item in claim],
                                          "has_state": [item["has_state"] for item in claim]})
                with registered(con, claimed_batch=claimed_batch):
                    execute(con, "engine/state.sql", "claim_new", binds)
                    execute(con, "engine/state.sql", "claim_existing", binds)
        for outcome in finished:
            setattr(self.report, outcome.status, getattr(self.report, outcome.status) + 1)
            del items[outcome.item_id]
        items.update((item["item_id"], item) for item in claim)
        if finished:
            self.options.progress.advance(self.stage.name, len(finished))

    def _load_payloads(self, window: list[dict[str, Any]]) -> None:
        """Fetch the payload columns of the next items (a few batches at a time: bounded memory,
        one query per window rather than per batch)."""
        import pyarrow as pa

        wanted = pa.table({"item_id": [item["item_id"] for item in window]})
        con = self.writer.con
        with registered(con, claimed_batch=wanted):
            rows = con.sql(stage_sql(self.stage, "payload")).to_arrow_table().to_pylist()
        by_id = {row["item_id"]: row for row in rows}
        for item in window:
            item.update(by_id[item["item_id"]])
            item["payload_loaded"] = True
            if self.stage.artifacts:
                item["artifact_dir"] = str(self.artifact_dir)

    def _release(self) -> None:
        with self.writer.transaction() as con:
            execute(con, "engine/state.sql", "release", {"stage": self.stage.name, "run_id": self.options.run_id})

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> StageReport:
        started = time.monotonic()
        if self.stage.unavailable is not None:
            reason = self.stage.unavailable(self.params)
            if reason:
                self.report.skipped_reason = reason
                return self.report
        pending = self._select_pending()
        self.report.pending = len(pending)
        if self.options.dry_run or not pending:
            return self.report
        self.options.progress.start(self.stage.name, len(pending))
        try:
            with self.options.stop.installed():
                self._process_all(pending)
        finally:
            self.report.elapsed_s = time.monotonic() - started
            self.options.progress.finish(self.stage.name)
        return self.report

    def _new_executor(self, item_count: int) -> Executor:
        return self.executor_factory(self.stage, self.params, max(1, min(self.workers, item_count)))

    def _process_all(self, pending: list[dict[str, Any]]) -> None:
        queue = deque(pending)
        items: dict[str, dict[str, Any]] = {}          # claimed, not yet committed
        inflight: dict[Future[list[Outcome]], list[dict[str, Any]]] = {}
        suspects: deque[dict[str, Any]] = deque()     # in flight when a worker crashed
        finished: list[Outcome] = []
        last_commit = time.monotonic()
        executor = self._new_executor(len(pending))
        inline = isinstance(executor, InlineExecutor)
        chunk_size = self.batch_size if inline else self.stage.chunk_size
        try:
            while queue or inflight or suspects:
                if self.options.stop.requested:
                    raise KeyboardInterrupt
                inflight_items = sum(len(chunk) for chunk in inflight.values())
                if suspects and not inflight:
                    # After a crash, retry the suspects one at a time to find the culprit.
                    item = suspects.popleft()
                    inflight[_submit(executor, [item])] = [item]
                elif not suspects and queue and inflight_items <= self.batch_size:
                    batch = [queue.popleft() for _ in range(min(self.batch_size, len(queue)))]
                    if not batch[0].get("payload_loaded"):
                        ahead = list(itertools.islice(queue, _PAYLOAD_BATCHES * self.batch_size - len(batch)))
                        self._load_payloads(batch + ahead)
                    self._sync(finished, batch, items)
                    finished, last_commit = [], time.monotonic()
                    for start in range(0, len(batch), chunk_size):
                        chunk = batch[start:start + chunk_size]
                        inflight[_submit(executor, chunk)] = chunk

                done, _ = wait(inflight, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                crashed: list[dict[str, Any]] = []
                for future in done:
                    chunk = inflight.pop(future)
                    try:
                        finished.extend(future.result())
                    except BrokenProcessPool:
                        crashed.extend(chunk)
                if crashed and self.options.stop.requested:
                    # The stop signal went to the whole process group (systemd): the workers died of
                    # it, not of their items. Their items go back to pending.
                    raise KeyboardInterrupt
                if crashed:
                    executor = self._recover_from_crash(executor, crashed, inflight, suspects, finished)

                now = time.monotonic()
                idle = not (queue or inflight or suspects)
                if finished and (len(finished) >= self.batch_size or idle
                                 or now - last_commit >= self.commit_interval_s):
                    self._sync(finished, [], items)
                    finished, last_commit = [], now
                self.writer.let_readers_in()
        except KeyboardInterrupt:
            with _signals_deferred():
                for future in list(inflight):  # chunks that finished while we were stopping
                    if future.done() and not future.cancelled() and future.exception() is None:
                        finished.extend(future.result())
                        del inflight[future]
                executor.shutdown(cancel=True)
                if finished:
                    self._sync(finished, [], items)
                self._release()
            self.report.interrupted = True
            stop = self.options.stop
            raise Interrupted(
                f"{stop.name} during {self.stage.name}: finished work is committed; run again to continue",
                stop.signum,
            ) from None
        finally:
            # Work still in flight means we are leaving early: do not wait for it.
            executor.shutdown(cancel=bool(inflight))

    def _recover_from_crash(self, executor: Executor, crashed: list[dict[str, Any]],
                            inflight: dict[Future[list[Outcome]], list[dict[str, Any]]],
                            suspects: deque[dict[str, Any]], finished: list[Outcome]) -> Executor:
        """A worker died (segfault, OOM kill). Blame the item if it was alone, else isolate."""
        for future, chunk in list(inflight.items()):  # the whole pool is gone
            inflight.pop(future)
            crashed.extend(chunk)
        executor.shutdown(cancel=True)
        if len(crashed) == 1:  # it was alone in the pool: it is the culprit
            finished.append(Outcome(
                crashed[0]["item_id"], "failed",
                error="the worker process died while processing this item (a crash in a decoder or "
                      "library, or killed for memory)",
                retryable=True,
            ))
        else:
            suspects.extend(crashed)
        return self._new_executor(len(suspects) or 1)
