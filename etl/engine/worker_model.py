"""A model held once per worker process (the pipeline's "batch mode").

A stage's `init_worker` loads it when a pool starts its worker; `get` returns it, loading it where no
initializer ran (the inline executor, a caller using the algorithm directly) and rebuilding it when
the settings it depends on changed (a later run in the same process may name another model). `init`
(the initializer's call, once per pool) also rebuilds it when the model files changed on disk (a head
installed or replaced between two runs of one process); `get`, once per item, does not look at them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class WorkerModel(Generic[T]):
    def __init__(self, load: Callable[[Any], T], settings: Callable[[Any], Hashable],
                 files: Callable[[Any], list[str]] | None = None) -> None:
        self._load = load          # (params) -> the model
        self._settings = settings  # (params) -> what the model depends on
        self._files = files        # (params) -> the model files it is loaded from
        self._model: T | None = None
        self._built_for: Hashable = None
        self._files_hash: str | None = None

    def init(self, params: Any) -> T:
        if self._files is not None:
            from etl.engine.lineage import model_files_hash

            current = model_files_hash(self._files(params))
            if current != self._files_hash:
                self._model, self._files_hash = None, current
        return self.get(params)

    def get(self, params: Any) -> T:
        wanted = self._settings(params)
        if self._model is None or self._built_for != wanted:
            self._model, self._built_for = self._load(params), wanted
        return self._model
