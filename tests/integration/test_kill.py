"""Kill -9 (and Ctrl-C) at random moments: re-running always converges to the uninterrupted result."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pytest
import soundfile as sf

from tests.audio_files import tag_file
from tests.helpers import ITEMS_FAILED, REPO, corpus, etl, etl_command, skip_unless_ci

FILES = 300

# The tables as a user sees them, minus wall-clock columns.
SNAPSHOT = {
    "files": "SELECT path, source, size_bytes, mtime_ns, scan_error, present, track_id FROM files",
    "tracks": "SELECT * EXCLUDE (ingested_at) FROM tracks",
    "track_tags": "SELECT * EXCLUDE (read_at) FROM track_tags",
    "stage_items": "SELECT stage, item_id, status, fingerprint, params_hash, attempts, last_error, retryable "
                   "FROM stage_items",
    "beat_grids": "SELECT * EXCLUDE (created_at) FROM beat_grids",
    "crops": "SELECT * EXCLUDE (created_at) FROM crops",
}
# Short sequential crops, so that every file yields artifacts that a kill could leave half-written.
CROPS = {"ETL_CROPS_MODE": "sequential", "ETL_CROPS_SECONDS": "0.1"}
# The stages whose tables are compared (features of 0.1 s crops would only make the test slow).
# The music holds bad files on purpose: a run that meets them exits ITEMS_FAILED, one that does not 0.
BAD_FILES_FAIL = (0, ITEMS_FAILED)
STAGES = ["--stage", "ingest", "--stage", "metadata", "--stage", "beats", "--stage", "crops"]


def make_library(src: Path) -> None:
    """A few hundred small files: tones, tagged FLACs, exact duplicates, bad files, real recordings."""
    rng = np.random.default_rng(7)
    sample_rate = 8000
    for i in range(FILES - 20):
        folder = src / f"disc {i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(sample_rate * 0.25)) / sample_rate
        tone = 0.2 * np.sin(2 * np.pi * (200 + i) * t) + 0.01 * rng.standard_normal(len(t))
        kind = "flac" if i % 3 == 0 else "wav"
        path = folder / f"track {i:03d}.{kind}"
        sf.write(path, tone, sample_rate, format=kind.upper())
        if kind == "flac":
            tag_file(path, "flac", {"artist": f"Artist {i % 11}", "title": f"Song {i}", "genre": "Test"})
    for i in range(10):  # exact duplicates under other names
        shutil.copyfile(src / f"disc {i % 7}" / f"track {i:03d}.{'flac' if i % 3 == 0 else 'wav'}",
                        src / f"copy {i}.bin")
    for i in range(5):
        (src / f"broken {i}.mp3").write_bytes(b"not audio " * (i + 1))
    for name in ("sectoid_feelings_40s_ffmpeg.mp3", "wesnoth_traveling_minstrels_30s_lame.mp3"):
        shutil.copyfile(corpus("mp3_tagged", name), src / name)


def snapshot(db: Path, src: Path) -> dict[str, set]:
    con = duckdb.connect(str(db), read_only=True)
    base = str(db.parent)
    try:
        # Paths differ between the two runs only in their root.
        tables = {name: {tuple(str(v).replace(str(src), "SRC").replace(base, "BASE") if isinstance(v, str)
                               else (tuple(v) if isinstance(v, list)
                                     else tuple(sorted(v.items())) if isinstance(v, dict) else v) for v in row)
                         for row in con.execute(sql).fetchall()} for name, sql in SNAPSHOT.items()}
        artifacts = db.parent / "etl-data"
        tables["artifact files"] = {str(p.relative_to(artifacts)) for p in artifacts.rglob("*") if p.is_file()}
        counts = con.execute("SELECT count(*), count(DISTINCT path) FROM files").fetchone()
        assert counts[0] == counts[1]
        # Every row's file exists and every file is named by a row (nothing orphaned, nothing missing).
        named = {r[0] for r in con.execute("SELECT artifact_path(path) FROM crops UNION ALL SELECT artifact_path(path) FROM crop_stems").fetchall()}
        assert all(os.path.isfile(path) for path in named)
        on_disk = {str(p) for p in artifacts.rglob("*") if p.is_file()} if artifacts.exists() else set()
        assert on_disk == named
        referenced = {str(artifacts / r[0]) for r in con.execute(
            "SELECT unnest(files) FROM stage_items WHERE files IS NOT NULL").fetchall()}
        assert referenced == named
        assert con.execute("SELECT count(*) FROM superseded_files").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM stage_items WHERE status IN ('running', 'pending')").fetchone()[0] == 0
        return tables
    finally:
        con.close()


def kill_repeatedly(args: list[str], db: Path, env: dict[str, str], rng: random.Random, runs: int,
                    latest_s: float) -> int:
    """Start `etl run` `runs` times, each killed -9 at a random moment up to `latest_s`; the kill count."""
    kills = 0
    for _ in range(runs):
        process = subprocess.Popen(etl_command("run", *STAGES, *args, "--workers", "2", db=db), cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
        time.sleep(rng.uniform(0.1, 1.0) * latest_s)
        if process.poll() is None:
            process.kill()
            kills += 1
        process.wait()
    return kills


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, set], float]:
    """The library, its uninterrupted result, and how long the uninterrupted run took."""
    base = tmp_path_factory.mktemp("reference")
    src = base / "music"
    make_library(src)
    db = base / "etl.duckdb"
    started = time.monotonic()
    etl("run", *STAGES, "--source", str(src), "--workers", "2", db=db, check=True, ok=BAD_FILES_FAIL, env=CROPS)
    result = snapshot(db, src)
    assert len(result["crops"]) > 500 and len(result["artifact files"]) == len(result["crops"])
    return src, result, time.monotonic() - started


def _copy_library(reference_src: Path, dest: Path) -> Path:
    shutil.copytree(reference_src, dest, copy_function=shutil.copy2)  # same mtimes
    return dest


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_moments_then_resume(tmp_path: Path, reference, seed: int) -> None:
    ref_src, expected, full_run_s = reference
    src = _copy_library(ref_src, tmp_path / "music")
    db = tmp_path / "etl.duckdb"
    # Anywhere from start-up to half of a whole run (each run has less left to do).
    kills = kill_repeatedly(["--source", str(src)], db, CROPS, random.Random(seed), 10, 0.5 * full_run_s)
    assert kills >= 3, f"runs finished before they could be killed ({kills} kills)"
    etl("run", *STAGES, db=db, check=True, ok=BAD_FILES_FAIL, env=CROPS)
    assert snapshot(db, src) == expected
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path: Path, reference) -> None:
    ref_src, expected, full_run_s = reference
    src = _copy_library(ref_src, tmp_path / "music")
    db = tmp_path / "etl.duckdb"
    # Ctrl-C in a terminal signals the whole foreground process group.
    process = subprocess.Popen(etl_command("run", *STAGES, "--source", str(src), "--workers", "2", db=db),
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env={**os.environ, **CROPS})
    time.sleep(0.6 * full_run_s)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    if process.returncode == 0:
        skip_unless_ci("the run finished before Ctrl-C arrived")
    assert process.returncode == 130, stderr
    assert "stopped" in stderr and "Traceback" not in stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM stage_items WHERE status = 'running'").fetchone()[0] == 0
    assert con.execute("SELECT outcome FROM runs").fetchall() == [("interrupted",)]
    con.close()
    etl("run", *STAGES, db=db, check=True, ok=BAD_FILES_FAIL, env=CROPS)
    assert snapshot(db, src) == expected


# A change of crop length: every track's crops are recut, every old crop file superseded.
CHANGED = {**CROPS, "ETL_CROPS_SECONDS": "0.15"}


@pytest.fixture(scope="module")
def changed_reference(reference, tmp_path_factory: pytest.TempPathFactory) -> dict[str, set]:
    """An uninterrupted run from scratch with the changed settings."""
    ref_src, _, _ = reference
    base = tmp_path_factory.mktemp("changed")
    src = _copy_library(ref_src, base / "music")
    db = base / "etl.duckdb"
    etl("run", *STAGES, "--source", str(src), "--workers", "2", db=db, check=True, ok=BAD_FILES_FAIL, env=CHANGED)
    return snapshot(db, src)


def test_sigkill_during_a_change_run_then_resume(tmp_path: Path, reference, changed_reference) -> None:
    """Killed while a changed setting supersedes every crop: the finished store equals a fresh run with
    the new setting, no row names a missing file and no file is left that no row names."""
    ref_src, _, full_run_s = reference
    src = _copy_library(ref_src, tmp_path / "music")
    db = tmp_path / "etl.duckdb"
    etl("run", *STAGES, "--source", str(src), "--workers", "2", db=db, check=True, ok=BAD_FILES_FAIL, env=CROPS)
    kills = kill_repeatedly([], db, CHANGED, random.Random(3), 6, 0.4 * full_run_s)
    assert kills >= 2, f"runs finished before they could be killed ({kills} kills)"
    etl("run", *STAGES, db=db, check=True, ok=BAD_FILES_FAIL, env=CHANGED)
    assert snapshot(db, src) == changed_reference


@pytest.mark.parametrize("signame, whole_group", [
    ("SIGTERM", False),  # timeout(1), docker stop, batch schedulers: the main process only
    ("SIGTERM", True),   # systemd (KillMode=control-group): every process, workers included
    ("SIGHUP", False),   # the terminal went away
])
def test_sigterm_and_sighup_stop_like_ctrl_c(tmp_path: Path, reference, signame: str, whole_group: bool) -> None:
    ref_src, expected, full_run_s = reference
    src = _copy_library(ref_src, tmp_path / "music")
    db = tmp_path / "etl.duckdb"
    process = subprocess.Popen(etl_command("run", *STAGES, "--source", str(src), "--workers", "2", db=db),
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env={**os.environ, **CROPS})
    time.sleep(0.5 * full_run_s)
    signum = getattr(signal, signame)
    if whole_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=60)  # until every process holding stderr (resource tracker) ends
    if process.returncode == 0:
        skip_unless_ci(f"the run finished before {signame} arrived")
    assert process.returncode == 128 + signum, stderr
    assert time.monotonic() - sent < 20
    assert "Traceback" not in stderr and "leaked" not in stderr, stderr
    named = [line for line in stderr.splitlines() if signame in line]
    assert len(named) == 1 and named[0].startswith("stopped"), stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM stage_items WHERE status = 'running'").fetchone()[0] == 0
    assert con.execute("SELECT outcome FROM runs").fetchall() == [("interrupted",)]
    con.close()
    etl("run", *STAGES, db=db, check=True, ok=BAD_FILES_FAIL, env=CROPS)
    assert snapshot(db, src) == expected


def _processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds `marker` (what a run and its workers inherit)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            pass
    return kids


def test_workers_never_outlive_a_run_killed_while_they_start(tmp_path: Path, reference) -> None:
    """kill -9 as the pool starts: workers not yet set to die with the coordinator used to wait
    forever on their task queue (found trying the README as a user)."""
    ref_src, _, _ = reference
    src = _copy_library(ref_src, tmp_path / "music")
    db = tmp_path / "etl.duckdb"
    marker = f"ETL_TEST_MARK={uuid.uuid4().hex}"
    name, value = marker.split("=")
    for _ in range(3):
        process = subprocess.Popen(etl_command("run", *STAGES, "--source", str(src), "--workers", "2", db=db),
                                   cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env={**os.environ, **CROPS, name: value})
        deadline = time.monotonic() + 60
        while len(_children(process.pid)) < 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []
