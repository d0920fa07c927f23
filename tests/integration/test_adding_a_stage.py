"""docs/adding-a-stage.md, walked through: a stage kept in a folder of its own, outside etl/
(tests/fixtures/example_stages/crop_levels, copied to a temporary package), joins the pipeline by
`MUSIC_ETL_STAGE_PACKAGES` alone. Its table comes from its migrations/, its columns in crops_v from
its views.sql, its report section from its report.toml, its row in `etl status` from its declaration:
no file of the project is changed for it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.helpers import REPO, copy_corpus, etl, require, rows

require("madmom")

TRACK = "librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
EXAMPLE = REPO / "tests" / "fixtures" / "example_stages"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    packages = tmp_path_factory.mktemp("packages")
    shutil.copytree(EXAMPLE, packages / "example_stages", ignore=shutil.ignore_patterns("__pycache__"))
    path = os.pathsep.join(filter(None, [str(packages), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, "MUSIC_ETL_STAGE_PACKAGES": "example_stages"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, plugin_env: dict[str, str]) -> Path:
    root = tmp_path_factory.mktemp("added-stage")
    copy_corpus(root / "music", TRACK)
    db = root / "etl.duckdb"
    etl("--set", "crops.bars=4", "run", "--source", str(root / "music"), "--stage", "ingest", "--stage", "beats",
        "--stage", "crops", "--stage", "crop_levels", db=db, env=plugin_env, check=True, timeout=600)
    return db


def test_the_new_stage_has_its_row_in_status(store: Path, plugin_env: dict[str, str]) -> None:
    status = json.loads(etl("status", "--json", db=store, env=plugin_env, check=True).stdout)
    names = [row["stage"] for row in status]
    assert "crop_levels" in names and names.index("crops") < names.index("crop_levels")
    row = next(r for r in status if r["stage"] == "crop_levels")
    crops = rows(store, "SELECT count(*) AS n FROM crops")[0]["n"]
    assert crops > 0 and (row["done"], row["pending"], row["failed"]) == (crops, 0, 0)


def test_its_columns_are_in_crops_v_and_measure_the_crop(store: Path, plugin_env: dict[str, str]) -> None:
    found = json.loads(etl("query", "--format", "json", "SELECT path, crop_peak_dbfs, crop_rms_dbfs FROM crops_v "
                           "ORDER BY crop_id", db=store, env=plugin_env, check=True).stdout)
    assert found and all(r["crop_peak_dbfs"] is not None for r in found)
    for crop in found[:3]:  # against a bare soundfile + numpy reading of the same file
        signal, _rate = soundfile.read(crop["path"], dtype="float64", always_2d=True)
        assert crop["crop_peak_dbfs"] == pytest.approx(20 * math.log10(np.max(np.abs(signal))), abs=1e-9)
        assert crop["crop_rms_dbfs"] == pytest.approx(20 * math.log10(math.sqrt(np.mean(signal ** 2))), abs=1e-6)


def test_its_section_is_in_the_report(store: Path, plugin_env: dict[str, str], tmp_path: Path) -> None:
    summary = json.loads(etl("report", "--out", str(tmp_path / "r"), "--json", db=store, env=plugin_env,
                             check=True, timeout=300).stdout)
    assert "crop_levels" in summary["sections"]
    assert 'id="spec-hist-crops-crop_peak_dbfs"' in (tmp_path / "r" / "index.html").read_text(encoding="utf-8")


def test_without_its_package_the_store_says_what_is_missing(store: Path) -> None:
    """The store holds the stage's table: opened by an installation without the stage, it says so."""
    result = etl("status", db=store)
    assert result.returncode != 0
    assert "900_crop_levels" in result.stderr and "a stage this installation lacks" in result.stderr
