"""Export splits and portable names, without a store."""

from __future__ import annotations

import duckdb
import pytest

from etl.engine.errors import ExportError
from etl.read.export.files import UniqueNames, portable_name
from etl.read.export.plan import parse_split, split_sql


def test_split_specs() -> None:
    assert [(s.name, s.percent) for s in parse_split("90/5/5")] == [("train", 90), ("valid", 5), ("test", 5)]
    assert [s.name for s in parse_split("80/20")] == ["train", "test"]
    assert parse_split(None) == []
    for bad in ("90/5", "a/b", "50/50/50", "100/0/0/0", "-10/110"):
        with pytest.raises(ExportError):
            parse_split(bad)


def test_split_shares_follow_the_percentages_and_are_stable() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE c AS SELECT 'track-' || i AS track_id, NULL AS artist, NULL AS album_artist, "
                "NULL AS album FROM range(20000) t(i)")
    query = f"SELECT {split_sql(parse_split('90/5/5'), 'track')} AS split, count(*) FROM c GROUP BY ALL"
    shares = dict(con.execute(query).fetchall())
    assert shares["train"] == pytest.approx(18000, rel=0.03)
    assert shares["valid"] == pytest.approx(1000, rel=0.15) and shares["test"] == pytest.approx(1000, rel=0.15)
    assert dict(con.execute(query).fetchall()) == shares  # no randomness
    one = con.execute(f"SELECT {split_sql(parse_split('90/5/5'), 'track')} FROM c WHERE track_id = 'track-7'")
    assert one.fetchone()[0] == "train"  # md5-based: fixed across DuckDB versions and machines


def test_folder_groups_keep_a_song_and_its_stems_together() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE c AS SELECT 'track-' || i AS track_id, "
                "'/music/Song ' || (i // 2) || '/' || (['song.ogg', 'guitar.ogg'])[i % 2 + 1] AS track_path "
                "FROM range(2000) t(i)")
    splits = con.execute(f"SELECT parse_dirpath(track_path) AS folder, {split_sql(parse_split('50/50'), 'folder')} "
                         "AS split FROM c").fetchall()
    by_folder: dict[str, set[str]] = {}
    for folder, split in splits:
        by_folder.setdefault(folder, set()).add(split)
    assert len(by_folder) == 1000 and all(len(s) == 1 for s in by_folder.values())
    assert {s for found in by_folder.values() for s in found} == {"train", "test"}


def test_portable_names() -> None:
    assert portable_name("Sigur Rós / Ágætis byrjun", "x") == "Sigur Ros _ Agaetis byrjun"
    assert portable_name("AC/DC: Back in Black?", "x") == "AC_DC_ Back in Black"
    assert portable_name("  ...  ", "Unknown Artist") == "Unknown Artist"
    assert portable_name("東京事変", "Unknown Artist") == "Unknown Artist"
    assert portable_name("a" * 200, "x") == "a" * 80
    names = UniqueNames()
    assert [names.claim("A/B", "01 Song", ".flac") for _ in range(3)] == [
        "01 Song.flac", "01 Song (2).flac", "01 Song (3).flac"]
    assert names.claim("A/B", "01 SONG", ".flac") == "01 SONG (4).flac"  # case-insensitive file systems
