from __future__ import annotations

from pathlib import Path

import pytest

from etl.app import registry
from etl.engine import numba_cache
from etl.engine.config import Config

# The test process compiles (librosa, the beats Viterbi) into a numba cache folder of its own, as
# every process of the engine does: never into the install's __pycache__ (etl/engine/numba_cache.py).
numba_cache.claim()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "etl.duckdb"


@pytest.fixture
def inline_config() -> Config:
    """Settings for engine tests: the in-process executor, small batches."""
    return Config.load(registry.params_types(), environ={},
                       cli={"run.executor": "inline", "run.batch_size": "3"})
