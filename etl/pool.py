"""Executors: where a stage's pure `process` function runs.

Workers never touch the database. They get plain item dicts, return `Outcome`s, and load their
models once, in the initializer. `ProcessExecutor` (spawn context: DuckDB, TensorFlow and CUDA
are not fork-safe) is the default; `InlineExecutor` runs in the coordinator for tests and
debugging. Another pool (a Ray cluster) only has to offer `submit` and `shutdown`.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from etl.errors import ItemError, SkipItem, classify

ProcessFn = Callable[[dict[str, Any], Any], Any]
InitFn = Callable[[Any], None]


@dataclass
class Outcome:
    """What became of one item. `result` is the stage's own value (only when done)."""

    item_id: str
    status: str  # done | failed | skipped
    result: Any = None
    error: str | None = None
    retryable: bool = False
    elapsed_s: float = 0.0
    item: dict[str, Any] | None = None  # the claimed item, attached by the coordinator for `write`


def process_one(process: ProcessFn, item: dict[str, Any], params: Any) -> Outcome:
    """Run `process` on one item and turn every exception into an Outcome (never raises)."""
    started = time.perf_counter()
    item_id = item["item_id"]
    try:
        result = process(item, params)
        return Outcome(item_id, "done", result=result, elapsed_s=time.perf_counter() - started)
    except SkipItem as skip:
        return Outcome(item_id, "skipped", error=skip.reason, elapsed_s=time.perf_counter() - started)
    except ItemError as error:
        return Outcome(item_id, "failed", error=error.reason, retryable=error.retryable,
                       elapsed_s=time.perf_counter() - started)
    except Exception as error:  # classified in one place (etl/errors.py); the run goes on
        reason, retryable = classify(error)
        return Outcome(item_id, "failed", error=reason, retryable=retryable, elapsed_s=time.perf_counter() - started)


def process_chunk(process: ProcessFn, items: list[dict[str, Any]], params: Any) -> list[Outcome]:
    return [process_one(process, item, params) for item in items]


class Executor(Protocol):
    workers: int

    def submit(self, items: list[dict[str, Any]]) -> Future[list[Outcome]]: ...

    def shutdown(self, cancel: bool = False) -> None: ...


class InlineExecutor:
    """Runs items in the calling process, synchronously. For tests and `[run] executor = "inline"`."""

    workers = 1

    def __init__(self, process: ProcessFn, params: Any, init: InitFn | None = None) -> None:
        self._process = process
        self._params = params
        if init is not None:
            init(params)

    def submit(self, items: list[dict[str, Any]]) -> Future[list[Outcome]]:
        future: Future[list[Outcome]] = Future()
        future.set_result(process_chunk(self._process, items, self._params))
        return future

    def shutdown(self, cancel: bool = False) -> None:
        pass


# --- process pool -------------------------------------------------------------------------

_worker_params: Any = None


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the coordinator dies (kill -9 included)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker(init: InitFn | None, params: Any, quiet_stderr: bool) -> None:
    global _worker_params
    # Ctrl-C goes to the whole process group; only the coordinator decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if quiet_stderr:
        # Decoders (mpg123, libsndfile) print warnings straight to fd 2, over the progress bars.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    _worker_params = params
    if init is not None:
        init(params)


def _noop() -> None:
    return None


def _run_in_worker(process: ProcessFn, items: list[dict[str, Any]]) -> list[Outcome]:
    return process_chunk(process, items, _worker_params)


class ProcessExecutor:
    """A spawn-context process pool; the model is loaded once per worker by `init`."""

    def __init__(self, process: ProcessFn, params: Any, init: InitFn | None = None, workers: int = 1,
                 quiet_stderr: bool = True) -> None:
        self.workers = workers
        self._process = process
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(init, params, quiet_stderr),
        )
        # Start every worker now with SIGINT ignored, a disposition that survives exec: Ctrl-C in
        # the terminal then reaches only the coordinator, even while a worker is still starting.
        # (The pool starts one process per submit while none is idle, so `workers` no-ops do it.)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for _ in range(workers):
                self._pool.submit(_noop)
        finally:
            signal.signal(signal.SIGINT, previous)

    def submit(self, items: list[dict[str, Any]]) -> Future[list[Outcome]]:
        return self._pool.submit(_run_in_worker, self._process, items)

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            # Workers may be deep inside a long item: do not wait for them.
            processes = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join(timeout=5)
        else:
            self._pool.shutdown(wait=True)
