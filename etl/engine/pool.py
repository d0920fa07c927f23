"""Executors: where a stage's pure `process` function runs.

Workers never touch the database. They get plain item dicts, return `Outcome`s, and load their
models once, in the initializer. `ProcessExecutor` (spawn context: DuckDB, TensorFlow and CUDA
are not fork-safe) is the default; `InlineExecutor` runs in the coordinator for tests and
debugging. Another pool (a Ray cluster) only has to offer `submit` and `shutdown`.
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import os
import signal
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

from etl.engine import worker
from etl.engine.blas import one_blas_thread
from etl.engine.errors import WorkerStartFailed
# Outcome and the item functions live in etl/engine/isolation.py; their names here are kept for
# the stages and tests that import them from the pool.
from etl.engine.isolation import (WHOLE_CHUNK, BatchFn, Deadline, InitFn, Outcome, ProcessFn,  # noqa: F401
                                  process_batched, process_chunk, process_one)

class Executor(Protocol):
    workers: int

    def submit(self, items: list[dict[str, Any]]) -> Future[list[Outcome]]: ...

    def shutdown(self, cancel: bool = False) -> None: ...


class InlineExecutor:
    """Runs items in the calling process, synchronously. For tests and `[run] executor = "inline"`.

    It cannot enforce `[run] item_timeout_s`: nothing can stop a call running in the coordinator
    itself (a hung item hangs the run; Ctrl-C twice stops it).
    """

    workers = 1

    def __init__(self, process: ProcessFn, params: Any, init: InitFn | None = None,
                 batch: BatchFn | None = None) -> None:
        self._process = process
        self._batch = batch
        self._params = params
        # Items get one BLAS thread, as in a worker (etl/engine/blas.py); the caller's come back at shutdown.
        self._restore_blas: Callable[[], None] | None = one_blas_thread()
        failure = worker.start(init, params)
        if failure is not None:
            self.shutdown()
            raise WorkerStartFailed(f"its model or worker could not start: {failure}")

    def submit(self, items: list[dict[str, Any]]) -> Future[list[Outcome]]:
        future: Future[list[Outcome]] = Future()
        future.set_result(process_chunk(self._process, items, self._params, self._batch))
        return future

    def shutdown(self, cancel: bool = False) -> None:
        if self._restore_blas is not None:
            self._restore_blas()
            self._restore_blas = None


# --- process pool -------------------------------------------------------------------------

_worker_params: Any = None
_start_error: str | None = None  # what the stage's init raised in this worker (said once, by the engine)
# Where this worker says which item it is on: (shared array, offset of its slot) or None.
_worker_slot: tuple[Any, int] | None = None
_SLOT = 4  # seq (odd while being written), chunk token (0: idle), item index (WHOLE_CHUNK: a batch), start


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the coordinator dies (kill -9 included).

    The request only covers a death after it is made: a coordinator killed while this worker was
    still starting is checked for right after it, or the worker would wait forever on its task
    queue (it holds that pipe's write end itself, so it never sees end-of-file)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)


def _init_worker(init: InitFn | None, params: Any, quiet_stderr: bool, fault_dir: str | None = None,
                 slots: Any = None, taken: Any = None) -> None:
    global _worker_params, _worker_slot, _start_error
    # Ctrl-C goes to the whole process group; only the coordinator decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if quiet_stderr:
        # Decoders (mpg123, libsndfile) print warnings straight to fd 2, over the progress bars.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    if slots is not None:
        with taken.get_lock():
            index = taken.value
            taken.value += 1
        if (index + 1) * _SLOT <= len(slots):
            _worker_slot = (slots, index * _SLOT)
    _worker_params = params
    one_blas_thread()  # for the worker's lifetime: results independent of thread counts (etl/engine/blas.py)
    _start_error = worker.start(init, params, fault_dir)


def _mark(token: int, index: int) -> None:
    """Tell the coordinator this worker started item `index` of chunk `token` (0: idle).

    A plain write to shared memory, no lock, queue or thread: it works even when the item then
    hangs in C code holding the GIL. A sequence number (odd while writing) keeps reads consistent.
    """
    if _worker_slot is None:
        return
    slots, base = _worker_slot
    slots[base] += 1
    slots[base + 1] = token
    slots[base + 2] = index
    slots[base + 3] = time.monotonic()
    slots[base] += 1


def _noop() -> None:
    return None


def _run_in_worker(process: ProcessFn, items: list[dict[str, Any]], token: int = 0,
                   batch: BatchFn | None = None) -> list[Outcome]:
    if _start_error is not None:  # the stage's error: the engine stops the stage, items stay pending
        raise WorkerStartFailed(f"its model or worker could not start: {_start_error}")
    try:
        return process_chunk(process, items, _worker_params, batch, lambda index: _mark(token, index))
    finally:
        _mark(0, 0)


def _with_sigint_ignored(start: Callable[[], None]) -> None:
    """Run `start` (which spawns workers) with SIGINT ignored, a disposition that survives exec:
    Ctrl-C in the terminal then reaches only the coordinator, even while a worker is starting.

    `signal.signal` works only in the main thread; from the watchdog thread (a pool restarted
    after a timeout) the same is done through libc's sigaction on Linux, restoring the exact
    previous action (Python's handler, its flags) afterwards. A Ctrl-C during those few
    milliseconds of fork/exec is ignored (press it again).
    """
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            start()
        finally:
            signal.signal(signal.SIGINT, previous)
        return
    restore = None
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            old = ctypes.create_string_buffer(512)  # larger than any struct sigaction
            if libc.sigaction(signal.SIGINT, None, old) == 0:
                new = ctypes.create_string_buffer(old.raw, 512)
                # sa_handler is the first member of struct sigaction on Linux; 1 is SIG_IGN.
                ctypes.memmove(new, ctypes.byref(ctypes.c_void_p(1)), ctypes.sizeof(ctypes.c_void_p))
                if libc.sigaction(signal.SIGINT, new, None) == 0:
                    restore = lambda: libc.sigaction(signal.SIGINT, old, None)  # noqa: E731
        except (OSError, AttributeError):
            restore = None
    try:
        start()
    finally:
        if restore is not None:
            restore()


class _Job:
    """One submitted chunk: the future the engine waits on and the items still to be processed."""

    __slots__ = ("outer", "pending", "results", "token", "inner", "one_by_one")

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.outer: Future[list[Outcome]] = Future()
        self.pending = list(items)        # items whose outcome is still to come from a worker
        self.results: list[Outcome] = []  # outcomes decided here (timed-out items)
        self.token = 0
        self.inner: Future[list[Outcome]] | None = None
        # Its batch passed the deadline: its items run one by one from now on (isolation.Deadline).
        self.one_by_one = False


class ProcessExecutor:
    """A spawn-context process pool; the model is loaded once per worker by `init`.

    With `item_timeout_s`, a watchdog thread applies the deadline rule (isolation.Deadline): every
    worker records in shared memory which item of which chunk it started and when, so the clock
    starts when a worker starts the item. An item past it is failed "timed out after N s", every
    worker is killed (a pool cannot lose one worker and go on) and a new pool is started; the other
    items of its chunk and every other chunk in flight are resubmitted, and the engine sees only
    their outcomes. Items done before the culprit in its chunk are computed again (their outcomes
    died with the worker). A `process_batch` call past the deadline has its chunk run again one
    item at a time, each under the deadline.
    """

    def __init__(self, process: ProcessFn, params: Any, init: InitFn | None = None, workers: int = 1,
                 quiet_stderr: bool = True, item_timeout_s: float | None = None,
                 batch: BatchFn | None = None) -> None:
        self.workers = workers
        self._process = process
        self._batch = batch
        self._init = init
        self._params = params
        self._quiet_stderr = quiet_stderr
        self._deadline = Deadline.of(item_timeout_s)
        self._lock = threading.RLock()
        self._jobs: dict[int, _Job] = {}  # token -> job, for chunks in the current pool
        self._tokens = itertools.count(1)
        self._closed = False
        self.restarts = 0  # pools replaced after a timeout
        self._slots: Any = None
        # Each worker's faulthandler report (etl/engine/worker.py), read when one dies.
        self._fault_dir = tempfile.mkdtemp(prefix="etl-worker-faults-")
        self._processes: list[Any] = []  # the current pool's worker processes
        self._pool = self._start_pool()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        if self._deadline.seconds is not None:
            self._watchdog = threading.Thread(target=self._watch, name="etl-item-deadlines", daemon=True)
            self._watchdog.start()

    def _start_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        initargs: tuple[Any, ...] = (self._init, self._params, self._quiet_stderr, self._fault_dir)
        if self._deadline.seconds is not None:
            self._slots = context.RawArray("d", _SLOT * self.workers)
            initargs += (self._slots, context.Value("i", 0))
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                   initializer=_init_worker, initargs=initargs)

        # Start every worker now (the pool starts one process per submit while none is idle).
        def start() -> None:
            for _ in range(self.workers):
                pool.submit(_noop)

        _with_sigint_ignored(start)
        self._processes = list((getattr(pool, "_processes", None) or {}).values())
        return pool

    def death(self) -> str | None:
        """After the pool broke: how its worker died ("SIGSEGV in librosa.core.pitch.estimate_tuning"),
        from the workers' exit codes and fault reports; None when no worker died on its own."""
        for process in self._processes:
            process.join(timeout=2)  # the pool terminates the survivors; let the codes settle
        faults = worker.read_faults(self._fault_dir, [p.pid for p in self._processes if p.pid])
        for process in self._processes:
            code = process.exitcode
            # The survivors were terminated by the pool (SIGTERM) after the death: not the cause.
            if process.pid in faults or (code is not None and code != 0 and code != -signal.SIGTERM):
                return worker.describe_death(faults.get(process.pid, ""), code)
        return None

    # --- submitting and collecting ----------------------------------------------------------

    def submit(self, items: list[dict[str, Any]]) -> Future[list[Outcome]]:
        job = _Job(items)
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is shut down")
            self._send(job)  # BrokenProcessPool propagates: the engine treats it as a crash
        return job.outer

    def _send(self, job: _Job) -> None:
        """Hand a job's pending items to the current pool (with the lock held)."""
        token = next(self._tokens)
        batch = None if job.one_by_one else self._batch
        inner = self._pool.submit(_run_in_worker, self._process, job.pending, token, batch)
        job.token, job.inner = token, inner
        self._jobs[token] = job
        inner.add_done_callback(lambda future, job=job: self._collect(job, future))

    def _collect(self, job: _Job, inner: Future[list[Outcome]]) -> None:
        with self._lock:
            if job.inner is not inner or self._jobs.get(job.token) is not job:
                return  # superseded: the job was resubmitted to a new pool after a timeout
            del self._jobs[job.token]
        if inner.cancelled():
            job.outer.cancel()
            return
        error = inner.exception()
        if error is not None:  # a worker died on its own (segfault, OOM kill): the engine isolates it
            job.outer.set_exception(error)
        else:
            job.outer.set_result(job.results + inner.result())

    # --- deadlines ------------------------------------------------------------------------

    def _running(self) -> list[tuple[int, int, float]]:
        """(token, item index, start) of each busy worker, from consistent reads of its slot."""
        slots, found = self._slots, []
        for base in range(0, len(slots), _SLOT):
            seq = slots[base]
            token, index, started = slots[base + 1], slots[base + 2], slots[base + 3]
            if seq % 2 or slots[base] != seq or not token:
                continue  # being written (read again next time) or idle
            found.append((int(token), int(index), started))
        return found

    def _watch(self) -> None:
        while not self._stop.wait(self._deadline.poll_s):
            now = time.monotonic()
            late = [(token, index, started) for token, index, started in self._running()
                    if self._deadline.passed(started, now)]
            if late:
                self._restart(late, now)

    def _restart(self, late: list[tuple[int, int, float]], now: float) -> None:
        with self._lock:
            if self._closed:
                return
            finished: list[_Job] = []
            for token, index, started in late:
                job = self._jobs.get(token)
                if job is None or job.inner is None or job.inner.done() or index >= len(job.pending):
                    continue  # it finished meanwhile
                unit = job.pending if index == WHOLE_CHUNK else [job.pending[index]]
                outcome = self._deadline.verdict(unit, started, now)
                if outcome is None:
                    job.one_by_one = True
                else:
                    job.results.append(outcome)
                    del job.pending[max(index, 0)]
            old_pool, jobs = self._pool, list(self._jobs.values())
            old_processes = list((getattr(old_pool, "_processes", None) or {}).values())
            self._jobs = {}
            for process in old_processes:  # before anything else finishes on the old pool
                if process.is_alive():
                    process.kill()
            self._pool = self._start_pool()
            self.restarts += 1
            for job in jobs:
                if job.inner is not None and job.inner.done() and not job.inner.cancelled() \
                        and job.inner.exception() is None:
                    job.results.extend(job.inner.result())  # it finished just before the kill
                    job.pending = []
                if job.pending:
                    self._send(job)
                else:
                    finished.append(job)
        for job in finished:
            job.outer.set_result(job.results)
        old_pool.shutdown(wait=False, cancel_futures=True)
        for process in old_processes:
            process.join(timeout=5)

    # --- stopping -------------------------------------------------------------------------

    def shutdown(self, cancel: bool = False) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool
        if cancel:
            # Workers may be deep inside a long item: do not wait for them.
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join(timeout=5)
        else:
            pool.shutdown(wait=True)
        # The watchdog thread started the workers of a restarted pool, and PR_SET_PDEATHSIG
        # kills them when that thread ends: it stops only after the pool is down.
        self._stop.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=5)
        shutil.rmtree(self._fault_dir, ignore_errors=True)
