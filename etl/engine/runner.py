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
from pathlib import Path
from typing import Any

import duckdb

from etl.engine import artifacts, lineage
from etl.engine.config import Config, params_hash
from etl.engine.errors import Interrupted
from etl.engine.isolation import CrashLoopGuard, CulpritSearch, chunks
from etl.engine.lineage import stage_sql
from etl.engine.pool import Executor, InlineExecutor, Outcome, ProcessExecutor
from etl.engine.resources import execute, registered, statement_names, used_binds
from etl.engine.signals import STOP_SIGNALS, handling_stop_signals
from etl.engine.stage import Stage
from etl.engine.store import Writer

_NO_LIMIT = 2**62
_POLL_S = 0.1  # how often an idle coordinator looks for readers waiting to get in
_PAYLOAD_BATCHES = 10  # payloads are fetched this many batches ahead, in one query


def stage_counts(con: duckdb.DuckDBPyConnection, stage: Stage, params: Any) -> dict[str, int]:
    return lineage.counts(con, stage, params)


def sweep_superseded(con: duckdb.DuckDBPyConnection, data_dir: Path) -> int:
    """Remove the files listed as superseded (a killed run may have left the list unswept)."""
    import pyarrow as pa

    listed = [row[0] for row in execute(con, "engine/lineage.sql", "list_superseded").fetchall()]
    removed = artifacts.remove(listed, data_dir)
    if removed:
        with registered(con, removed_batch=pa.table({"path": pa.array(removed, pa.string())})):
            execute(con, "engine/lineage.sql", "forget_superseded")
    return len(removed)


@dataclass
class StageReport:
    stage: str
    pending: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    retired: int = 0  # items gone from the stage's items (their rows cleared, files superseded)
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


def default_executor_factory(kind: str, quiet_stderr: bool = True, item_timeout_s: float | None = None,
                             resources: Any = None) -> ExecutorFactory:
    """`resources`: a RayResources for kind "ray" (etl/engine/ray_pool.py)."""
    def make(stage: Stage, params: Any, workers: int) -> Executor:
        if kind == "inline":  # cannot enforce item_timeout_s (see InlineExecutor)
            return InlineExecutor(stage.process, params, stage.init_worker, stage.process_batch)
        if kind == "ray":
            from etl.engine.ray_pool import RayExecutor

            return RayExecutor(stage.process, params, stage.init_worker, workers, resources, item_timeout_s,
                               stage.process_batch)
        return ProcessExecutor(stage.process, params, stage.init_worker, workers, quiet_stderr, item_timeout_s,
                               stage.process_batch)
    return make


# What stops a run: Ctrl-C, and what timeout(1), systemd, docker stop and batch schedulers send
# (SIGTERM), or a closed terminal (SIGHUP).


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
        with handling_stop_signals(self._handle):
            yield self


@dataclass
class RunOptions:
    run_id: str
    limit: int | None = None
    retry_failed: bool = False
    dry_run: bool = False
    workers: int | None = None  # CLI --workers: overrides every stage's setting
    executor: str = "process"   # process | inline | ray ([<stage>] executor overrides it)
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
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ray_resources(config: Config, stage: str) -> Any:
    """What each Ray actor of `stage` asks for (only read when the stage runs on Ray)."""
    from etl.engine.ray_pool import RayResources

    return RayResources(num_cpus=config.engine(stage, "ray_num_cpus", 1.0),
                        num_gpus=config.engine(stage, "ray_num_gpus", 0.0),
                        memory_mb=config.engine(stage, "ray_memory_mb", 0.0),
                        address=config.run.ray_address)


class StageRunner:
    """Runs one stage to completion (or until interrupted) against the writer."""

    def __init__(self, writer: Writer, stage: Stage, config: Config, options: RunOptions,
                 executor_factory: ExecutorFactory | None = None) -> None:
        self.writer = writer
        self.stage = stage
        self.options = options
        self.params = config.params(stage.name)
        self.params_hash = params_hash(self.params)
        self.stage_hash = lineage.stage_hash(stage, self.params)
        self.item_binds = lineage.item_binds(stage, self.params)
        run = config.run
        self.batch_size = config.engine(stage.name, "batch_size", stage.batch_size or run.batch_size)
        self.workers = options.workers or config.engine(stage.name, "workers", run.workers)
        self.commit_interval_s = run.commit_interval_s
        self.data_dir = (writer.db_path.parent / run.data_dir).resolve()
        self.max_attempts = run.max_attempts
        self.executor_factory = executor_factory or default_executor_factory(
            config.engine(stage.name, "executor", options.executor), options.quiet_worker_stderr,
            config.engine(stage.name, "item_timeout_s", run.item_timeout_s), ray_resources(config, stage.name))
        self.report = StageReport(stage.name)
        # A pool that breaks loses every chunk in flight: their items are retried alone, one at a
        # time, so the next death is the item's own (etl/engine/isolation.py).
        self._culprits = CulpritSearch(deaths_to_blame=1)
        self._crash_loop = CrashLoopGuard()

    # --- database steps (each its own transaction) --------------------------------------

    def _select_pending(self) -> list[dict[str, Any]]:
        binds = {
            "stage": self.stage.name,
            "stage_hash": self.stage_hash,
            "max_attempts": self.max_attempts,
            "retry_failed": self.options.retry_failed,
            "limit": self.options.limit or _NO_LIMIT,
            **self.item_binds,
        }
        record = None
        if self.stage.discover is not None:
            with self.writer.transaction() as con:
                sources = [row[0] for row in execute(con, "pipeline.sql", "list_sources").fetchall()]
            self.writer.close()  # readers may come and go while the folders are walked
            record = self.stage.discover(self.params, sources, self._store_paths())
        with self.writer.transaction(rollback=self.options.dry_run) as con:
            execute(con, "engine/state.sql", "reset_running", {"stage": self.stage.name})
            execute(con, "engine/lineage.sql", "forget_check", {"stage": self.stage.name})
            if record is not None:
                record(con)
            self._retire(con)
            statement = stage_sql(self.stage, "pending")
            pending = con.sql(statement, params=used_binds(statement, binds)).to_arrow_table().to_pylist()
        self._remove_superseded()
        return pending

    def retire_gone(self) -> int:
        """Retire the items the stage no longer has (what `etl gc` does after forgetting files)."""
        with self.writer.transaction() as con:
            self._retire(con)
        self._remove_superseded()
        return self.report.retired

    def _store_paths(self) -> tuple[str, ...]:
        """The store's own files and folders, which a scan of the sources must leave out."""
        db = self.writer.db_path.resolve()
        siblings = [db, *(db.with_name(db.name + suffix) for suffix in (".wal", ".lock", ".readers"))]
        return tuple(str(path) for path in (*siblings, self.data_dir))

    def _retire(self, con: duckdb.DuckDBPyConnection) -> None:
        """Items the stage no longer has: clear their rows and outputs, supersede their files."""
        import pyarrow as pa

        statement = stage_sql(self.stage, "gone")
        gone = con.sql(statement, params=used_binds(statement, {"stage": self.stage.name, **self.item_binds})).fetchall()
        self.report.retired = len(gone)
        if not gone:
            return
        ids = [item_id for item_id, _ in gone]
        superseded: list[str] = []
        for item_id, files in gone:
            superseded.extend(files or [])
            if self.stage.artifacts:
                superseded.extend(artifacts.unreferenced(self._folder(item_id), (), self.data_dir))
        with registered(con, cleared=pa.table({"item_id": pa.array(ids, pa.string())})):
            self._clear(con, retiring=True)
            execute(con, "engine/state.sql", "retire", {"stage": self.stage.name})
            execute(con, "engine/lineage.sql", "bump_outputs", {"stage": self.stage.name})
        self._supersede(con, superseded)

    def _folder(self, item_id: str) -> Path:
        return artifacts.item_folder(self.data_dir, self.stage.name, item_id)

    def _clear(self, con: duckdb.DuckDBPyConnection, retiring: bool = False) -> None:
        """The stage's rows and outputs of the items in `cleared` (statements `clear*`, and
        `retire*` too when the items are gone for good)."""
        if self.stage.clear_sql is not None and not self.stage.clear_sql.endswith(".sql"):
            con.execute(self.stage.clear_sql)  # tests give the statement itself
        elif self.stage.clear_sql is not None:
            for name in statement_names(self.stage.clear_sql):
                if name.startswith("clear") or (retiring and name.startswith("retire")):
                    execute(con, self.stage.clear_sql, name)
        execute(con, "engine/lineage.sql", "clear_outputs", {"stage": self.stage.name})

    def _supersede(self, con: duckdb.DuckDBPyConnection, paths: list[str]) -> None:
        """List files for removal in the transaction that supersedes them; removed after commit."""
        import pyarrow as pa

        if paths:
            with registered(con, superseded_batch=pa.table({"path": pa.array(paths, pa.string())})):
                execute(con, "engine/lineage.sql", "supersede", {"stage": self.stage.name})
            self._superseded_since_commit = True

    def _remove_superseded(self) -> None:
        """After a commit: remove the files it superseded (and forget them in the next transaction
        rather than in one of their own; what a kill leaves listed is swept by the next run)."""
        if getattr(self, "_superseded_since_commit", False):
            with self.writer.transaction() as con:
                sweep_superseded(con, self.data_dir)
            self._superseded_since_commit = False

    def _sync(self, finished: list[Outcome], claim: list[dict[str, Any]], items: dict[str, dict[str, Any]]) -> None:
        """One transaction: commit finished items (results + state) and claim the next batch.

        Doing both at once halves the number of transactions per batch. When the stage's write
        fails, the batch is committed again in halves down to the item(s) at fault, which fail
        with the reason; the rest commit.
        """
        for outcome in finished:
            outcome.item = items[outcome.item_id]
        try:
            with self.writer.transaction() as con:
                if finished:
                    self._commit(con, finished)
                if claim:
                    self._claim(con, claim)
        except (duckdb.Error, ValueError, TypeError, KeyError, ArithmeticError, RuntimeError) as error:
            if not finished or isinstance(error, duckdb.IOException):
                raise
            self._superseded_since_commit = False
            finished = self._commit_isolated(finished)
            if claim:
                with self.writer.transaction() as con:
                    self._claim(con, claim)
        self._remove_superseded()
        for outcome in finished:
            setattr(self.report, outcome.status, getattr(self.report, outcome.status) + 1)
            del items[outcome.item_id]
        items.update((item["item_id"], item) for item in claim)
        if finished:
            self.options.progress.advance(self.stage.name, len(finished))

    def _commit_isolated(self, finished: list[Outcome]) -> list[Outcome]:
        """Commit in halves; an item whose result cannot be stored fails with the reason."""
        try:
            with self.writer.transaction() as con:
                self._commit(con, finished)
            self._remove_superseded()
            return finished
        except (duckdb.Error, ValueError, TypeError, KeyError, ArithmeticError, RuntimeError) as error:
            if isinstance(error, duckdb.IOException):
                raise
            self._superseded_since_commit = False
            if len(finished) > 1:
                half = len(finished) // 2
                return self._commit_isolated(finished[:half]) + self._commit_isolated(finished[half:])
            culprit = finished[0]
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            failed = Outcome(culprit.item_id, "failed", item=culprit.item, elapsed_s=culprit.elapsed_s,
                             error=f"could not store the result: {type(error).__name__}: {first_line}",
                             retryable=not isinstance(error, (ValueError, duckdb.ConversionException)))
            with self.writer.transaction() as con:
                self._commit(con, [failed], write=False)
            return [failed]

    def _commit(self, con: duckdb.DuckDBPyConnection, finished: list[Outcome], write: bool = True) -> None:
        """Results, outputs, state and superseded files of finished items, in the caller's transaction."""
        import pyarrow as pa  # here: `etl status` / `etl query` import this module and must start fast

        binds = {"stage": self.stage.name, "params_hash": self.params_hash, "run_id": self.options.run_id}
        settled = [o for o in finished if o.status != "failed"]  # a failure keeps the previous result
        if settled:
            cleared = pa.table({"item_id": pa.array([o.item_id for o in settled], pa.string())})
            with registered(con, cleared=cleared):
                self._clear(con)
        if write and self.stage.write is not None:
            self.stage.write(con, finished, self.params)
        produced = [(o.item_id, key, fp) for o in settled
                    for key, fp in lineage.outputs(self.stage, o.status, o.result, o.error, o.item).items()]
        output_batch = pa.table({name: pa.array(column, pa.string()) for name, column in
                                 zip(("item_id", "key", "output_fp"), zip(*produced) if produced else ((), (), ()))})
        finished_batch = pa.table({
            "item_id": pa.array([o.item_id for o in finished], pa.string()),
            "status": [o.status for o in finished],
            "fingerprint": [o.item["fingerprint"] for o in finished],
            "error": pa.array([o.error for o in finished], pa.string()),
            "retryable": pa.array([o.retryable for o in finished], pa.bool_()),
            "elapsed_s": pa.array([o.elapsed_s for o in finished], pa.float64()),
            "files": pa.array([self._files(o) for o in finished], pa.list_(pa.string())),
        })
        with registered(con, finished_batch=finished_batch, output_batch=output_batch):
            execute(con, "engine/lineage.sql", "insert_outputs", binds)
            if settled:
                execute(con, "engine/lineage.sql", "bump_outputs", binds)
            execute(con, "engine/state.sql", "finish", binds)
            if self.stage.artifacts:
                kept = execute(con, "engine/state.sql", "committed_files", binds).fetchall()
                self._supersede(con, [path for item_id, files in kept
                                      for path in artifacts.unreferenced(self._folder(item_id), files or (),
                                                                         self.data_dir)])

    def _files(self, outcome: Outcome) -> list[str] | None:
        if outcome.status != "done" or self.stage.files is None:
            return None
        return artifacts.relative(self.stage.files(outcome.result), self.data_dir)

    def _claim(self, con: duckdb.DuckDBPyConnection, claim: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        binds = {"stage": self.stage.name, "run_id": self.options.run_id}
        claimed_batch = pa.table({"item_id": [item["item_id"] for item in claim],
                                  "has_state": [item["has_state"] for item in claim]})
        with registered(con, claimed_batch=claimed_batch):
            execute(con, "engine/state.sql", "claim_new", binds)
            execute(con, "engine/state.sql", "claim_existing", binds)

    def _load_payloads(self, window: list[dict[str, Any]]) -> None:
        """Fetch the payload columns of the next items (a few batches at a time: bounded memory,
        one query per window rather than per batch)."""
        import pyarrow as pa

        wanted = pa.table({"item_id": [item["item_id"] for item in window]})
        con = self.writer.con
        with registered(con, claimed_batch=wanted):
            statement = stage_sql(self.stage, "payload")
            rows = con.sql(statement, params=used_binds(statement, self.item_binds)).to_arrow_table().to_pylist()
        by_id = {row["item_id"]: row for row in rows}
        for item in window:
            item.update(by_id[item["item_id"]])
            item["payload_loaded"] = True
            if self.stage.artifacts:
                item["artifact_dir"] = str(self._folder(item["item_id"]))

    def _release(self) -> None:
        with self.writer.transaction() as con:
            execute(con, "engine/state.sql", "release", {"stage": self.stage.name, "run_id": self.options.run_id})

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> StageReport:
        started = time.monotonic()
        reason = self.stage.why_unavailable(self.params)
        if reason:
            self.report.skipped_reason = reason
            return self.report
        pending = self._select_pending()
        self.report.pending = len(pending)
        if self.options.dry_run:
            return self.report
        if pending:
            self.options.progress.start(self.stage.name, len(pending))
            try:
                with self.options.stop.installed():
                    self._process_all(pending)
            finally:
                self.report.elapsed_s = time.monotonic() - started
                self.options.progress.finish(self.stage.name)
        if self.options.limit is None:
            self._record_check()
        return self.report

    def _record_check(self) -> None:
        """A whole pass is done: every item's stored fingerprint is its current one."""
        with self.writer.transaction() as con:
            execute(con, "engine/lineage.sql", "record_check", {
                "stage": self.stage.name, "stage_hash": self.stage_hash,
                "upstream": lineage.upstream_versions(con, self.stage)})

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
        chunk_size = self.batch_size if inline else self.stage.chunk_items(self.params)
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
                    for chunk in chunks(batch, chunk_size):
                        inflight[_submit(executor, chunk)] = chunk

                crashed = self._collect(inflight, finished)
                if crashed and self.options.stop.requested:
                    # The stop signal went to the whole process group (systemd): the workers died of
                    # it, not of their items. Their items go back to pending.
                    raise KeyboardInterrupt
                if crashed:
                    executor = self._recover_from_crash(executor, crashed, inflight, suspects, finished)
                if not (queue or inflight or suspects) and self._crash_loop.holding:
                    finished.extend(self._crash_loop.settle([], end=True))

                now = time.monotonic()
                idle = not (queue or inflight or suspects)
                # The next batch is claimed at the top of the loop, in a transaction that commits
                # the finished items too: no transaction of their own then.
                claiming = bool(queue) and not suspects and \
                    sum(len(chunk) for chunk in inflight.values()) <= self.batch_size
                if finished and not claiming and (len(finished) >= self.batch_size or idle
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

    def _collect(self, inflight: dict[Future[list[Outcome]], list[dict[str, Any]]],
                 finished: list[Outcome]) -> list[dict[str, Any]]:
        """Wait briefly for chunks to finish; add their outcomes to `finished` (past the crash loop
        guard) and return the items of those whose worker died."""
        done, _ = wait(inflight, timeout=_POLL_S, return_when=FIRST_COMPLETED)
        crashed: list[dict[str, Any]] = []
        for future in done:
            chunk = inflight.pop(future)
            try:
                finished.extend(self._crash_loop.settle(future.result()))
            except BrokenProcessPool:
                crashed.extend(chunk)
        return crashed

    def _recover_from_crash(self, executor: Executor, crashed: list[dict[str, Any]],
                            inflight: dict[Future[list[Outcome]], list[dict[str, Any]]],
                            suspects: deque[dict[str, Any]], finished: list[Outcome]) -> Executor:
        """A worker died (segfault, OOM kill): the whole pool is gone. Blame the item if it was
        alone, else retry every item that was in flight one at a time."""
        for future, chunk in list(inflight.items()):
            inflight.pop(future)
            crashed.extend(chunk)
        death = getattr(executor, "death", lambda: None)()
        executor.shutdown(cancel=True)
        retry, culprit = self._culprits.lost(crashed, death)
        if culprit is not None:
            finished.extend(self._crash_loop.settle([culprit]))
        suspects.extend(retry)
        return self._new_executor(len(suspects) or 1)
