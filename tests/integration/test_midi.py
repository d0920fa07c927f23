"""The midi stage on real recordings: basic-pitch's expected model output, note accuracy against human
annotations beside bare `basic_pitch.inference.predict`, and a run through the pipeline with stems
(the stems from a small random demucs model: real files, meaningless audio) whose MIDI files are read
back with pretty_midi."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import corpus, require, rows, run_stages

require("basic_pitch")
require("onnxruntime")
mir_eval = require("mir_eval")
pretty_midi = require("pretty_midi")

from etl.stages import midi  # noqa: E402
from etl.stages.midi import transcribe  # noqa: E402

Notes = list[tuple[float, float, int, float]]


def bare_predict(path: Path) -> Notes:
    """basic-pitch's own entry point with its defaults (the model loaded once, as in a batch)."""
    inference = transcribe.quiet_import()
    from basic_pitch import ICASSP_2022_MODEL_PATH

    model = _bare_model.get(ICASSP_2022_MODEL_PATH) or _bare_model.setdefault(
        ICASSP_2022_MODEL_PATH, inference.Model(ICASSP_2022_MODEL_PATH))
    _, _, events = inference.predict(str(path), model)
    return [(float(s), float(e), int(p), float(a)) for s, e, p, a, _ in events]


_bare_model: dict = {}


def stage_notes(path: Path, **settings) -> Notes:
    return midi.transcribe_file(str(path), midi.Params(**settings))


def f_measures(reference: tuple[np.ndarray, np.ndarray], notes: Notes) -> dict[str, float]:
    """mir_eval's note F-measure, onsets within 50 ms, without and with offsets (its default 20 %)."""
    intervals = np.array([[s, e] for s, e, _, _ in notes]).reshape(-1, 2)
    pitches_hz = np.array([pretty_midi.note_number_to_hz(p) for _, _, p, _ in notes])
    ref_intervals, ref_hz = reference
    onset = mir_eval.transcription.precision_recall_f1_overlap(ref_intervals, ref_hz, intervals, pitches_hz,
                                                               onset_tolerance=0.05, offset_ratio=None)[2]
    offset = mir_eval.transcription.precision_recall_f1_overlap(ref_intervals, ref_hz, intervals, pitches_hz,
                                                                onset_tolerance=0.05)[2]
    return {"onset": onset, "onset+offset": offset}


def vocadito_annotation(annotator: str) -> tuple[np.ndarray, np.ndarray]:
    path = corpus("vocadito", "Annotations", "Notes", f"vocadito_1_notes{annotator}.csv")
    with open(path, newline="") as handle:
        table = [[float(v) for v in row] for row in csv.reader(handle) if row]
    return np.array([[onset, onset + length] for onset, _, length in table]), np.array([hz for _, hz, _ in table])


def test_model_output_is_basic_pitchs_expected_output() -> None:
    """basic-pitch's regression reference (its tests/resources/vocadito_10): the stage's activations,
    from its own decoding and resampling, equal `run_inference` on the file, and the reference within
    the float noise of another machine; the notes are the reference's notes."""
    wav = corpus("basic_pitch", "vocadito_10.wav")
    expected = np.load(corpus("basic_pitch", "vocadito_10", "model_output.npz"), allow_pickle=True)["arr_0"].item()
    model = midi._model.get(midi.Params())
    output = transcribe.model_output(model, transcribe.mono_22k(str(wav)))
    package = transcribe.quiet_import().run_inference(str(wav), model)
    for key in ("note", "onset", "contour"):
        np.testing.assert_array_equal(output[key], package[key])
        assert output[key].shape == expected[key].shape
        np.testing.assert_allclose(output[key], expected[key], atol=1e-4)
    reference = np.load(corpus("basic_pitch", "vocadito_10", "note_events.npz"), allow_pickle=True)["arr_0"]
    found = stage_notes(wav)
    assert sorted((s, e, p) for s, e, p, _ in found) == sorted((float(s), float(e), int(p)) for s, e, p, _, _ in reference)
    amplitudes = dict(((s, p), a) for s, _, p, a in found)
    for s, _, p, a, _ in reference:
        assert amplitudes[(float(s), int(p))] == pytest.approx(float(a), abs=1e-4)


@pytest.mark.slow
def test_vocadito_is_not_worse_than_bare_predict(tmp_path: Path) -> None:
    """Note F-measure against both annotators, the stage beside `predict` with its defaults: on the
    file itself, and through the pipeline (ingest, a sequential crop holding the whole song as FLAC,
    with its fades and leading silence skipped; the notes shifted by the crop's start)."""
    wav = corpus("vocadito", "vocadito_1.wav")
    stage, bare = stage_notes(wav), bare_predict(wav)
    src = tmp_path / "music"
    src.mkdir()
    (src / wav.name).write_bytes(wav.read_bytes())
    db = tmp_path / "etl.duckdb"
    run_stages(db, src, ["ingest", "crops", "midi"],
               **{"crops.mode": "sequential", "crops.seconds": "40", "crops.min_fraction": "0.5"})
    piped = [(r["start_s"], r["end_s"], r["pitch"], r["velocity"] / 127) for r in rows(
        db, "SELECT n.start_s + c.start_s AS start_s, n.end_s + c.start_s AS end_s, n.pitch, n.velocity "
            "FROM crop_midi_notes AS n JOIN crops AS c USING (crop_id) WHERE n.source = 'mix'")]
    for annotator in ("A1", "A2"):
        reference = vocadito_annotation(annotator)
        theirs = f_measures(reference, bare)
        for how, notes in (("stage", stage), ("pipeline", piped)):
            ours = f_measures(reference, notes)
            print(f"vocadito_1 {annotator}: {how} {ours}, bare predict {theirs}")
            for measure in ours:
                assert ours[measure] >= theirs[measure] - 1e-12, (annotator, how, measure)
            assert ours["onset"] > 0.35  # a real transcription (basic-pitch reads ~0.45 here), not an empty one


def test_stereo_piano_notes_match_their_annotation() -> None:
    flac = corpus("madmom", "stereo_sample.flac")
    table = np.loadtxt(corpus("madmom", "stereo_sample.notes"), ndmin=2)
    reference = (np.stack([table[:, 0], table[:, 0] + table[:, 2]], axis=1),
                 np.array([pretty_midi.note_number_to_hz(p) for p in table[:, 1]]))
    stage, bare = stage_notes(flac), bare_predict(flac)
    ours, theirs = f_measures(reference, stage), f_measures(reference, bare)
    print(f"stereo_sample: stage {ours}, bare predict {theirs}")
    assert ours["onset"] >= theirs["onset"] - 1e-12 and ours["onset+offset"] >= theirs["onset+offset"] - 1e-12
    assert ours["onset"] >= 0.7  # basic-pitch reads 0.74 here


def test_pitch_range_and_thresholds_are_applied() -> None:
    wav = corpus("basic_pitch", "vocadito_10.wav")
    everything = stage_notes(wav)
    pitches = sorted({p for _, _, p, _ in everything})
    low = pitches[len(pitches) // 2]
    limited = stage_notes(wav, pitch_min=low)
    assert limited and all(p >= low for _, _, p, _ in limited) and len(limited) < len(everything)
    assert len(stage_notes(wav, onset_threshold=0.9, frame_threshold=0.6)) < len(everything)
    assert all(e - s >= 0.3 - 0.012 for s, e, _, _ in stage_notes(wav, minimum_note_length_ms=300))


def test_without_basic_pitch_the_stage_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "basic_pitch" else real(name, *a))
    reason = midi.unavailable(midi.Params())
    assert reason is not None and "pip install --no-deps basic-pitch==0.4.0" in reason
    assert reason.short == "basic_pitch not installed — `etl models` says how"


@pytest.fixture(scope="module")
def stem_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("demucs")
    from etl.stages.stems.testing import write_random_model

    return write_random_model(tmp_path_factory.mktemp("models"))


@pytest.mark.slow
def test_pipeline_transcribes_mix_and_stems_into_beat_aligned_midi(tmp_path: Path, stem_repo: Path) -> None:
    require("madmom")
    src = tmp_path / "music"
    src.mkdir()
    (src / "mixture.flac").write_bytes(corpus("stempeg", "mixture.flac").read_bytes())
    db = tmp_path / "etl.duckdb"
    settings = {"stems.model": "tiny", "stems.repo": str(stem_repo), "stems.shifts": "0",
                "crops.bars": "1", "crops.bars_multiple": "1"}
    reports = run_stages(db, src, ["ingest", "beats", "stems", "crops", "midi"], **settings)
    crops = rows(db, "SELECT crop_id, duration_s, beat_times_s, downbeat_times_s FROM crops ORDER BY crop_index")
    assert len(crops) >= 2
    items = rows(db, "SELECT item_id, status, last_error AS error FROM stage_items WHERE stage = 'midi' ORDER BY item_id")
    assert len(items) == 5 * len(crops)  # the mix and four stems
    empty = {r["stem"] for r in rows(db, "SELECT stem FROM track_stems WHERE empty")}
    for item in items:
        source = item["item_id"].split(".", 1)[1]
        if source == "drums":
            assert (item["status"], item["error"]) == ("skipped", "source drums is not transcribed ([midi] mix / stems)")
        elif source in empty:
            assert item["status"] == "skipped" and "flagged empty" in item["error"]
        else:
            assert item["status"] == "done", item
    assert reports[-1].failed == 0
    stored = rows(db, "SELECT * FROM crop_midi_v ORDER BY crop_id, source")
    assert {r["source"] for r in stored} >= {"mix"} and len(stored) == sum(r["status"] == "done" for r in items)
    by_crop = {c["crop_id"]: c for c in crops}
    checked_downbeats = 0
    for summary in stored:
        crop = by_crop[summary["crop_id"]]
        notes = rows(db, f"SELECT * FROM crop_midi_notes WHERE crop_id = '{summary['crop_id']}' "
                         f"AND source = '{summary['source']}' ORDER BY note_index")
        assert summary["n_notes"] == len(notes)
        assert summary["note_density_per_s"] == pytest.approx(len(notes) / crop["duration_s"])
        song = pretty_midi.PrettyMIDI(summary["path"])
        # The file's bars open on the crop's downbeats, its notes at the stored seconds (within a tick).
        # (pretty_midi lists beats up to the last note only.)
        expected = [t for t in crop["downbeat_times_s"] if t < song.get_end_time()]
        downbeats = [t for t in song.get_downbeats() if t < crop["duration_s"]]
        assert downbeats[len(downbeats) - len(expected):] == pytest.approx(expected, abs=1e-4)
        checked_downbeats += len(expected)
        tick_s = max(np.diff(crop["beat_times_s"])) / 480
        read = sorted((n.start, n.pitch) for track in song.instruments for n in track.notes)
        assert len(read) == len(notes)
        for (start, pitch), note in zip(read, sorted(notes, key=lambda n: (n["start_s"], n["pitch"]))):
            assert abs(start - note["start_s"]) <= tick_s and pitch == note["pitch"]
            assert note["bar"] >= 1 and 1 <= note["beat_in_bar"] < 5
        if notes:
            assert summary["pitch_min"] == min(n["pitch"] for n in notes)
            assert sum(summary["pitch_class_histogram"]) == pytest.approx(1.0, abs=1e-5)
    assert checked_downbeats >= len(crops)
    mix = {r["crop_id"]: r for r in stored if r["source"] == "mix"}
    for row in rows(db, "SELECT crop_id, midi_notes, midi_pitch_min, midi_path FROM crops_v"):
        assert (row["midi_notes"], row["midi_pitch_min"], row["midi_path"]) == (
            mix[row["crop_id"]]["n_notes"], mix[row["crop_id"]]["pitch_min"], mix[row["crop_id"]]["path"])

    # Fewer stems transcribed: exactly those items are redone (skipped), their rows and files gone.
    files_before = {r["path"] for r in stored}
    [report] = run_stages(db, src, ["midi"], **settings, **{"midi.stems": '["bass"]'})
    assert report.failed == 0
    after = rows(db, "SELECT source, path FROM crop_midi_v")
    assert {r["source"] for r in after} <= {"mix", "bass"}
    assert all(Path(p).exists() == (p in {r["path"] for r in after}) for p in files_before)


def test_etl_models_lists_the_bundled_model(tmp_path: Path) -> None:
    import json

    from tests.helpers import etl

    listed = json.loads(etl("models", "--json", db=tmp_path / "etl.duckdb", check=True).stdout)["configured"]
    [row] = [r for r in listed if r["stage"] == "midi"]
    assert row["found"] and row["stage_skipped_because"] is None and "Apache-2.0" in row["licence"]
    [entry] = row["files"]
    assert entry["path"].endswith("nmp.onnx") and entry["size_bytes"] == Path(entry["path"]).stat().st_size
    assert len(entry["sha256"]) == 64
