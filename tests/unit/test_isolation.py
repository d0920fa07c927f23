"""etl/engine/isolation.py: chunking, one-by-one retries, the deadline rule, the culprit search and
the crash loop guard, with toy process functions; and the same timeout outcome on both executors."""

from __future__ import annotations

import time
from typing import Any

import pytest

from etl.engine.errors import CrashLoop
from etl.engine.isolation import (CRASH_LOOP_ITEMS, WHOLE_CHUNK, CrashLoopGuard, CulpritSearch, Deadline, Outcome,
                                  chunks, died, process_chunk)
from tests.helpers import require


def _items(*ids: str) -> list[dict[str, Any]]:
    return [{"item_id": i} for i in ids]


def echo(item: dict[str, Any], params: Any) -> str:
    if item["item_id"] == "bad":
        raise ValueError("a bad item")
    return item["item_id"]


def batch_that_breaks(items: list[dict[str, Any]], params: Any) -> list[Any]:
    if any(item["item_id"] == "bad" for item in items):
        raise RuntimeError("the model call broke")
    return [item["item_id"].upper() for item in items]


def test_chunks_cut_a_batch_into_tasks() -> None:
    items = _items(*"abcde")
    assert [[i["item_id"] for i in chunk] for chunk in chunks(items, 2)] == [["a", "b"], ["c", "d"], ["e"]]
    assert chunks(items, 0) == [[item] for item in items]  # never an empty task
    assert chunks([], 3) == []


def test_a_batch_that_breaks_as_a_whole_runs_one_by_one_and_says_which_item_starts() -> None:
    started: list[int] = []
    outcomes = process_chunk(echo, _items("a", "bad", "c"), None, batch_that_breaks, started.append)
    assert [(o.item_id, o.status, o.result) for o in outcomes] == [
        ("a", "done", "a"), ("bad", "failed", None), ("c", "done", "c")]
    assert "a bad item" in outcomes[1].error
    assert started == [WHOLE_CHUNK, 0, 1, 2]
    started.clear()
    assert [o.result for o in process_chunk(echo, _items("a", "b"), None, batch_that_breaks, started.append)] == ["A", "B"]
    assert started == [WHOLE_CHUNK]


def test_the_deadline_fails_a_single_item_and_splits_a_unit_of_several() -> None:
    assert Deadline.of(None).seconds is None and Deadline.of(0).seconds is None
    assert not Deadline.of(None).passed(0.0, 1e9)
    deadline = Deadline.of(2)
    assert not deadline.passed(10.0, 12.0) and deadline.passed(10.0, 12.5)
    outcome = deadline.verdict(_items("slow"), 10.0, 12.5)
    assert (outcome.item_id, outcome.status, outcome.error, outcome.retryable, outcome.from_worker) == (
        "slow", "failed", "timed out after 2 s", False, False)
    assert outcome.elapsed_s == pytest.approx(2.5)
    assert deadline.verdict(_items("a", "b"), 10.0, 12.5) is None  # which one is late cannot be told


def test_the_culprit_search_retries_suspects_and_blames_a_lone_item() -> None:
    local = CulpritSearch(deaths_to_blame=1)
    assert local.lost(_items("a", "b"), "SIGSEGV in x") == (_items("a", "b"), None)
    retry, culprit = local.lost(_items("b"), "SIGSEGV in x")
    assert retry == [] and culprit == died("b", "SIGSEGV in x")
    assert culprit.error.startswith("the worker process died (SIGSEGV in x) while processing this item")
    assert culprit.retryable and not culprit.from_worker and culprit.death == "SIGSEGV in x"

    cluster = CulpritSearch(deaths_to_blame=2)  # a lone item's first death may be its node's
    assert cluster.lost(_items("c")) == (_items("c"), None)
    retry, culprit = cluster.lost(_items("c"))
    assert retry == [] and culprit.death == "the worker died twice"
    assert culprit.error.startswith("the worker process died twice while processing this item")


def _crash(item_id: str) -> Outcome:
    return died(item_id, "SIGSEGV")


def test_the_crash_loop_guard_holds_crashes_until_an_item_succeeds() -> None:
    guard = CrashLoopGuard()
    assert guard.settle([_crash("c1")]) == [] and guard.holding
    done = Outcome("ok", "done", result=1)
    assert [o.item_id for o in guard.settle([done])] == ["c1", "ok"] and not guard.holding
    assert guard.settle([_crash("c2")]) == [_crash("c2")]  # the stage works: a crash is the item's


def test_the_crash_loop_guard_stops_a_stage_whose_every_item_crashes() -> None:
    guard = CrashLoopGuard()
    for n in range(CRASH_LOOP_ITEMS - 1):
        assert guard.settle([_crash(f"c{n}")]) == []
    with pytest.raises(CrashLoop, match=f"its first {CRASH_LOOP_ITEMS} items each killed their worker"):
        guard.settle([_crash("last")])
    lone = CrashLoopGuard()
    lone.settle([_crash("c1")])
    assert lone.settle([], end=True) == [_crash("c1")]  # one crash alone is the file's
    two = CrashLoopGuard()
    two.settle([_crash("c1"), _crash("c2")])
    with pytest.raises(CrashLoop):
        two.settle([], end=True)


# --- the same deadline outcome on both executors ---------------------------------------------

def slow_one(item: dict[str, Any], params: Any) -> str:
    """"slow" takes 2.5 s: past a 1 s deadline, yet within 1 s x its chunk's 3 items."""
    time.sleep(2.5 if item["item_id"] == "slow" else 0.05)
    return item["item_id"]


def _timeout_outcomes(executor: Any) -> dict[str, tuple[str, str | None]]:
    try:
        future = executor.submit(_items("fast1", "slow", "fast2"))
        return {o.item_id: (o.status, o.error) for o in future.result(timeout=120)}
    finally:
        executor.shutdown(cancel=True)


EXPECTED = {"fast1": ("done", None), "slow": ("failed", "timed out after 1 s"), "fast2": ("done", None)}


def test_the_process_pool_fails_an_item_past_its_deadline_inside_a_chunk() -> None:
    from etl.engine.pool import ProcessExecutor

    assert _timeout_outcomes(ProcessExecutor(slow_one, None, workers=1, item_timeout_s=1)) == EXPECTED


def slow_batch(items: list[dict[str, Any]], params: Any) -> list[Any]:
    time.sleep(2.5 if any(item["item_id"] == "slow" for item in items) else 0.05)
    return [item["item_id"] for item in items]


def test_a_batch_past_its_deadline_runs_one_by_one_and_fails_only_the_slow_item() -> None:
    from etl.engine.pool import ProcessExecutor

    executor = ProcessExecutor(slow_one, None, workers=1, item_timeout_s=1, batch=slow_batch)
    assert _timeout_outcomes(executor) == EXPECTED  # not the chunk's first item, as it once was
    assert executor.restarts == 2  # the batch, then "slow" on its own


@pytest.mark.slow
def test_ray_gives_the_same_timeout_outcome_as_the_process_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    require("ray")
    import ray

    from etl.engine.pool import ProcessExecutor
    from etl.engine.ray_pool import RayExecutor

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    try:
        on_ray = _timeout_outcomes(RayExecutor(slow_one, None, workers=1, item_timeout_s=1))
    finally:
        ray.shutdown()
    assert on_ray == _timeout_outcomes(ProcessExecutor(slow_one, None, workers=1, item_timeout_s=1)) == EXPECTED
