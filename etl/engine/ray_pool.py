"""The executor for a Ray cluster: the same `submit` / `shutdown` as the local pool.

The coordinator stays the only DuckDB writer. Each worker is a Ray actor that loads the stage's
model once (`init_worker`) and runs chunks of items with the same pure `process` function as a
local worker, returning `Outcome`s. A dispatcher thread hands queued chunks to idle actors,
resolves each chunk's future as it finishes (in any order), and watches for two things:

- an actor (or its node) that dies: a replacement actor is started and its chunk's items are
  retried one by one by other actors; an item alone on an actor in two actor deaths is failed as
  the culprit, so a crashing item cannot loop (isolation.CulpritSearch);
- `[run] item_timeout_s` (isolation.Deadline): the dispatcher cannot see which item of a chunk an
  actor is on, so a chunk past the deadline has its actor killed and replaced and its items run
  one by one; a single item past it is failed "timed out". Only an item that alone ran past the
  deadline fails, as on the local pool.

Nothing is committed twice: an outcome reaches the engine once, through its chunk's future, and
the engine commits it once. Ray is optional (`pip install 'music-etl[ray]'`) and imported here only.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from etl.engine import worker
from etl.engine.blas import one_blas_thread
from etl.engine.errors import ConfigError, WorkerStartFailed
from etl.engine.isolation import BatchFn, CulpritSearch, Deadline, InitFn, Outcome, ProcessFn, process_chunk

INSTALL = "pip install 'music-etl[ray]' (ray==2.60.0)"
_POLL_S = 0.05
# Chunks handed to an actor at once: the next is queued at the actor while one runs, so the actor
# never waits a round trip for work (a 20 ms item lost ~30 ms per item to that with one).
_PER_ACTOR = 2


@dataclass(frozen=True)
class RayResources:
    """What one actor of a stage asks the cluster for ([<stage>] ray_num_cpus / ray_num_gpus / ray_memory_mb)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0      # fractional allowed: 0.25 puts four actors on one GPU
    memory_mb: float = 0.0     # 0: no memory reservation
    address: str = ""          # "" : $RAY_ADDRESS, else a local cluster started for this run


class _Worker:
    """The actor: one per worker slot, holding the stage's model."""

    def __init__(self, process: ProcessFn, init: InitFn | None, params: Any, batch: BatchFn | None) -> None:
        self._process, self._params, self._batch = process, params, batch
        # One BLAS thread however many CPUs the actor reserved (Ray sets OMP_NUM_THREADS to them, which
        # OpenBLAS reads): results independent of thread counts (etl/engine/blas.py).
        one_blas_thread()
        self._start_error = worker.start(init, params)

    def ready(self) -> str | None:
        """None once the model is loaded; else why it could not be (the stage's error)."""
        return self._start_error

    def run(self, items: list[dict[str, Any]]) -> list[Outcome]:
        return process_chunk(self._process, items, self._params, self._batch)


@dataclass
class _Job:
    items: list[dict[str, Any]]
    future: Future[list[Outcome]]
    results: list[Outcome]


@dataclass
class _Running:
    job: _Job
    actor: Any
    started: float | None  # None: queued behind the actor's other chunk


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(f"executor = \"ray\" needs Ray: {INSTALL}") from None
    return ray


class RayExecutor:
    def __init__(self, process: ProcessFn, params: Any, init: InitFn | None = None, workers: int = 1,
                 resources: RayResources | None = None, item_timeout_s: float | None = None,
                 batch: BatchFn | None = None) -> None:
        ray = self._ray = _ray()
        resources = resources or RayResources()
        self.workers = workers
        self._deadline = Deadline.of(item_timeout_s)
        if not ray.is_initialized():
            # "local": a new cluster for this process, never one a stale `ray start` left its address for.
            address = resources.address or os.environ.get("RAY_ADDRESS") or "local"
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        options: dict[str, Any] = {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus,
                                   "max_restarts": 0, "max_task_retries": 0}
        if resources.memory_mb > 0:
            options["memory"] = int(resources.memory_mb * 2**20)
        self._actor_class = ray.remote(_Worker).options(**options)
        self._args = (process, init, params, batch)
        self._lock = threading.Lock()
        self._queue: deque[_Job] = deque()
        self._idle: deque[Any] = deque()
        self._starting: dict[Any, Any] = {}         # ready() ref -> actor still being placed / loading
        self._running: dict[Any, _Running] = {}     # run() ref -> what it runs where
        # An item alone on an actor may just have lost its node: blamed at its second death.
        self._culprits = CulpritSearch(deaths_to_blame=2)
        self._dead: set[Any] = set()                # actors already replaced
        self._closed = False
        self._error: BaseException | None = None
        for _ in range(workers):
            self._start_actor()
        self._thread = threading.Thread(target=self._dispatch, name="etl-ray-dispatch", daemon=True)
        self._thread.start()

    # --- the engine's side ----------------------------------------------------------------

    def submit(self, items: list[dict[str, Any]]) -> Future[list[Outcome]]:
        job = _Job(list(items), Future(), [])
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is shut down")
            if isinstance(self._error, WorkerStartFailed):
                raise self._error
            if self._error is not None:
                raise RuntimeError(f"the Ray executor failed: {self._error}")
            self._queue.append(job)
        return job.future

    def shutdown(self, cancel: bool = False) -> None:
        if not cancel:
            while True:  # let chunks in flight finish
                with self._lock:
                    if not (self._queue or self._running) or self._error is not None:
                        break
                time.sleep(_POLL_S)
        with self._lock:
            self._closed = True
            actors = [*self._idle, *self._starting.values(), *(r.actor for r in self._running.values())]
            jobs = [*self._queue, *(r.job for r in self._running.values())]
            self._queue.clear()
            self._running.clear()
            self._idle.clear()
            self._starting.clear()
        self._thread.join(timeout=5)
        for job in jobs:
            job.future.cancel()
        for actor in actors:
            self._ray.kill(actor, no_restart=True)
        # A local cluster started for this run serves its later stages too; Ray stops it at exit.

    # --- the dispatcher thread --------------------------------------------------------------

    def _start_actor(self) -> None:
        actor = self._actor_class.remote(*self._args)
        self._starting[actor.ready.remote()] = actor

    def _dispatch(self) -> None:
        ray = self._ray
        try:
            while True:
                with self._lock:
                    if self._closed:
                        return
                    while self._queue and self._idle:
                        job, actor = self._queue.popleft(), self._idle.popleft()
                        busy = any(r.actor == actor and r.started is not None for r in self._running.values())
                        self._running[actor.run.remote(job.items)] = _Running(
                            job, actor, None if busy else time.monotonic())
                    refs = [*self._running, *self._starting]
                if not refs:
                    time.sleep(_POLL_S)
                    continue
                # Wake on the first finished chunk, then take every other one already finished.
                ready, rest = ray.wait(refs, num_returns=1, timeout=_POLL_S, fetch_local=False)
                if ready and rest:
                    ready += ray.wait(rest, num_returns=len(rest), timeout=0, fetch_local=False)[0]
                with self._lock:
                    if self._closed:
                        return
                    for ref in ready:
                        self._finished(ref)
                    self._enforce_deadlines()
        except BaseException as error:  # noqa: BLE001  (reported to every waiting future)
            with self._lock:
                self._error = error
                jobs = [*self._queue, *(r.job for r in self._running.values())]
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)

    def _finished(self, ref: Any) -> None:
        ray = self._ray
        if ref in self._starting:
            actor = self._starting.pop(ref)
            try:
                failure = ray.get(ref)
            except ray.exceptions.RayActorError:
                self._start_actor()  # died while loading (its node went away): try again
                return
            if failure is not None:  # to every waiting future (see _dispatch), said once by the engine
                raise WorkerStartFailed(f"its model or worker could not start: {failure}")
            self._idle.extend([actor] * _PER_ACTOR)
            return
        running = self._running.pop(ref, None)
        if running is None:
            return
        try:
            outcomes = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
            self._lost(running)
            return
        for queued in self._running.values():  # the actor's next chunk starts now
            if queued.actor == running.actor and queued.started is None:
                queued.started = time.monotonic()
                break
        self._idle.append(running.actor)
        running.job.future.set_result(running.job.results + outcomes)

    def _replace(self, actor: Any) -> None:
        """Once per dead actor (each of its chunks reports the death): kill it for good, start another."""
        if actor in self._dead:
            return
        self._dead.add(actor)
        self._ray.kill(actor, no_restart=True)
        self._idle = deque(a for a in self._idle if a != actor)
        self._start_actor()

    def _lost(self, running: _Running) -> None:
        """The actor died with this chunk: its items are retried, or the culprit failed."""
        self._replace(running.actor)
        job = running.job
        if len(job.items) == 1 and running.started is None:  # queued behind the chunk that was running
            self._queue.appendleft(job)
            return
        suspects, culprit = self._culprits.lost(job.items)
        if culprit is not None:
            self._resolve(job, [culprit])
        else:
            self._one_by_one(job, suspects)

    def _one_by_one(self, job: _Job, items: list[dict[str, Any]]) -> None:
        """Queue `items` of `job` (first), each a chunk of its own that resolves into the job."""
        if len(items) == 1 and job.items == items:
            self._queue.appendleft(job)
            return
        for item in items:
            self._queue.appendleft(_Job([item], _Single(job, item["item_id"]), []))

    @staticmethod
    def _resolve(job: _Job, outcomes: list[Outcome]) -> None:
        job.results.extend(outcomes)
        job.future.set_result(job.results)

    def _enforce_deadlines(self) -> None:
        if self._deadline.seconds is None:
            return
        now = time.monotonic()
        for ref, running in list(self._running.items()):
            if running.started is None or not self._deadline.passed(running.started, now):
                continue
            del self._running[ref]
            self._replace(running.actor)  # its queued chunk then comes back through _lost
            outcome = self._deadline.verdict(running.job.items, running.started, now)
            if outcome is None:
                self._one_by_one(running.job, running.job.items)
            else:
                self._resolve(running.job, [outcome])


class _Single(Future):  # type: ignore[type-arg]
    """The future of one item split off a chunk: its outcome joins the chunk's, whose future is
    resolved when the last of its items is in."""

    def __init__(self, parent: _Job, item_id: str) -> None:
        super().__init__()
        self._parent, self._item_id = parent, item_id

    def set_result(self, result: list[Outcome]) -> None:  # type: ignore[override]
        super().set_result(result)
        parent = self._parent
        parent.results.extend(result)
        if len(parent.results) == len(parent.items) and not parent.future.done():
            parent.future.set_result(parent.results)
