"""Every kind of bad input ends as a failed row with a reason; the rest of the run completes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from etl.app import pipeline
from etl.engine.runner import RunOptions
from etl.stages import ingest
from tests.helpers import ITEMS_FAILED, WITHOUT_FILE_OVERRIDES, corpus, etl, write_tone


def build_zoo(src: Path) -> dict[str, str]:
    """Files and the reason each must fail with (None: it must succeed)."""
    src.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str | None] = {}
    (src / "empty.mp3").write_bytes(b"")
    expect["empty.mp3"] = "empty file"
    data = corpus("mp3_tagged", "wesnoth_traveling_minstrels_30s_lame.mp3").read_bytes()
    (src / "truncated.mp3").write_bytes(data[: len(data) // 2])
    expect["truncated.mp3"] = "truncated or corrupt"
    data = corpus("stempeg", "mixture.flac").read_bytes()
    (src / "truncated.flac").write_bytes(data[: len(data) // 3])
    expect["truncated.flac"] = "truncated or corrupt"
    (src / "lyrics.mp3").write_text("la la la\n" * 100)
    expect["lyrics.mp3"] = "looks like text"
    (src / "cover.flac").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    expect["cover.flac"] = "looks like a PNG image"
    write_tone(src / "zero length.wav", seconds=0)
    expect["zero length.wav"] = "0 samples"
    write_tone(src / "locked.wav")
    (src / "locked.wav").chmod(0)
    expect["locked.wav"] = "permission denied"
    (src / "loop.mp3").symlink_to(src / "loop.mp3")
    expect["loop.mp3"] = "symlink loop"
    (src / "sub").mkdir()
    (src / "sub" / "up").symlink_to(src)
    expect["sub/up"] = "symlink loop"
    for name in ["with spaces.wav", "ünïcødé 曲.wav", "new\nline.wav"]:
        write_tone(src / name, freq_hz=300 + len(name))
        expect[name] = None
    shutil.copyfile(corpus("mp3_tagged", "sectoid_feelings_40s_ffmpeg.mp3"), src / "real.mp3")
    expect["real.mp3"] = None
    return expect


def test_bad_input_zoo_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "music"
    expect = build_zoo(src)
    db = tmp_path / "etl.duckdb"
    # Root reads files whatever their mode: the run drops that privilege so "locked.wav" is unreadable.
    prefix = WITHOUT_FILE_OVERRIDES if os.geteuid() == 0 else None
    result = etl("run", "--source", str(src), "--workers", "2", db=db, prefix=prefix)
    assert result.returncode == ITEMS_FAILED, result.stderr  # the run went on past them, and says so
    assert "Traceback" not in result.stderr
    failures = json.loads(etl("failures", "--json", db=db, check=True).stdout)
    reasons = {str(Path(f["path"]).relative_to(src)): f["reason"] for f in failures}
    for name, reason in expect.items():
        if reason is None:
            assert name not in reasons, (name, reasons.get(name))
        else:
            assert reason in reasons.get(name, ""), (name, reasons.get(name))
    con = duckdb.connect(str(db), read_only=True)
    done = {Path(p).name for (p,) in con.execute(
        "SELECT path FROM files WHERE track_id IS NOT NULL").fetchall()}
    con.close()
    assert {"with spaces.wav", "ünïcødé 曲.wav", "new\nline.wav", "real.mp3"} <= done


def test_file_vanishing_between_scan_and_processing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "music"
    write_tone(src / "stays.wav")
    write_tone(src / "goes.wav", freq_hz=220)
    real_scan = ingest.scan_folder

    def scan_then_delete(root: str, *args):
        entries = list(real_scan(root, *args))
        (src / "goes.wav").unlink()  # gone after the scan saw it, before a worker opens it
        return iter(entries)

    monkeypatch.setattr(ingest, "scan_folder", scan_then_delete)
    db = tmp_path / "etl.duckdb"
    config = pipeline.load_config(None, {"run.executor": "inline"})
    reports = pipeline.run(db, config, stage_names=["ingest"], sources=[src],
                           options=RunOptions(run_id="v", executor="inline"))
    assert (reports[0].done, reports[0].failed) == (1, 1)
    [failure] = pipeline.failures(db)
    assert failure["path"].endswith("goes.wav") and failure["reason"].startswith("file no longer exists: ")


def test_corrupt_and_missing_database_paths(tmp_path: Path) -> None:
    result = etl("status", db=tmp_path / "nope.duckdb")
    assert result.returncode == 1 and "no database at" in result.stderr and "Traceback" not in result.stderr
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"garbage" * 4096)
    for args in (["status"], ["run", "--source", str(tmp_path)], ["init"]):
        result = etl(*args, db=bad)
        assert result.returncode == 1, result
        assert "bad.duckdb" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = etl("init", db=tmp_path / "no_such_dir" / "x" / "etl.duckdb")
    assert result.returncode == 0
