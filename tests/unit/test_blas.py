"""Executors compute items with one BLAS thread and give the caller its own threads back
(etl/engine/blas.py; the results this protects are tested in tests/integration/test_blas_threads.py)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from etl.engine.blas import THREAD_VARIABLES, one_blas_thread
from etl.engine.pool import InlineExecutor


def _blas_threads() -> list[int]:
    np.ones(1)  # numpy's OpenBLAS is loaded
    return [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]


def _state() -> tuple[list[int], dict[str, str | None]]:
    return _blas_threads(), {name: os.environ.get(name) for name in THREAD_VARIABLES}


def _threads_seen(item: dict[str, Any], params: None) -> list[int]:
    return _blas_threads()


def test_one_blas_thread_until_restored() -> None:
    with threadpool_limits(2, user_api="blas"):
        before = _state()
        restore = one_blas_thread()
        assert _blas_threads() and set(_blas_threads()) == {1}
        assert all(os.environ[name] == "1" for name in THREAD_VARIABLES)  # for libraries loaded later
        restore()
        assert _state() == before


def test_inline_executor_items_see_one_thread_and_the_caller_gets_its_own_back() -> None:
    with threadpool_limits(2, user_api="blas"):
        before = _state()
        executor = InlineExecutor(_threads_seen, None)
        [outcome] = executor.submit([{"item_id": "a"}]).result()
        executor.shutdown()
        executor.shutdown(cancel=True)  # the runner may shut down twice (interrupted, then finally)
        assert outcome.status == "done" and set(outcome.result) == {1}
        assert _state() == before
