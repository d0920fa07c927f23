"""The chords stage with madmom's bundled networks: chords per beat on progressions rendered from MIDI
by fluidsynth (labels known per beat: >= 90 % must match), the stage run on a rendered track through
beats, crops, features and chords, real recordings, the agreed key against essentia's and madmom's
alone on recordings with a known key, and the skip reason without madmom."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from etl.stages.chords import testing as synth_chords
from tests.helpers import corpus, require, rows, run_stages, skip_unless_ci

require("madmom")
require("pretty_midi")
if synth_chords.missing():
    skip_unless_ci(synth_chords.missing())

from etl.stages import chords  # noqa: E402

# (tonic pitch class, mode, instrument, BPM, lead-in s): every mode, instrument and a spread of tempi
# and phases, so chord changes fall at different places in madmom's 100 ms frames.
CASES = [(0, "major", "piano", 100, 0.0), (9, "minor", "strings", 90, 0.35), (6, "major", "organ", 120, 0.2),
         (3, "minor", "guitar", 110, 0.5)]


def per_beat_accuracy(folder: Path, params: chords.Params, cases: list[tuple]) -> tuple[float, list[str]]:
    hits, total, texts = 0, 0, []
    for tonic, mode, instrument, bpm, lead_in_s in cases:
        path = folder / f"{tonic}_{mode}_{instrument}.wav"
        beats, labels = synth_chords.render(path, synth_chords.progression(tonic, mode), bpm=bpm,
                                            instrument=instrument, lead_in_s=lead_in_s)
        mono, duration_s = chords.read_44k_mono(str(path))
        result = chords.recognise(mono, duration_s, beats, params)
        assert len(result["beat_chords"]) == len(labels)
        hits += sum(got == want for got, want in zip(result["beat_chords"], labels))
        total += len(labels)
        texts.append(result["chords_text"])
    return hits / total, texts


@pytest.mark.slow
def test_chord_per_beat_on_rendered_progressions(tmp_path: Path) -> None:
    accuracy, texts = per_beat_accuracy(tmp_path, chords.Params(), CASES)
    print(f"cnn: {accuracy:.1%} of beats; {texts}")
    assert accuracy >= 0.9
    # The text names the progression's chords in order ("N" where the render is silent or ringing out).
    assert " ".join(c for c in texts[0].split() if c != "N") == "C Am F G C Dm G C"


@pytest.mark.slow
def test_deep_chroma_model_too(tmp_path: Path) -> None:
    accuracy, _ = per_beat_accuracy(tmp_path, chords.Params(chord_model="deepchroma"), CASES[1:3])
    print(f"deepchroma: {accuracy:.1%} of beats")
    assert accuracy >= 0.9


def test_a_lower_rate_crop_is_resampled_to_44k(tmp_path: Path) -> None:
    beats, labels = synth_chords.render(tmp_path / "p22.wav", synth_chords.progression(7, "major")[:4], bpm=120,
                                        instrument="organ", sample_rate=22050)
    mono, duration_s = chords.read_44k_mono(str(tmp_path / "p22.wav"))
    assert len(mono) == pytest.approx(duration_s * 44100, abs=2)
    result = chords.recognise(mono, duration_s, beats, chords.Params(chord_model="deepchroma"))
    assert np.mean([a == b for a, b in zip(result["beat_chords"], labels)]) >= 0.9


def test_real_recording(tmp_path: Path) -> None:
    """madmom on real music through the worker function: well-formed chords and key."""
    block, rate = sf.read(corpus("stempeg", "mixture.flac"), dtype="float32", always_2d=True)
    sf.write(tmp_path / "crop.flac", block, rate)
    beats = [round(0.5 * i, 3) for i in range(12)]
    result = chords.process({"path": str(tmp_path / "crop.flac"), "beat_times_s": beats}, chords.Params())
    segments = result["chords"]
    assert segments[0]["start_s"] == 0.0 and segments[-1]["end_s"] <= len(block) / rate
    assert all(a["end_s"] == b["start_s"] for a, b in zip(segments, segments[1:]))
    assert all(s["label"] == "N" or s["label"].split(":")[1] in ("maj", "min") for s in segments)
    assert segments[0]["start_beat"] == 0.0 and len(result["beat_chords"]) == len(beats)
    assert result["chords_text"].split() == [s["label"].replace(":maj", "").replace(":min", "m") for s in segments]
    scores = result["key_madmom_scores"]
    assert len(scores) == 24 and sum(scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert result["key_madmom"] == max(scores, key=scores.get) and result["key_madmom_confidence"] == scores[result["key_madmom"]]
    assert result["key_madmom_camelot"][-1] == ("B" if result["key_madmom"].endswith("major") else "A")


def test_too_quiet_crop_gets_no_chords_and_no_key(tmp_path: Path) -> None:
    rate = 44100
    quiet = (1e-5 * np.random.default_rng(0).standard_normal(4 * rate)).astype(np.float32)  # about -100 dBFS
    sf.write(tmp_path / "quiet.wav", quiet, rate, subtype="FLOAT")
    assert chords.process({"path": str(tmp_path / "quiet.wav"), "beat_times_s": [0.0, 0.5]},
                          chords.Params()) == {"chord_model": "cnn"}


def test_without_madmom_the_stage_is_skipped_with_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = chords.models(chords.Params(), checksums=False)
    assert chords.unavailable(chords.Params()) is None and all(r["found"] and r["files"] for r in listed)
    files = {"chords_cnnfeat.pkl", "chords_cnncrf.pkl", "key_cnn.pkl"}
    assert {Path(f["path"]).name for r in listed for f in r["files"]} == files
    assert {Path(p).name for p in chords.model_files(chords.Params())} == files  # in the stage hash
    assert {Path(p).name for p in chords.model_files(chords.Params(chord_model="deepchroma"))} == {
        "chroma_dnn.pkl", "chords_dccrf.pkl", "key_cnn.pkl"}
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "madmom" else real_find_spec(name, *a))
    reason = chords.unavailable(chords.Params())
    assert "pip install ./shims/madmom" in reason and reason.short == "madmom not installed — `etl models` says how"
    assert not any(r["found"] for r in chords.models(chords.Params(), checksums=False))


@pytest.mark.slow
def test_stage_on_a_rendered_track_through_beats_crops_and_features(tmp_path: Path) -> None:
    """The whole pipeline on a rendered progression: the crops' beats come from the beats stage, so
    the chord per beat is checked against the chord the render played at each tracked beat."""
    require("essentia")
    src = tmp_path / "music"
    src.mkdir()
    bpm, lead_in_s = 100.0, 0.25
    progression = synth_chords.progression(9, "minor") + synth_chords.progression(9, "minor")
    synth_chords.render(src / "song.wav", progression, bpm=bpm, instrument="piano", lead_in_s=lead_in_s)
    db = tmp_path / "etl.duckdb"
    reports = run_stages(db, src, ["ingest", "beats", "crops", "features", "chords"],
                         **{"crops.bars": "4", "crops.bars_multiple": "4"})
    assert reports[-1].done >= 2 and reports[-1].failed == 0, reports
    crops = rows(db, "SELECT crop_id, start_s, beat_times_s, chords, beat_chords, chord_segments, key_essentia, "
                     "key_madmom, key_madmom_confidence, key_name, key_tonic, key_mode, key_camelot, key_confidence, "
                     "key_agreement FROM crops_v ORDER BY start_s")
    chord_s = 4 * 60.0 / bpm
    hits = total = 0
    for crop in crops:
        assert len(crop["beat_chords"]) == len(crop["beat_times_s"])
        for beat_s, label in zip(crop["beat_times_s"], crop["beat_chords"]):
            # the chord the render plays over this beat (a beat tracked a few ms early still belongs to it)
            index = int((crop["start_s"] + beat_s - lead_in_s + 0.1) // chord_s)
            if 0 <= index < len(progression):
                hits += label == synth_chords.chord_label(*progression[index])
                total += 1
        assert crop["chords"] == " ".join(s["label"].replace(":maj", "").replace(":min", "m")
                                          for s in crop["chord_segments"])
        # Both opinions are there; the stored key is the agreed one.
        assert crop["key_essentia"] and crop["key_madmom"]
        assert crop["key_name"] == f"{crop['key_tonic']} {crop['key_mode']}" and crop["key_camelot"]
        if crop["key_essentia"] == crop["key_madmom"]:
            assert crop["key_agreement"] == "agree" and crop["key_name"] == crop["key_madmom"]
            assert crop["key_confidence"] == pytest.approx((crop["key_madmom_confidence"] + 1) / 2)
    assert total >= 16 and hits / total >= 0.9, (hits, total)
    stored = rows(db, "SELECT key_madmom_scores FROM crop_chords")
    assert all(len(r["key_madmom_scores"]) == 24 for r in stored)
    # Nothing changed: nothing recomputed; another chord model recomputes every crop.
    assert run_stages(db, src, ["chords"], **{"crops.bars": "4", "crops.bars_multiple": "4"})[-1].done == 0
    again = run_stages(db, src, ["chords"], **{"crops.bars": "4", "crops.bars_multiple": "4",
                                                "chords.chord_model": "deepchroma"})
    assert again[-1].done == len(crops)
    assert {r["chord_model"] for r in rows(db, "SELECT chord_model FROM crop_chords")} == {"deepchroma"}


@pytest.mark.slow
def test_agreed_key_is_at_least_as_accurate_as_either_opinion() -> None:
    """Real recordings with a known key (tests/key_eval.py), 15 s windows as crops would be."""
    require("essentia")
    require("mir_eval")
    from tests import key_eval
    from tests.helpers import CORPUS

    for relative, _ in key_eval.REAL:
        corpus(*relative.split("/"))
    figures = key_eval.table(key_eval.real_opinions(CORPUS))
    print(json.dumps(figures))
    for measure in (0, 1):  # exact, MIREX weighted
        assert figures["agreed"][measure] >= max(figures["essentia"][measure], figures["madmom"][measure])
