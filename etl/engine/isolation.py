"""Failure isolation, one place for every executor (process pool, inline, Ray).

What an item's failure may cost is decided here, so that a stage gets the same outcome for the same
item on any executor:

- `process_chunk`: how a worker runs a chunk. A stage's `process_batch` runs the whole chunk at
  once; when it raises as a whole, the items run one by one so the failure lands on its item.
- `chunks`: how a claimed batch is cut into pool tasks.
- `Deadline`: `[run] item_timeout_s`, ONE rule: an item still running that long after a worker
  started it is failed "timed out after N s" (permanent). Items a worker runs as one unit whose
  progress cannot be seen (a `process_batch` call, a Ray chunk) are, once the unit passes the
  deadline, run again one by one, each under the deadline: only the slow item is failed.
- `CulpritSearch`: items in flight when a worker died are suspects, retried one by one; a single
  item whose worker died is failed as the culprit (retryable: a crash may be the machine's).
- `CrashLoopGuard`: items that killed their worker before anything succeeded are held back; a run
  of them means the stage, not the items, is broken (a crash loop stops the stage, fails nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from etl.engine.errors import CrashLoop, ItemError, SkipItem, classify

ProcessFn = Callable[[dict[str, Any], Any], Any]
# A stage's `process_batch`: (items, params) -> one result per item, in order, or the exception that
# item raised (a model runs once on the whole chunk; see `process_chunk`).
BatchFn = Callable[[list[dict[str, Any]], Any], list[Any]]
InitFn = Callable[[Any], None]
# Told which item a worker starts (its index in the chunk), or WHOLE_CHUNK while a batch runs.
StartFn = Callable[[int], None]
WHOLE_CHUNK = -1

# Items that each killed their worker, with none succeeding before them in this run, that make a
# crash loop: the stage (a library, a broken cache, a model) is at fault, not the items.
CRASH_LOOP_ITEMS = 3


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
    # Decided without a worker's answer: the item killed its worker (`death` says how) or ran past
    # its deadline. Such outcomes say nothing about whether the stage works (the crash loop guard).
    from_worker: bool = True
    death: str | None = None


# --- running a chunk in a worker ------------------------------------------------------------

def _outcome(item_id: str, result: Any, elapsed_s: float) -> Outcome:
    """An item's outcome from what its processing returned, or the exception it raised."""
    if isinstance(result, SkipItem):
        return Outcome(item_id, "skipped", error=result.reason, elapsed_s=elapsed_s)
    if isinstance(result, ItemError):
        return Outcome(item_id, "failed", error=result.reason, retryable=result.retryable, elapsed_s=elapsed_s)
    if isinstance(result, Exception):  # classified in one place (etl/engine/errors.py); the run goes on
        reason, retryable = classify(result)
        return Outcome(item_id, "failed", error=reason, retryable=retryable, elapsed_s=elapsed_s)
    return Outcome(item_id, "done", result=result, elapsed_s=elapsed_s)


def process_one(process: ProcessFn, item: dict[str, Any], params: Any) -> Outcome:
    """Run `process` on one item and turn every exception into an Outcome (never raises)."""
    started = time.perf_counter()
    try:
        result = process(item, params)
    except Exception as error:
        result = error
    return _outcome(item["item_id"], result, time.perf_counter() - started)


def process_batched(batch: BatchFn, items: list[dict[str, Any]], params: Any) -> list[Outcome] | None:
    """Run a stage's `process_batch` on a chunk: one outcome per item, each item's own exception
    failing (or skipping) that item alone. None when the batch as a whole raised (a model call over
    several items cannot say which item broke it): the caller then runs the items one by one, so the
    failure lands on the item that causes it. Each item is charged an equal share of the time."""
    started = time.perf_counter()
    try:
        results = batch(items, params)
    except Exception:
        return None
    if len(results) != len(items):  # a bug in the stage: said on every item of the chunk
        results = [RuntimeError(f"process_batch returned {len(results)} results for {len(items)} items")] * len(items)
    share_s = (time.perf_counter() - started) / max(1, len(items))
    return [_outcome(item["item_id"], result, share_s) for item, result in zip(items, results)]


def _no_marks(index: int) -> None:
    return None


def process_chunk(process: ProcessFn, items: list[dict[str, Any]], params: Any,
                  batch: BatchFn | None = None, on_start: StartFn = _no_marks) -> list[Outcome]:
    """A chunk's outcomes, in order: batched when the stage can, else (or when the batch raised as a
    whole) one by one. `on_start` hears which item starts (WHOLE_CHUNK while a batch runs), so an
    executor that watches deadlines knows what its worker is doing."""
    if batch is not None and len(items) > 1:
        on_start(WHOLE_CHUNK)
        outcomes = process_batched(batch, items, params)
        if outcomes is not None:
            return outcomes
    found = []
    for index, item in enumerate(items):
        on_start(index)
        found.append(process_one(process, item, params))
    return found


def chunks(items: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """A claimed batch cut into pool tasks of `size` items (the last may be shorter)."""
    size = max(1, size)
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


# --- deadlines ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Deadline:
    """`[run] item_timeout_s` as documented (README, etl/engine/config.py): an item still running
    `seconds` after a worker started it is failed "timed out after N s", permanently (the same
    input would hang again; `--retry-failed` tries it anyway). The clock starts when a worker
    starts the item, so queueing, worker start-up and model loading do not count.

    An executor that can see which item its worker is on (the process pool's shared-memory marks)
    applies it per item directly. One that sees only a unit of several items run together (a
    `process_batch` call, a Ray chunk) cannot tell which item is late once the unit passes the
    deadline: the unit's items are then run one by one, each under the deadline (`verdict` is
    None). Either way only an item that alone ran past the deadline fails; the others redo work.
    """

    seconds: float | None  # None: no deadline

    @classmethod
    def of(cls, item_timeout_s: float | None) -> Deadline:
        return cls(item_timeout_s if item_timeout_s and item_timeout_s > 0 else None)

    @property
    def poll_s(self) -> float:
        """How often a watchdog looks: a small part of the deadline, at most 0.1 s."""
        return min(0.1, self.seconds / 10) if self.seconds else 0.1

    def passed(self, started: float, now: float) -> bool:
        return self.seconds is not None and now - started > self.seconds

    def verdict(self, unit: list[dict[str, Any]], started: float, now: float) -> Outcome | None:
        """For a unit that passed the deadline: a single item's "timed out" outcome, or None for
        several items (run them one by one: which of them is late cannot be told)."""
        if len(unit) != 1:
            return None
        return Outcome(unit[0]["item_id"], "failed", error=f"timed out after {self.seconds:g} s", retryable=False,
                       elapsed_s=now - started, from_worker=False)


# --- worker deaths --------------------------------------------------------------------------

_TIMES = {1: "", 2: " twice"}


def died(item_id: str, death: str | None, times: int = 1) -> Outcome:
    """The outcome of the item found to kill its worker; retryable: the crash may be the machine's."""
    how = f" ({death})" if death else ""
    again = _TIMES.get(times, f" {times} times")
    return Outcome(item_id, "failed", retryable=True, from_worker=False,
                   death=death or (f"the worker died{again}" if again else "a crash"),
                   error=f"the worker process died{again}{how} while processing this item (a crash in a decoder "
                         "or library, or killed for memory)")


class CulpritSearch:
    """Finds the item that kills its worker (segfault, OOM kill, a lost Ray node).

    Items in flight when a worker died are suspects, to be retried one by one. A single item whose
    worker died `deaths_to_blame` times is the culprit. 1 where a worker death can only be the
    process's own (the local pool, which retries suspects alone); 2 on a cluster, where an item
    alone on an actor may just have lost its node.
    """

    def __init__(self, deaths_to_blame: int = 1) -> None:
        self.deaths_to_blame = deaths_to_blame
        self._deaths: dict[str, int] = {}  # item id -> worker deaths it was in flight for, alone

    def lost(self, items: list[dict[str, Any]], death: str | None = None) -> tuple[list[dict[str, Any]], Outcome | None]:
        """The worker running `items` died (`death`: how, when known): the suspects to retry one by
        one, or the culprit's outcome."""
        if len(items) != 1:
            return list(items), None
        item_id = items[0]["item_id"]
        deaths = self._deaths[item_id] = self._deaths.get(item_id, 0) + 1
        if deaths < self.deaths_to_blame:
            return list(items), None
        return [], died(item_id, death, deaths)


class CrashLoopGuard:
    """Holds back items that killed their worker before any item of this run succeeded: the next
    success shows the stage works, and the held items are failed as the bad files they are;
    CRASH_LOOP_ITEMS of them in a row (or every item of the stage, at the `end`) stop the stage
    instead, with nothing failed and its items pending."""

    def __init__(self, items: int = CRASH_LOOP_ITEMS) -> None:
        self._limit = items
        self._held: list[Outcome] = []
        self._worked = False  # a worker returned an item's outcome in this run

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def settle(self, outcomes: list[Outcome], end: bool = False) -> list[Outcome]:
        """The outcomes to commit now (raises CrashLoop when the stage is at fault)."""
        if any(o.from_worker for o in outcomes):
            self._worked = True
        if self._worked:
            held, self._held = self._held, []
            return held + outcomes
        self._held.extend(o for o in outcomes if o.death)
        held = len(self._held)
        if held >= self._limit or (end and held >= 2):
            raise CrashLoop(f"its first {held} items each killed their worker and none succeeded: "
                            f"{self._held[-1].death}; the items stay pending (run again once the cause "
                            "is fixed; --debug shows worker output)")
        if end:
            held_outcomes, self._held = self._held, []
            return held_outcomes + [o for o in outcomes if not o.death]
        return [o for o in outcomes if not o.death]
