"""A folder that cannot be listed is unreachable, like an unmounted drive (issue 27.2).

It was taken for empty: `etl run` printed "cannot list ...", exited 0 and marked every file under
it missing, so `etl gc --grace-days 0` forgot them with their crops, and a source folder made
unreadable showed "reachable yes, files 0, missing N". Now the files recorded under such a folder
are left exactly as they were, it is said once per run (the folder and why), and a source folder
that cannot be listed is not reachable (`etl sources list`, `etl status`).

Root lists any folder whatever its mode: the in-process story makes `os.scandir` refuse the
folder; the CLI story runs `etl` without root's file privileges (as tests/cli/test_bad_settings.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (WITHOUT_FILE_OVERRIDES, etl, refuse_listing, rows, run_stages, skip_unless_ci,
                           write_tone)

AS_USER = WITHOUT_FILE_OVERRIDES if os.geteuid() == 0 else None


def library(tmp_path: Path) -> Path:
    src = tmp_path / "music"
    write_tone(src / "a" / "one.wav")
    write_tone(src / "b" / "two.wav", freq_hz=300)
    write_tone(src / "b" / "deep" / "three.wav", freq_hz=500)
    write_tone(src / "bb" / "four.wav", freq_hz=700)  # beside b, with a name that starts like it
    return src


def files(db: Path, src: Path) -> dict[str, dict[str, Any]]:
    """Each recorded file (relative to the source): what a scan or gc could change of it."""
    found = rows(db, "SELECT path, present, missing_since, stat_version, track_id, scan_error FROM files")
    return {Path(r.pop("path")).relative_to(src).as_posix(): r for r in found}


def tracks(db: Path) -> set[str]:
    return {r["track_id"] for r in rows(db, "SELECT track_id FROM tracks")}


def warnings_naming(caplog: pytest.LogCaptureFixture, folder: Path) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and str(folder) in r.getMessage()]


def test_an_unlistable_folder_is_left_as_it_was_and_gc_keeps_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from etl.app import pipeline

    src = library(tmp_path)
    db = tmp_path / "etl.duckdb"
    [first] = run_stages(db, src, ["ingest"])
    assert first.done == 4
    before = files(db, src)
    held = tracks(db)
    (src / "bb" / "four.wav").unlink()  # a real deletion beside the folder that cannot be listed

    with monkeypatch.context() as patched:
        refuse_listing(patched, src / "b")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            [again] = run_stages(db, src, ["ingest"])
        [warning] = warnings_naming(caplog, src / "b")  # said once, with the reason
        assert "Permission denied" in warning and "left as they were" in warning, warning
        assert again.processed == 0
        now = files(db, src)
        for name in ("a/one.wav", "b/two.wav", "b/deep/three.wav"):
            assert now[name] == before[name], name  # not missing: exactly as they were
        assert not now["bb/four.wav"]["present"]  # the deleted file beside it is missing
        forgotten = pipeline.gc(db, pipeline.load_config(None, {}), grace_days=0)["forgotten_files"]
        assert forgotten == 1  # four.wav only
        after_gc = files(db, src)
        assert set(after_gc) == {"a/one.wav", "b/two.wav", "b/deep/three.wav"}
        assert tracks(db) == held - {before["bb/four.wav"]["track_id"]}
        assert [(s["reachable"], s["files"], s["missing_files"]) for s in pipeline.list_sources(db)] == [(True, 3, 0)]

    # Readable again: the files are there, nothing is hashed or probed again.
    [back] = run_stages(db, src, ["ingest"])
    assert back.processed == 0
    assert files(db, src) == after_gc


def test_an_unlistable_source_folder_is_not_reachable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from etl.app import pipeline

    src = library(tmp_path)
    db = tmp_path / "etl.duckdb"
    run_stages(db, src, ["ingest"])
    before = files(db, src)
    refuse_listing(monkeypatch, src)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        [again] = run_stages(db, src, ["ingest"])
    [warning] = warnings_naming(caplog, src)
    assert "not reachable" in warning and "Permission denied" in warning, warning
    assert again.processed == 0 and files(db, src) == before
    listed = pipeline.list_sources(db)
    assert [(s["path"], s["reachable"], s["files"], s["missing_files"]) for s in listed] == [(str(src), False, 4, 0)]
    assert pipeline.unreachable_sources(db) == [str(src)]
    assert pipeline.gc(db, pipeline.load_config(None, {}), grace_days=0)["forgotten_files"] == 0
    assert files(db, src) == before


def as_user() -> list[str] | None:
    if AS_USER is not None and shutil.which(AS_USER[0]) is None:
        skip_unless_ci("setpriv is not installed: root cannot be refused a listing")
    return AS_USER


@pytest.mark.parametrize("mode", [0o000, 0o444], ids=["unreadable", "listable-not-searchable"])
def test_chmod_through_the_cli(tmp_path: Path, mode: int) -> None:
    """The report's story as a user: `chmod 000 src/b` (or a-x: names listed, nothing openable),
    `etl run --stage ingest`, `etl gc --grace-days 0`; then the whole source made unreadable."""
    src = library(tmp_path)
    db = tmp_path / "etl.duckdb"
    prefix = as_user()
    etl("run", "--stage", "ingest", "--source", str(src), db=db, check=True)
    before = files(db, src)
    locked = src / "b"
    try:
        locked.chmod(mode)
        result = etl("run", "--stage", "ingest", db=db, prefix=prefix)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        said = [line for line in result.stderr.splitlines() if str(locked) in line]
        assert len(said) == 1 and "Permission denied" in said[0], result.stderr
        assert files(db, src) == before
        gc = etl("gc", "--grace-days", "0", "--json", db=db, prefix=prefix, check=True)
        assert json.loads(gc.stdout)["forgotten_files"] == 0
        assert files(db, src) == before
        listed = json.loads(etl("sources", "list", "--json", db=db, prefix=prefix, check=True).stdout)
        assert [(s["reachable"], s["files"], s["missing_files"]) for s in listed] == [(True, 4, 0)]

        src.chmod(mode)
        result = etl("run", "--stage", "ingest", db=db, prefix=prefix)
        assert result.returncode == 0, result.stderr
        said = [line for line in result.stderr.splitlines() if str(src) in line]
        assert len(said) == 1 and "not reachable" in said[0] and "Permission denied" in said[0], result.stderr
        assert files(db, src) == before
        listed = json.loads(etl("sources", "list", "--json", db=db, prefix=prefix, check=True).stdout)
        assert [(s["reachable"], s["files"], s["missing_files"]) for s in listed] == [(False, 4, 0)]
        table = etl("sources", "list", db=db, prefix=prefix, check=True).stdout
        assert "no (left as it was)" in table
        status = etl("status", db=db, prefix=prefix, check=True)
        assert f"source {src} is not reachable" in status.stderr
    finally:
        src.chmod(0o755)
        locked.chmod(0o755)
    assert files(db, src) == before


def test_gc_says_which_data_folder_it_could_not_list(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """`etl gc` walks the data folder for files no row names: one it cannot list was passed over in silence."""
    from etl.app import pipeline

    db = tmp_path / "etl.duckdb"
    run_stages(db, library(tmp_path), ["ingest"])
    data = db.parent / "etl-data"
    for folder in ("ab/abcdef", "cd/cdef01"):
        (data / "crops" / folder).mkdir(parents=True)
        (data / "crops" / folder / "left-by-a-killed-run.flac").write_bytes(b"x")
    refuse_listing(monkeypatch, data / "crops" / "cd")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = pipeline.gc(db, pipeline.load_config(None, {}))
    assert result["orphans"] == ["crops/ab/abcdef/left-by-a-killed-run.flac"]
    [warning] = warnings_naming(caplog, data)  # the folders of stages that wrote nothing are no news
    assert str(data / "crops" / "cd") in warning and "Permission denied" in warning and "not checked" in warning
    assert (data / "crops" / "cd" / "cdef01" / "left-by-a-killed-run.flac").exists()
