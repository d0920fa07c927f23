from __future__ import annotations

from pathlib import Path

import pytest

from etl import stages as registry
from etl.engine.config import Config


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "etl.duckdb"


@pytest.fixture
def inline_config() -> Config:
    """Settings for engine tests: the in-process executor, small batches."""
    return Config.load(registry.params_types(), environ={},
                       cli={"run.executor": "inline", "run.batch_size": "3"})
