"""End to end through the CLI with the real process pool, on real recordings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from tests.helpers import copy_corpus, etl, write_tone

REAL = ["mp3_tagged/sectoid_feelings_40s_ffmpeg.mp3", "mp3_tagged/wesnoth_traveling_minstrels_30s_lame.mp3",
        "mp3_tagged/singularity_deprecation_30s_mapmeta.mp3", "librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
        "stempeg/mixture.flac", "madmom/sample.wav", "pyloudnorm/piano.wav"]


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def status(db: Path) -> dict[str, dict]:
    result = etl("status", "--json", db=db, check=True)
    return {row["stage"]: row for row in json.loads(result.stdout)}


def test_real_recordings_end_to_end_with_dedupe_and_moves(tmp_path: Path) -> None:
    src = tmp_path / "music"
    copy_corpus(src, *REAL)
    (src / "album").mkdir()
    shutil.copyfile(src / "mixture.flac", src / "album" / "same bytes, other name.flac")
    db = tmp_path / "etl.duckdb"

    result = etl("run", "--source", str(src), "--workers", "2", db=db, check=True)
    assert "ingest: 8 done, 0 failed" in result.stderr
    assert query(db, "SELECT count(*) FROM tracks") == [(7,)]
    assert query(db, "SELECT n_paths FROM tracks_v WHERE container = 'FLAC'") == [(2,)]
    assert query(db, "SELECT title, genre, year, bpm_tag FROM tracks_v WHERE title = 'Feelings'") == [
        ("Feelings", "Rock", 2007, 95.0)]
    durations = dict(query(db, "SELECT codec, round(max(duration_s)) FROM tracks GROUP BY codec"))
    assert durations["MPEG_LAYER_III"] == 40 and durations["VORBIS"] > 60
    st = status(db)
    assert st["ingest"]["done"] == 8 and st["metadata"]["done"] == 7
    assert all(st[s]["pending"] == 0 and st[s]["failed"] == 0 for s in ("ingest", "metadata"))

    # A moved and renamed file is the same track; nothing is duplicated, metadata is not re-read.
    (src / "moved").mkdir()
    (src / "sample.wav").rename(src / "moved" / "renamed sample.wav")
    result = etl("run", db=db, check=True)  # the source is remembered
    assert "ingest: 1 done" in result.stderr and "metadata: nothing to do" in result.stderr
    assert query(db, "SELECT count(*) FROM tracks") == [(7,)]
    assert query(db, "SELECT present FROM files WHERE path LIKE '%/music/sample.wav'") == [(False,)]
    assert query(db, "SELECT path LIKE '%renamed sample.wav' FROM tracks_v WHERE container = 'WAV' "
                     "AND duration_s < 3") == [(True,)]

    # Changed content in place is a new track (and new metadata), the old one stays addressable.
    write_tone(src / "album" / "same bytes, other name.flac", seconds=2.0, fmt="FLAC")
    result = etl("run", db=db, check=True)
    assert "ingest: 1 done" in result.stderr and "metadata: 1 done" in result.stderr
    assert query(db, "SELECT count(*) FROM tracks") == [(8,)]
    assert query(db, "SELECT n_paths FROM tracks_v WHERE codec = 'PCM_24'") == [(1,)]


def test_changed_parameters_make_stages_and_dependants_pending(tmp_path: Path) -> None:
    src = tmp_path / "music"
    copy_corpus(src, *REAL[:3])
    db = tmp_path / "etl.duckdb"
    etl("run", "--source", str(src), "--workers", "1", db=db, check=True)
    changed = etl("--set", "metadata.various_artists_aliases=Sampler", "status", "--json", db=db, check=True)
    rows = {r["stage"]: r for r in json.loads(changed.stdout)}
    assert rows["metadata"]["pending"] == 3 and rows["ingest"]["pending"] == 0
    # A setting that changes no result re-runs its own stage and stops there (issue 10, finding 5:
    # upstream parameters used to enter every downstream input, so this re-ran the whole library).
    rows = {r["stage"]: r for r in json.loads(etl("--set", "ingest.verify_s=2", "status", "--json", db=db).stdout)}
    assert rows["ingest"]["pending"] == 3
    etl("--set", "ingest.verify_s=2", "run", "--stage", "ingest", db=db, check=True)
    rows = {r["stage"]: r for r in json.loads(etl("--set", "ingest.verify_s=2", "status", "--json", db=db).stdout)}
    assert rows["ingest"]["pending"] == 0
    assert all(rows[stage]["pending"] == 0 for stage in ("metadata", "beats", "crops", "features"))
