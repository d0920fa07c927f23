"""A living library (issue 11): files re-tagged, replaced, moved and deleted, a store that moves.

Real music in every story. Each one counts what the next run recomputed (the per-stage reports,
and the stage_items rows the run finished) and checks that no row names a missing file and no
file under the data folder is left without a row.

A file deleted between ingest and beats failing with "file no longer exists: <path>" (retryable)
is tests/integration/test_reasons.py::test_a_file_deleted_after_ingest_fails_beats_as_vanished.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from tests.helpers import corpus, etl, require, rows

STAGES = ["ingest", "metadata", "beats", "crops", "features"]
# Two-bar crops: a few per short recording; the series features (slow, not needed here) off.
SETTINGS = {"crops.bars": "2", "crops.bars_multiple": "2", "features.series": "false"}
FEELINGS = ("mp3_tagged", "sectoid_feelings_40s_ffmpeg.mp3")
MIXTURE = ("stempeg", "mixture.flac")
SET = [arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={value}")]  # the same, for the CLI


def run(db: Path, sources: list[Path] | None = None, stages: list[str] | None = None) -> dict[str, Any]:
    """One `etl run` in-process: per stage, the report; under "run_id", the run's id."""
    from etl.app import pipeline
    from etl.engine.runner import RunOptions

    run_id = uuid.uuid4().hex[:12]
    config = pipeline.load_config(None, {"run.executor": "inline", **SETTINGS})
    reports = pipeline.run(db, config, stage_names=stages or STAGES, sources=sources or [],
                           options=RunOptions(run_id=run_id, executor="inline"))
    return {"run_id": run_id, **{r.stage: r for r in reports}}


def worked(result: dict[str, Any]) -> dict[str, int]:
    """Items processed (done, failed or skipped) per stage."""
    return {stage: r.processed for stage, r in result.items() if stage != "run_id"}


def finished_by(db: Path, run_id: str) -> dict[str, list[str]]:
    """The items each stage finished in that run (what it recomputed), from stage_items."""
    found: dict[str, list[str]] = {}
    for row in rows(db, f"SELECT stage, item_id FROM stage_items WHERE run_id = '{run_id}' ORDER BY ALL"):
        found.setdefault(row["stage"], []).append(row["item_id"])
    return found


def data_folder(db: Path) -> Path:
    return db.parent / "etl-data"


def nothing_dangles(db: Path) -> None:
    """Every artifact a row names exists; every file under the data folder is named by a row."""
    named = rows(db, "SELECT artifact_path(path) AS path FROM crops UNION ALL "
                     "SELECT artifact_path(path) FROM crop_stems UNION ALL "
                     "SELECT artifact_path(path) FROM track_stems")
    named_paths = {r["path"] for r in named}
    assert [p for p in named_paths if not os.path.isfile(p)] == []
    assert {r["path"] for r in rows(db, "SELECT path FROM crops_all_v")} <= named_paths
    data = data_folder(db)
    on_disk = {str(p) for p in data.rglob("*") if p.is_file()} if data.exists() else set()
    assert on_disk == named_paths, "files under the data folder that no row names (or the reverse)"


def crop_files(db: Path, view: str = "crops_v") -> dict[str, tuple[int, int]]:
    """Each crop file of the view with its (inode, mtime_ns)."""
    found = {}
    for r in rows(db, f"SELECT path FROM {view}"):
        info = os.stat(r["path"])
        found[r["path"]] = (info.st_ino, info.st_mtime_ns)
    return found


def track_of(db: Path, path: Path) -> str:
    [row] = rows(db, f"SELECT track_id FROM files WHERE path = '{path}'")
    return row["track_id"]


def write_excerpt(path: Path, start_s: float, seconds: float = 8.0) -> None:
    """`seconds` of the Sectoid recording from `start_s`, as 16-bit WAV: a real recording whose
    size depends only on its length, so two excerpts are files of exactly the same size."""
    data, rate = sf.read(corpus(*FEELINGS), frames=int(seconds * 44100), start=int(start_s * 44100))
    sf.write(path, data, rate, subtype="PCM_16", format="WAV")


def replace_keeping_size_and_mtime(path: Path, start_s: float) -> None:
    before = os.stat(path)
    write_excerpt(path, start_s)  # rewritten in place: same inode, same length, other samples
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def music(folder: Path, *names: tuple[str, ...]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for parts in names:
        target = folder / parts[-1]
        shutil.copyfile(corpus(*parts), target)
        copied.append(target)
    return copied


def library(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    """The Sectoid MP3 and the stempeg mixture in tmp/music, run once into tmp/store: (folder, db, files)."""
    src = tmp_path / "music"
    files = music(src, FEELINGS, MIXTURE)
    db = tmp_path / "store" / "etl.duckdb"
    first = worked(run(db, [src]))
    assert first["ingest"] == 2 and first["crops"] == 2 and first["features"] > 2
    return src, db, files


@pytest.fixture(autouse=True)
def _needs() -> None:
    require("madmom")
    require("librosa")
    require("mutagen")


@pytest.mark.slow
def test_retagging_reruns_metadata_of_that_track_only(tmp_path: Path) -> None:
    from mutagen.id3 import APIC, ID3, TIT2

    _, db, (song, other) = library(tmp_path)
    crops_before = crop_files(db)
    features_before = rows(db, "SELECT * FROM crop_features ORDER BY crop_id")
    track = track_of(db, song)

    tags = ID3(song)  # as a tagger does: a new title and a cover picture
    tags.setall("TIT2", [TIT2(encoding=3, text=["Feelings (re-tagged)"])])
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=b"\x89PNG\r\n\x1a\n" + bytes(4096)))
    tags.save(song)

    second = run(db)
    assert worked(second) == {"ingest": 1, "metadata": 1, "beats": 0, "crops": 0, "features": 0}
    assert finished_by(db, second["run_id"]) == {"ingest": [str(song)], "metadata": [track]}
    assert track_of(db, song) == track
    assert crop_files(db) == crops_before  # the same files: not rewritten
    assert rows(db, "SELECT * FROM crop_features ORDER BY crop_id") == features_before
    titles = {r["title"] for r in rows(db, f"SELECT DISTINCT title FROM crops_v WHERE track_path = '{song}'")}
    assert titles == {"Feelings (re-tagged)"}
    assert other.exists()
    nothing_dangles(db)


@pytest.mark.slow
def test_audio_replaced_with_the_same_size_and_mtime_is_a_new_track(tmp_path: Path) -> None:
    src = tmp_path / "music"
    [other] = music(src, MIXTURE)
    song = src / "excerpt.wav"
    write_excerpt(song, 0.0)
    db = tmp_path / "store" / "etl.duckdb"
    first = worked(run(db, [src]))
    assert first["ingest"] == 2 and first["crops"] == 2
    old_track = track_of(db, song)
    old_crops = crop_files(db, f"crops_v WHERE track_id = '{old_track}'")
    assert old_crops

    replace_keeping_size_and_mtime(song, 20.0)
    second = run(db)
    new_track = track_of(db, song)
    assert new_track != old_track
    new_crops = rows(db, f"SELECT crop_id FROM crops WHERE track_id = '{new_track}'")
    assert new_crops
    assert worked(second) == {"ingest": 1, "metadata": 1, "beats": 1, "crops": 1, "features": len(new_crops)}
    done = finished_by(db, second["run_id"])
    assert done["beats"] == [new_track] and done["crops"] == [new_track]
    for table in ("tracks", "beat_grids", "track_tags", "crops"):
        assert rows(db, f"SELECT count(*) AS n FROM {table} WHERE track_id = '{old_track}'") == [{"n": 0}], table
    assert rows(db, f"SELECT count(*) AS n FROM tracks_all_v WHERE track_id = '{old_track}'") == [{"n": 0}]
    assert [p for p in old_crops if os.path.exists(p)] == []
    assert rows(db, f"SELECT DISTINCT track_path FROM crops_v WHERE track_id = '{new_track}'") == \
        [{"track_path": str(song)}]
    assert other.exists()
    nothing_dangles(db)


def comparable(db: Path) -> dict[str, Any]:
    """The store as test_change.py compares it, less the ingest items' input (the scan's stat
    version of a file: 1 where the file changed once, 0 in a fresh store)."""
    from tests.integration.test_change import snapshot

    tables = snapshot(db)
    tables["stage_items"] = sorted(row[:3] + row[4:] if row[0] == "ingest" else row
                                   for row in tables["stage_items"])
    return tables


@pytest.mark.slow
def test_audio_replaced_between_ingest_and_beats_fails_then_a_run_fixes_it(tmp_path: Path) -> None:
    from etl.dsp.sourcefile import CHANGED
    from etl.app import pipeline

    src = tmp_path / "music"
    music(src, MIXTURE)
    song = src / "excerpt.wav"
    write_excerpt(song, 0.0)
    db = tmp_path / "store" / "etl.duckdb"
    run(db, [src], ["ingest"])
    old_track = track_of(db, song)
    replace_keeping_size_and_mtime(song, 20.0)

    beats = run(db, stages=["beats"])
    assert worked(beats) == {"beats": 2}
    failed = pipeline.failures(db, "beats")
    assert [(f["item_id"], f["reason"], f["retryable"]) for f in failed] == [(old_track, CHANGED, True)]
    assert rows(db, f"SELECT count(*) AS n FROM beat_grids WHERE track_id = '{old_track}'") == [{"n": 0}]

    run(db)
    assert pipeline.failures(db) == []
    assert track_of(db, song) != old_track
    fresh = tmp_path / "fresh" / "etl.duckdb"
    run(fresh, [src])
    assert comparable(db) == comparable(fresh)
    nothing_dangles(db)


@pytest.mark.slow
def test_a_moved_source_folder_is_recognised(tmp_path: Path) -> None:
    old, db, _ = library(tmp_path)
    crops_before = {Path(p).name: v for p, v in crop_files(db).items()}
    tracks_before = {r["track_id"] for r in rows(db, "SELECT track_id FROM tracks_v")}

    # Told: `etl sources move OLD NEW`, and the next run has nothing to do.
    new = tmp_path / "moved"
    shutil.move(old, new)
    moved = etl("sources", "move", str(old), str(new), "--json", db=db, check=True)
    assert json.loads(moved.stdout)["moved"] == 2
    again = run(db)
    assert worked(again) == dict.fromkeys(STAGES, 0)
    assert {stage: again[stage].retired for stage in STAGES} == dict.fromkeys(STAGES, 0)
    paths = rows(db, "SELECT track_id, path FROM tracks_v")
    assert {r["track_id"] for r in paths} == tracks_before
    assert all(r["path"].startswith(f"{new}/") and os.path.isfile(r["path"]) for r in paths)
    listed = json.loads(etl("sources", "list", "--json", db=db, check=True).stdout)
    assert [(s["path"], s["reachable"], s["files"]) for s in listed] == [(str(new), True, 2)]
    nothing_dangles(db)

    # Not told: the old folder removed, the new one scanned; the audio is recognised.
    newer = tmp_path / "moved again"
    shutil.move(new, newer)
    etl("sources", "remove", str(new), db=db, check=True)
    assert rows(db, "SELECT count(*) AS n FROM tracks_v") == [{"n": 0}]
    third = run(db, [newer])
    assert worked(third) == {"ingest": 2, "metadata": 0, "beats": 0, "crops": 0, "features": 0}
    paths = rows(db, "SELECT track_id, path FROM tracks_v")
    assert {r["track_id"] for r in paths} == tracks_before
    assert all(r["path"].startswith(f"{newer}/") for r in paths)
    assert rows(db, f"SELECT count(*) AS n FROM crops_v WHERE NOT starts_with(track_path, '{newer}/')") == [{"n": 0}]
    assert {Path(p).name: v for p, v in crop_files(db).items()} == crops_before
    nothing_dangles(db)


@pytest.mark.slow
def test_a_moved_store_keeps_working(tmp_path: Path) -> None:
    _, db, _ = library(tmp_path)
    n_crops = rows(db, "SELECT count(*) AS n FROM crops_v")[0]["n"]
    assert n_crops > 2

    shutil.move(tmp_path / "store", tmp_path / "moved")
    db = tmp_path / "moved" / "etl.duckdb"
    queried = etl("query", "--format", "json", "SELECT path FROM crops_v", db=db, check=True)
    paths = [r["path"] for r in json.loads(queried.stdout)]
    assert len(paths) == n_crops
    assert all(p.startswith(f"{tmp_path / 'moved'}/") and os.path.isfile(p) for p in paths)
    out = tmp_path / "export"
    etl("export", "--out", str(out), "--format", "jsonl", "--link", db=db, check=True)
    exported = sorted(out.rglob("*.flac"))
    assert len(exported) == n_crops
    for path in exported:
        assert sf.read(path)[0].size
    assert worked(run(db)) == dict.fromkeys(STAGES, 0)
    nothing_dangles(db)


@pytest.mark.slow
def test_a_deleted_file_is_held_then_back_then_forgotten(tmp_path: Path) -> None:
    _, db, (kept, gone) = library(tmp_path)
    track = track_of(db, gone)
    crops = crop_files(db, f"crops_v WHERE track_id = '{track}'")
    assert crops
    aside = tmp_path / "aside.flac"

    def export_count(*extra: str) -> int:
        out = tmp_path / f"export-{uuid.uuid4().hex[:6]}"
        done = etl("export", "--out", str(out), "--format", "csv", "--json", *extra, db=db, check=True)
        return sum(s["crops"] for s in json.loads(done.stdout))

    shutil.move(gone, aside)
    assert worked(run(db)) == dict.fromkeys(STAGES, 0)
    assert rows(db, f"SELECT count(*) AS n FROM tracks_v WHERE track_id = '{track}'") == [{"n": 0}]
    assert rows(db, f"SELECT count(*) AS n FROM crops_v WHERE track_id = '{track}'") == [{"n": 0}]
    assert rows(db, f"SELECT DISTINCT present FROM tracks_all_v WHERE track_id = '{track}'") == [{"present": False}]
    assert {r["path"] for r in rows(db, f"SELECT path, present FROM crops_all_v WHERE track_id = '{track}' "
                                        "AND NOT present")} == set(crops)
    everything = rows(db, "SELECT count(*) AS n FROM crops_all_v")[0]["n"]
    assert export_count() == everything - len(crops)
    assert export_count("--include-missing") == everything
    status = {r["stage"]: r for r in json.loads(etl(*SET, "status", "--json", db=db, check=True).stdout)}
    assert status["ingest"]["missing"] == 1 and status["crops"]["missing"] == 1
    # features reads the crop files, not the source: the held track's crops stay done there
    assert status["features"]["done"] == everything and status["features"]["pending"] == 0
    nothing_dangles(db)

    shutil.move(aside, gone)  # put back: the same file, recognised by its audio
    back = worked(run(db))
    assert back["ingest"] <= 1 and {s: n for s, n in back.items() if s != "ingest"} == dict.fromkeys(STAGES[1:], 0)
    assert crop_files(db, f"crops_v WHERE track_id = '{track}'") == crops

    gone.unlink()
    run(db)
    collected = json.loads(etl(*SET, "gc", "--grace-days", "0", "--json", db=db, check=True).stdout)
    assert collected["forgotten_files"] == 1
    for view in ("tracks_all_v", "crops_all_v"):
        assert rows(db, f"SELECT count(*) AS n FROM {view} WHERE track_id = '{track}'") == [{"n": 0}], view
    assert [p for p in crops if os.path.exists(p)] == []
    assert rows(db, "SELECT count(*) AS n FROM tracks_all_v") == [{"n": 1}]
    assert kept.exists()
    nothing_dangles(db)


@pytest.mark.slow
def test_a_source_folder_holding_the_store_does_not_ingest_its_crops(tmp_path: Path) -> None:
    src = tmp_path / "music"
    music(src, FEELINGS, MIXTURE)
    db = src / "etl.duckdb"  # the database and its data folder inside the music folder
    first = worked(run(db, [src]))
    assert first["crops"] == 2 and any(data_folder(db).rglob("*.flac"))
    second = worked(run(db, [src]))
    assert second == dict.fromkeys(STAGES, 0)
    assert rows(db, "SELECT count(*) AS n FROM tracks_all_v") == [{"n": 2}]
    assert rows(db, f"SELECT count(*) AS n FROM files WHERE starts_with(path, '{data_folder(db)}')") == [{"n": 0}]
    nothing_dangles(db)


def test_sources_refuses_overlapping_and_unregistered_folders_in_one_line(tmp_path: Path) -> None:
    music_folder = tmp_path / "music"
    (music_folder / "albums").mkdir(parents=True)
    db = tmp_path / "etl.duckdb"
    etl("sources", "add", str(music_folder), db=db, check=True)
    for args, expected in (
        (("sources", "add", str(music_folder / "albums")),
         f"error: source {music_folder / 'albums'} overlaps the registered source {music_folder}"),
        (("sources", "add", str(tmp_path)), f"error: source {tmp_path} overlaps the registered source {music_folder}"),
        (("sources", "move", str(tmp_path / "elsewhere"), str(music_folder / "albums")),
         f"error: {tmp_path / 'elsewhere'} is not a registered source"),
    ):
        refused = etl(*args, db=db)
        assert refused.returncode == 1, refused.stderr
        assert "Traceback" not in refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), refused.stderr
    listed = json.loads(etl("sources", "list", "--json", db=db, check=True).stdout)
    assert [s["path"] for s in listed] == [str(music_folder)]
