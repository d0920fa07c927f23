"""A model held once per worker process (the pipeline's "batch mode").

A stage's `init_worker` loads it when a pool starts its worker; `get` returns it, loading it where no
initializer ran (the inline executor, a caller using the algorithm directly) and rebuilding it when
the settings it depends on changed (a later run in the same process may name another model).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class WorkerModel(Generic[T]):
    def __init__(self, load: Callable[[Any], T], settings: Callable[[Any], Hashable]) -> None:
        self._load = load          # (params) -> the model
        self._settings = settings  # (params) -> what the model depends on
        self._model: T | None = None
        self._built_for: Hashable = None

    def get(self, params: Any) -> T:
        wanted = self._settings(params)
        if self._model is None or self._built_for != wanted:
            self._model, self._built_for = self._load(params), wanted
        return self._model
