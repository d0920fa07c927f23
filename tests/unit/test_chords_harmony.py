"""The chords stage's pure parts: label mapping, segments on the beat grid, the chord per beat, and
the agreed-key rule of crops_v (etl/stages/chords/views.sql, its macros, run in DuckDB)."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from etl.dsp.keys import key_names
from etl.engine.resources import sql
from etl.stages.chords import harmony


@pytest.mark.parametrize("label, short", [("C:maj", "C"), ("A:min", "Am"), ("F#:maj", "F#"), ("G#:min", "G#m"),
                                          ("N", "N")])
def test_madmom_labels_map_to_short_names(label: str, short: str) -> None:
    assert harmony.short_chord(label) == short


def test_a_label_outside_majmin_is_refused() -> None:
    with pytest.raises(ValueError, match="major/minor"):
        harmony.short_chord("C:7")


@pytest.mark.parametrize("madmom, store", [("Bb minor", ("A#", "A# minor", "3A")), ("Ab major", ("G#", "G# major", "4B")),
                                           ("F# minor", ("F#", "F# minor", "11A")), ("C major", ("C", "C major", "8B"))])
def test_madmom_keys_are_spelled_as_essentias(madmom: str, store: tuple[str, str, str]) -> None:
    assert key_names(*madmom.split(" ")) == store


def test_beat_positions_interpolate_and_extend() -> None:
    beats = [0.5, 1.0, 1.5, 2.5]  # the last interval is longer
    got = harmony.beat_position(np.array([0.0, 0.5, 0.75, 2.0, 2.5, 3.0]), beats)
    assert got == pytest.approx([-1.0, 0.0, 0.5, 2.5, 3.0, 3.5])
    assert harmony.beat_position(np.array([1.0]), [0.5]) == [None]


def test_segments_are_clipped_to_the_crop_and_placed_on_beats() -> None:
    madmom = [(0.0, 1.0, "C:maj"), (1.0, 2.1, "A:min"), (2.1, 2.3, "N")]
    got = harmony.segments(madmom, duration_s=2.05, beat_times_s=[0.0, 0.5, 1.0, 1.5, 2.0])
    assert [s["label"] for s in got] == ["C:maj", "A:min"]  # the segment starting past the end is dropped
    assert got[1]["end_s"] == 2.05 and got[1]["start_beat"] == 2.0 and got[1]["end_beat"] == pytest.approx(4.1)
    assert harmony.chords_text(got) == "C Am"
    assert all(s["start_beat"] is None for s in harmony.segments(madmom, 2.05, [0.3]))


def test_chord_per_beat_takes_the_chord_covering_most_of_the_beat() -> None:
    segments = harmony.segments([(0.0, 1.1, "C:maj"), (1.1, 2.0, "G:maj"), (2.0, 4.0, "A:min")], 4.0,
                                [0.0, 0.5, 1.0, 1.5, 2.0, 3.8])
    # beat 3 (1.0-1.5) is mostly G although C still sounds at its instant; the last beat's span is
    # the median interval cut at the crop's end.
    assert harmony.beat_chords(segments, [0.0, 0.5, 1.0, 1.5, 2.0, 3.8], 4.0) == \
        ["C:maj", "C:maj", "G:maj", "G:maj", "A:min", "A:min"]
    assert harmony.beat_chords(segments, [0.0, 4.0], 4.0)[-1] == "A:min"  # a beat at the very end: the chord there
    assert harmony.beat_chords(segments, [], 4.0) == []


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(sql("stages/chords/views.sql", "macros"))
    return connection


KEYS = ["C major", "A minor", "E minor", "E major", "B minor", "F# minor", "D major", "G minor", "A# major"]


def agreed(con: duckdb.DuckDBPyConnection, essentia: str | None, madmom: str | None,
           scores: dict[str, float] | None = None) -> tuple:
    scores = scores or {k: 0.1 for k in KEYS}
    return con.execute("SELECT k.key_name, k.key_confidence, k.key_agreement FROM "
                       "(SELECT agreed_key($e, $m, CASE WHEN $m IS NOT NULL THEN MAP($n, $s) END) AS k)",
                       {"e": essentia, "m": madmom, "n": list(scores), "s": list(scores.values())}).fetchone()


@pytest.mark.parametrize("essentia, madmom, key, agreement", [
    ("E minor", "E minor", "E minor", "agree"),
    ("E minor", "E major", "E minor", "mode"),     # parallel: essentia's
    ("C major", "A minor", "C major", "mode"),     # relative: essentia's
    ("A minor", "C major", "A minor", "mode"),
    ("G minor", "A# major", "G minor", "mode"),
    ("B minor", "E minor", "E minor", "differ"),   # a fifth apart: madmom's
    ("D major", "F# minor", "F# minor", "differ"),
    (None, "E minor", "E minor", "madmom only"),
    ("E minor", None, "E minor", "essentia only"),
    (None, None, None, None),
])
def test_agreed_key_rule(con: duckdb.DuckDBPyConnection, essentia: str | None, madmom: str | None,
                         key: str | None, agreement: str | None) -> None:
    got = agreed(con, essentia, madmom)
    assert (got[0], got[2]) == (key, agreement)


def test_agreed_key_confidence(con: duckdb.DuckDBPyConnection) -> None:
    scores = {"E minor": 0.6, "B minor": 0.3, "E major": 0.1}
    assert agreed(con, "E minor", "E minor", scores)[1] == pytest.approx((0.6 + 1) / 2)
    assert agreed(con, "B minor", "E minor", scores)[1] == pytest.approx(0.6 / 2)  # madmom's key, essentia against
    assert agreed(con, "E major", "E minor", scores)[1] == pytest.approx((0.1 + 1) / 2)  # essentia's key
    assert agreed(con, None, "E minor", scores)[1] == pytest.approx(0.6)
    assert agreed(con, "E minor", None)[1] is None
