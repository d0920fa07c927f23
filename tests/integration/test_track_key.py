"""The track's key (tracks_v.key_name / key_confidence, issue 28.2) on pieces of music21's corpus
rendered by fluidsynth, whose scores state their key (etl/stages/chords/testing.py `score_key`), run
through ingest, beats, crops, features and chords: right on most pieces, and at most one piece behind
the crops' agreed keys voted per track. bench/track_key.py measures the same on every such piece."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etl.stages.chords import testing as synth_chords
from tests.helpers import require, rows, skip_unless_ci

require("madmom")
require("essentia")
require("mir_eval")
require("music21")
if synth_chords.missing():
    skip_unless_ci(synth_chords.missing())

from tests import key_eval  # noqa: E402

# Short pieces and movements (a few bars past 128 quarter notes of each is rendered), three major,
# three minor, six composers; none is a Bach chorale (those are held back).
PIECES = ["corelli/opus3no1/1grave.xml", "liliuokalani/aloha_oe.mxl", "haydn/opus1no1/movement4.mxl",
          "mozart/k156/movement4.mxl", "chopin/mazurka06-2.krn", "schumann_clara/polonaise_op1n4.mxl"]


@pytest.mark.slow
def test_track_key_on_rendered_pieces(tmp_path: Path) -> None:
    src = tmp_path / "rendered"
    truths = key_eval.render_pieces(PIECES, src, max_quarters=128)
    assert len(truths) == len(PIECES)  # each score states its key
    db = tmp_path / "etl.duckdb"
    key_eval.run_track_stages(db, [src])
    tracks = key_eval.track_keys(db, truths, {p.stem: p for p in src.glob("*.wav")})
    figures = key_eval.track_table(tracks)
    print(json.dumps({t.name: [t.truth, t.track, t.confidence, t.vote, t.essentia] for t in tracks}), figures)
    assert all(t.track is not None and 0 < t.confidence <= 1 for t in tracks)
    # Measured (main at 8f39dca + this change): 4 of 6 exactly right for the track key, the crops'
    # vote and bare essentia alike (the Polonaise heard in its relative C major by all three; the
    # Mazurka in its dominant G# major by the summed opinions, C# minor by the vote). MIREX weighted:
    # 0.72 track, 0.77 vote, 0.80 essentia -- the track key is not ahead of the vote there.
    # Asserted with one piece of margin: another CPU rounds the networks' sums differently (CI's did in
    # the classify stage's embeddings), and a piece near a tie may tip. Random keys would get 6/24.
    assert figures["track"][0] >= 3, figures  # of 6 exactly right
    assert figures["track"][0] >= figures["vote"][0] - 1, figures


def test_track_key_sums_crop_opinions_and_is_null_without_any() -> None:
    """The view's rule on hand-made crops: each crop backs every key with its share of the two opinions,
    summed over the crops by their length; a track whose crops are all silent has no key."""
    import duckdb

    from etl.engine.resources import sql

    con = duckdb.connect()
    con.execute("CREATE TABLE crops (crop_id VARCHAR, track_id VARCHAR, duration_s DOUBLE)")
    con.execute("CREATE TABLE crop_features (crop_id VARCHAR, key_name VARCHAR)")
    con.execute("CREATE TABLE crop_chords (crop_id VARCHAR, key_madmom_scores MAP(VARCHAR, FLOAT))")
    con.execute(sql("stages/chords/views.sql", "macros"))
    join = sql("stages/chords/views.sql", "tracks_v.join")  # LEFT JOIN (<the track keys>) AS track_key ...
    track_keys = join[join.index("LEFT JOIN (") + len("LEFT JOIN ("):join.rindex(") AS track_key")]
    keys = [k for (k,) in con.execute("SELECT unnest(all_key_names())").fetchall()]
    assert len(set(keys)) == 24 and "A# minor" in keys and "C major" in keys

    def madmom(**top: float) -> dict[str, float]:
        """24 probabilities: those named ("D"="D major"...), the rest shared evenly."""
        named = {f"{k} major": p for k, p in top.items()}
        rest = (1 - sum(named.values())) / (24 - len(named))
        return {k: named.get(k, rest) for k in keys}

    # (track, crop, seconds, essentia's key, madmom's probabilities)
    crops = [
        # a: the agreed keys are D, D, G (madmom's where the two differ by a fifth): voted, D major.
        # Summed, G major holds (0.40 + 1) / 2 twice and 0.60 / 2 once = 0.567 of the opinions, D major
        # 0.225, 0.225, 0.65 = 0.367: G major, as essentia twice and madmom as close second say.
        ("a", "a0", 15.0, "G major", madmom(D=0.45, G=0.40)),
        ("a", "a1", 15.0, "G major", madmom(D=0.45, G=0.40)),
        ("a", "a2", 15.0, "D major", madmom(D=0.30, G=0.60)),
        # b: silent crops back nothing: no key, not a key made of NULLs
        ("b", "b0", 15.0, None, None),
        # c: a long crop in F outweighs a short one in C; essentia's opinion alone counts as its vote
        ("c", "c0", 12.0, "F major", None),
        ("c", "c1", 4.0, None, madmom(C=0.9)),
    ]
    for track, crop, seconds, essentia, scores in crops:
        con.execute("INSERT INTO crops VALUES (?, ?, ?)", [crop, track, seconds])
        con.execute("INSERT INTO crop_features VALUES (?, ?)", [crop, essentia])
        con.execute("INSERT INTO crop_chords VALUES (?, MAP(?, ?))",
                    [crop, list(scores) if scores else None, list(scores.values()) if scores else None])
    found = {t: (k, c) for t, k, c in con.execute(f"SELECT track_id, key_name, key_confidence FROM ({track_keys})").fetchall()}
    assert set(found) == {"a", "c"}  # b: none
    assert found["a"][0] == "G major" and found["a"][1] == pytest.approx((0.70 + 0.70 + 0.30) / 3, abs=1e-6)
    assert found["c"][0] == "F major" and found["c"][1] == pytest.approx((12 * 1.0 + 4 * (0.1 / 23)) / 16, abs=1e-6)
