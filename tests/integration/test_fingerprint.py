"""The fingerprint stage (issue 29): near-duplicate groups on real audio. One recording copied the
ways a library comes to hold it twice (MP3 128k, Opus, FLAC, resampled, trimmed, a loop cut from it,
delayed with a gain change and a fade: etl/stages/fingerprint/testing.py) beside distinct
recordings, two by one artist among them; the grouping's precision and recall on that set, a run
that changes nothing, a recomputation that leaves what a fresh run makes, the reason given without
libchromaprint, `etl query --name duplicates`, and an export whose splits keep each group together
even where the copies' artist tags differ."""

from __future__ import annotations

import hashlib
import json
import shutil
from itertools import combinations
from pathlib import Path

import pytest

from etl.read.export import ExportRequest, export
from tests.helpers import corpus, etl, require, rows, run_stages

require("chromaprint")

from etl.stages import fingerprint  # noqa: E402
from etl.stages.fingerprint import testing  # noqa: E402


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The test set fingerprinted once: (the store, {file name: the recording it holds})."""
    root = tmp_path_factory.mktemp("dups")
    truth = testing.build(corpus(), root / "music")
    db = root / "etl.duckdb"
    reports = run_stages(db, root / "music", ["ingest", "fingerprint"])
    assert reports[-1].done == len(truth) and not reports[-1].failed
    return db, truth


def pair_sets(db: Path, truth: dict[str, str]) -> tuple[set[frozenset[str]], set[frozenset[str]]]:
    """(the pairs of files the store groups together, the pairs that hold one recording)."""
    grouped = rows(db, "SELECT parse_filename(path) AS name, duplicate_group FROM tracks_v")
    group_of = {r["name"]: r["duplicate_group"] for r in grouped}
    found = {frozenset((a, b)) for a, b in combinations(sorted(group_of), 2)
             if group_of[a] is not None and group_of[a] == group_of[b]}
    expected = {frozenset((a, b)) for a, b in combinations(sorted(truth), 2) if truth[a] == truth[b]}
    return found, expected


def test_groups_are_the_copies_of_each_recording_and_nothing_else(library: tuple[Path, dict[str, str]]) -> None:
    db, truth = library
    found, expected = pair_sets(db, truth)
    precision = len(found & expected) / max(len(found), 1)
    recall = len(found & expected) / len(expected)
    shares = rows(db, "SELECT min(matched_share) AS low, max(matched_share) AS high, max(bit_error_rate) AS ber "
                      "FROM duplicate_pairs")[0]
    print(f"precision {precision:.2f}, recall {recall:.2f} over {len(expected)} pairs; shares {shares}")
    assert precision == 1.0 and recall == 1.0
    # Distinct recordings (two Kevin MacLeod pieces among them) have no pair at all, not even a weak one.
    names = {r["track_id"]: r["name"] for r in rows(db, "SELECT track_id, parse_filename(path) AS name FROM tracks_v")}
    for pair in rows(db, "SELECT * FROM duplicate_pairs"):
        assert truth[names[pair["track_id"]]] == truth[names[pair["other_track_id"]]]
    # The loop starts 12.3 s into the original, the delayed copy 3.217 s before it (a hop: 0.124 s).
    offsets = rows(db, "SELECT p.offset_s, parse_filename(a.path) AS a, parse_filename(b.path) AS b "
                       "FROM duplicate_pairs_v p JOIN tracks_v a USING (track_id) "
                       "JOIN tracks_v b ON b.track_id = p.other_track_id WHERE a.path LIKE '%/vibe_ace.flac'")
    by_name = {r["b"]: r["offset_s"] for r in offsets}
    assert abs(by_name["vibe_ace_loop.flac"] - 12.3) <= 0.13
    assert abs(by_name["vibe_ace_delayed_quiet_fade.flac"] + 3.217) <= 0.13
    sizes = rows(db, "SELECT duplicate_group_size AS n, count(*) AS tracks FROM tracks_v GROUP BY ALL ORDER BY n")
    assert {r["n"]: r["tracks"] for r in sizes} == {2: 4, 6: 6, None: 2}


def test_a_second_run_computes_nothing_and_a_recomputation_leaves_what_a_fresh_run_makes(
        library: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    db, truth = library
    copy = tmp_path / "etl.duckdb"
    shutil.copy(db, copy)
    pairs_sql = "SELECT track_id, other_track_id, round(offset_s, 6) AS o, matched_share FROM duplicate_pairs ORDER BY ALL"
    before = rows(copy, pairs_sql)
    assert run_stages(copy, db.parent / "music", ["fingerprint"])[-1].done == 0
    # A hashed setting that changes no pair here: every track recomputed, batch by batch (each batch
    # clears its tracks' pairs and finds them again), in small batches so most pairs span two.
    changed = run_stages(copy, db.parent / "music", ["fingerprint"],
                         **{"fingerprint.max_key_tracks": "150", "run.batch_size": "3"})
    assert changed[-1].done == len(truth)
    assert rows(copy, pairs_sql) == before


def test_query_duplicates_lists_the_groups(library: tuple[Path, dict[str, str]]) -> None:
    db, _ = library
    listed = etl("query", "--name", "duplicates", "-f", "json", db=db, check=True)
    data = json.loads(listed.stdout)
    assert len(data) == 10 and len({r["duplicate_group"] for r in data}) == 3
    assert data[0]["tracks"] == 6


def test_unavailable_without_libchromaprint_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import sys

    real_import = builtins.__import__

    def no_library(name: str, *args: object, **kwargs: object) -> object:
        if name == "chromaprint":
            raise ImportError("couldn't find libchromaprint")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "chromaprint", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_library)
    reason = fingerprint.unavailable(fingerprint.Params())
    assert reason is not None and "libchromaprint" in reason and "apt-get install libchromaprint1" in reason
    assert reason.short == "libchromaprint cannot be loaded"


def test_silence_fingerprints_but_indexes_nothing(tmp_path: Path) -> None:
    """Silence repeats one sub-fingerprint: stored, never a key of the index (so never a duplicate)."""
    import numpy as np
    import soundfile as sf

    music = tmp_path / "music"
    music.mkdir()
    sf.write(music / "a.wav", np.zeros((44100 * 8, 2)), 44100)  # two silent tracks (different lengths:
    sf.write(music / "b.wav", np.zeros((44100 * 9, 1)), 44100)   # different audio, two tracks)
    db = tmp_path / "etl.duckdb"
    run_stages(db, tmp_path / "music", ["ingest", "fingerprint"])
    stored = rows(db, "SELECT n_items, len(list_distinct(fingerprint)) AS distinct_items FROM track_fingerprints")
    assert len(stored) == 2 and all(r["distinct_items"] == 1 for r in stored)
    assert rows(db, "SELECT count(*) AS n FROM fingerprint_index")[0]["n"] == 2  # the first item of each only
    assert rows(db, "SELECT count(*) AS n FROM duplicate_pairs")[0]["n"] == 0


def bucket(key: str) -> int:
    """plan.split_sql's bucket of a group key (md5's first 8 hex digits, modulo 10,000)."""
    return int(hashlib.md5(key.encode()).hexdigest()[:8], 16) % 10_000


@pytest.mark.slow
def test_an_export_keeps_each_recording_in_one_split_even_when_artists_differ(tmp_path: Path) -> None:
    from mutagen.flac import FLAC

    import soundfile as sf

    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(corpus("mp3_tagged/wesnoth_traveling_minstrels_30s_lame.mp3"), music / "minstrels.mp3")
    shutil.copy(corpus("mp3_tagged/singularity_deprecation_30s_mapmeta.mp3"), music / "deprecation.mp3")
    x, rate = sf.read(corpus("mp3_tagged/wesnoth_traveling_minstrels_30s_lame.mp3"), always_2d=True)
    sf.write(music / "minstrels_copy.flac", x[int(2.5 * rate):], rate)  # a FLAC rip, trimmed
    db = tmp_path / "etl.duckdb"
    run_stages(db, music, ["ingest", "metadata"])
    original_artist = rows(db, "SELECT lower(artist) AS a FROM tracks_v WHERE path LIKE '%minstrels.mp3'")[0]["a"]
    # A copy tagged with another artist, one that a 50/50 split by artist alone puts in the other split.
    side = bucket(original_artist) < 5000
    other_artist = next(name for name in (f"someone else {i}" for i in range(100)) if (bucket(name) < 5000) != side)
    tags = FLAC(music / "minstrels_copy.flac")
    tags["artist"], tags["title"] = other_artist, "Traveling Minstrels (FLAC)"
    tags.save()
    reports = run_stages(db, music, ["ingest", "metadata", "beats", "crops", "fingerprint"],
                         **{"crops.bars": "2", "crops.bars_multiple": "1"})
    assert not any(r.failed for r in reports), reports
    group = rows(db, "SELECT artist, duplicate_group FROM tracks_v ORDER BY path")
    assert len({r["duplicate_group"] for r in group if r["duplicate_group"]}) == 1
    for group_by in ("artist", "track"):
        out = tmp_path / f"export-{group_by}"
        export(db, ExportRequest(out=out, format="csv", split="50/50", group_by=group_by))
        import csv

        with open(out / "crops.csv") as handle:
            splits = {}
            for row in csv.DictReader(handle):
                splits.setdefault(row["artist"], set()).add(row["split"])
        copies = splits[other_artist] | next(v for k, v in splits.items() if k.lower() == original_artist)
        assert len(copies) == 1, (group_by, splits)
        record = json.loads((out / "export.json").read_text())
        assert record["group_by_duplicates"] is True
    assert record["keys_joined_by_duplicates"] == 1  # by track: the copy's track id joined the original's

    # --dedupe keeps one copy per group: the lossless FLAC rip over the MP3
    out = tmp_path / "deduped"
    export(db, ExportRequest(out=out, format="csv", split="50/50", dedupe=True))
    with open(out / "crops.csv") as handle:
        kept = {row["artist"] for row in csv.DictReader(handle)}
    assert other_artist in kept and original_artist not in {k.lower() for k in kept}
    assert len(kept) == 2  # the FLAC copy and the distinct recording
    record = json.loads((out / "export.json").read_text())
    assert record["dedupe"] is True and record["copies_left_out"] == 1
