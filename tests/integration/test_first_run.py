"""The first run on a fresh machine: numba's cache starts empty and two workers compile at once.

librosa compiles with numba's `cache=True`. Two feature workers compiling the same functions into
one cache folder at the same moment mixed their files (numba issue 10128), and from then on every
process loading them segfaulted: every features item failed, on every later run. Each round here
runs the features stage with two fresh workers on their first crops, over a numba cache that was
empty before the first round.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from etl.app import pipeline
from etl.engine.runner import RunOptions
from tests.helpers import copy_corpus, require, rows, run_stages

require("librosa")
require("essentia")
require("madmom")

TRACK = "librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
ROUNDS = 3


@pytest.fixture(scope="module")
def cropped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a dozen two-bar crops of real music, features not yet computed."""
    root = tmp_path_factory.mktemp("first-run")
    copy_corpus(root / "music", TRACK)
    db = root / "crops.duckdb"
    run_stages(db, root / "music", ["ingest", "beats", "crops"],
               **{"crops.bars": "2", "crops.bars_multiple": "1"})
    return db


@pytest.mark.slow
def test_two_workers_on_an_empty_numba_cache_fail_no_item(cropped: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # What a fresh install has: no cache anywhere numba will look (the variable is what numba
    # itself honours; the engine keeps a folder per process beneath it).
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    monkeypatch.delenv("MUSIC_ETL_NUMBA_CACHE_DIR", raising=False)
    config = pipeline.load_config(None, {"run.executor": "process", "features.workers": "2",
                                         "features.batch_size": "4"})
    for round_ in range(ROUNDS):
        db = cropped.with_name(f"round{round_}.duckdb")  # beside it: the same data folder
        shutil.copyfile(cropped, db)
        [report] = pipeline.run(db, config, stage_names=["features"],
                                options=RunOptions(run_id=uuid.uuid4().hex[:12], workers=2))
        failures = rows(db, "SELECT item_id, last_error FROM stage_items WHERE stage = 'features' "
                            "AND status = 'failed'")
        assert report.failed == 0 and not failures, f"round {round_}: {failures}"
        assert report.done >= 8 and report.skipped_reason is None
