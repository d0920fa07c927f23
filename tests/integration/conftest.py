"""Fixtures shared by the query and export tests: one store of real tagged music, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import copy_corpus, etl

TAGGED = ["mp3_tagged/sectoid_feelings_40s_ffmpeg.mp3", "mp3_tagged/singularity_deprecation_30s_mapmeta.mp3",
          "mp3_tagged/wesnoth_traveling_minstrels_30s_lame.mp3"]
# Two-bar crops on every bar: a dozen or more crops per 30 s track.
SHORT_CROPS = {"ETL_CROPS_BARS": "2", "ETL_CROPS_BARS_MULTIPLE": "1"}


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only for the tests that use it (a test that changes a store copies it first)."""
    root = tmp_path_factory.mktemp("store")
    copy_corpus(root / "music", *TAGGED)
    db = root / "etl.duckdb"
    etl("run", "--source", str(root / "music"), db=db, env=SHORT_CROPS, check=True, timeout=600)
    return db

