"""Tag reading across containers, compilations, and that files are never modified."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from etl.stages import metadata
from tests.audio_files import tag_file, write_format
from tests.helpers import corpus, source_of

PARAMS = metadata.Params()
TAGS = {"artist": "Ada Lovelace", "title": "Engine Song", "album": "Analytical", "albumartist": "Ada Lovelace",
        "date": "1843-07-01", "genre": "Chiptune", "tracknumber": "3/12", "bpm": "128", "key": "F#m"}


def read(path: Path) -> dict:
    return metadata.process({"item_id": "t", **source_of(str(path))}, PARAMS)


@pytest.mark.parametrize("kind, tag_format", [("mp3", "id3"), ("wav", "id3"), ("flac", "vorbis"),
                                              ("ogg", "vorbis"), ("opus", "vorbis"), ("m4a", "mp4")])
def test_reads_tags_of_every_format(tmp_path: Path, kind: str, tag_format: str) -> None:
    path = write_format(tmp_path, kind)
    tag_file(path, kind, TAGS)
    tags = read(path)
    assert tags["tag_format"] == tag_format
    assert (tags["artist"], tags["title"], tags["album"], tags["album_artist"]) == (
        "Ada Lovelace", "Engine Song", "Analytical", "Ada Lovelace")
    assert (tags["year"], tags["genre"], tags["track_number"], tags["track_total"]) == (1843, "Chiptune", 3, 12)
    assert tags["bpm_tag"] == 128.0 and tags["key_tag"] == "F#m"
    assert tags["compilation"] is False


@pytest.mark.parametrize("kind", ["mp3", "flac", "m4a"])
def test_compilations_keep_the_track_artist(tmp_path: Path, kind: str) -> None:
    path = write_format(tmp_path, kind)
    tag_file(path, kind, {"artist": "Solo Artist", "title": "Hit", "albumartist": "Various Artists"})
    tags = read(path)
    assert tags["compilation"] is True and tags["artist"] == "Solo Artist"
    assert tags["album_artist"] == "Various Artists"


def test_compilation_flag_and_configurable_aliases(tmp_path: Path) -> None:
    flagged = write_format(tmp_path, "mp3", "flagged.mp3")
    tag_file(flagged, "mp3", {"artist": "X", "compilation": "1"})
    assert read(flagged)["compilation"] is True
    aliased = write_format(tmp_path, "flac", "aliased.flac")
    tag_file(aliased, "flac", {"artist": "Y", "albumartist": "Sampler Crew"})
    assert read(aliased)["compilation"] is False
    params = metadata.Params(various_artists_aliases=("Sampler Crew",))
    assert metadata.process({"item_id": "t", **source_of(str(aliased))}, params)["compilation"] is True


def test_album_artist_stands_in_for_a_missing_artist(tmp_path: Path) -> None:
    path = write_format(tmp_path, "flac")
    tag_file(path, "flac", {"albumartist": "Only Album Artist", "title": "x"})
    assert read(path)["artist"] == "Only Album Artist"


def test_untagged_files_give_empty_tags(tmp_path: Path) -> None:
    tags = read(write_format(tmp_path, "wav"))
    assert tags["tag_format"] == "none" and tags["artist"] is None and tags["compilation"] is False


def test_real_tagged_mp3s() -> None:
    feelings = read(corpus("mp3_tagged", "sectoid_feelings_40s_ffmpeg.mp3"))
    assert feelings["tag_format"] == "id3"
    assert feelings["title"] == "Feelings" and feelings["genre"] and feelings["year"]
    assert feelings["bpm_tag"] == 95.0
    minstrels = read(corpus("mp3_tagged", "wesnoth_traveling_minstrels_30s_lame.mp3"))
    assert minstrels["title"] == "Traveling Minstrels" and minstrels["artist"]


def test_real_vorbis_comments() -> None:
    tags = read(corpus("librosa_data", "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"))
    assert tags["tag_format"] == "vorbis" and tags["title"] == "Vibe Ace" and tags["artist"] == "Kevin MacLeod"


def test_user_files_are_never_modified(tmp_path: Path) -> None:
    path = write_format(tmp_path, "mp3")
    tag_file(path, "mp3", TAGS)
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    read(path)
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize("text, expected", [("3/12", (3, 12)), ("07", (7, None)), ("A1", (None, None)),
                                            (None, (None, None))])
def test_track_numbers(text, expected) -> None:
    assert metadata._number_pair(text) == expected


@pytest.mark.parametrize("field, text, column", [
    ("track", "20230101123", "track_number"),
    ("track", "3/99999999999", "track_total"),
    ("track_total", "4294967296", "track_total"),
    ("disc", "-1", "disc_number"),
    ("disc", "99999999999999999999999", "disc_number"),
    ("bpm", "1e400", "bpm_tag"),
    ("bpm", "nan", "bpm_tag"),
    ("bpm", "inf", "bpm_tag"),
    ("bpm", "-120", "bpm_tag"),
    ("bpm", "100000", "bpm_tag"),
])
def test_values_that_do_not_fit_their_column_are_null_and_kept_raw(field: str, text: str, column: str) -> None:
    tags = metadata.normalise("vorbis", {field: text, "title": "t"}, PARAMS.various_artists_aliases)
    assert tags[column] is None
    assert tags["raw_tags"][field] == text
    assert tags["title"] == "t"


def test_raw_tags_hold_every_field_read_and_the_year_stays_in_range(tmp_path: Path) -> None:
    path = write_format(tmp_path, "flac")
    tag_file(path, "flac", {**TAGS, "date": "0000-01-01"})
    tags = read(path)
    assert tags["year"] is None  # no year 0 in a date type; kept raw
    assert tags["raw_tags"] == {"artist": "Ada Lovelace", "title": "Engine Song", "album": "Analytical",
                                "album_artist": "Ada Lovelace", "date": "0000-01-01", "genre": "Chiptune",
                                "track": "3/12", "bpm": "128", "key": "F#m"}
    assert metadata.normalise("none", {}, PARAMS.various_artists_aliases)["raw_tags"] == {}


def test_the_write_never_fails_on_what_normalise_returns(db: Path) -> None:
    """Every typed column is range-checked in the worker: the batch write cannot overflow."""
    from etl.engine.pool import Outcome
    from etl.app.store import open_writer

    odd = metadata.normalise("vorbis", {"track": "20230101123/4294967296", "disc": "3000000000",
                                        "date": "2023", "bpm": "1e308"}, PARAMS.various_artists_aliases)
    fine = metadata.normalise("id3", {"track": "1", "date": "1999"}, PARAMS.various_artists_aliases)
    writer = open_writer(db, create=True)
    try:
        with writer.transaction() as con:
            metadata.write(con, [Outcome("a", "done", result=odd), Outcome("b", "done", result=fine)], PARAMS)
        got = writer.con.execute("SELECT track_id, track_number, track_total, disc_number, year, bpm_tag, "
                                 "raw_tags['track'] FROM track_tags ORDER BY track_id").fetchall()
    finally:
        writer.close()
    assert got == [("a", None, None, None, 2023, None, "20230101123/4294967296"), ("b", 1, None, None, 1999, None, "1")]
