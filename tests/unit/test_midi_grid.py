"""The midi stage's tempo map, note positions and statistics, on exact synthetic grids; each MIDI file is
read back with pretty_midi (a reader the stage does not use to write)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import require

pretty_midi = require("pretty_midi")
require("mido")

from etl.stages.midi import grid  # noqa: E402


def _write_and_read(tmp_path: Path, rows: list[dict], tempo: grid.TempoMap) -> pretty_midi.PrettyMIDI:
    path = tmp_path / "crop.mid"
    grid.write_midi(path, rows, tempo, name="crop mix", program=4)
    return pretty_midi.PrettyMIDI(str(path))


def test_a_steady_crop_on_a_downbeat_is_one_tempo_and_one_meter(tmp_path: Path) -> None:
    beats = [0.5 * i for i in range(16)]  # 120 BPM, 4/4, cut on a downbeat
    tempo = grid.tempo_map(beats, [i % 4 + 1 for i in range(16)], 120.0, ticks_per_beat=480)
    assert tempo.lead_in == 0 and not tempo.pickup and set(tempo.tempos_us) == {500000}
    assert tempo.time_signatures() == [(0, 4)]
    assert [tempo.tick(t) for t in beats] == [480 * i for i in range(16)]
    assert tempo.position(2.25) == {"beat": 4.5, "bar": 2, "beat_in_bar": 1.5}
    song = _write_and_read(tmp_path, [], tempo)
    assert [(ts.numerator, ts.denominator, ts.time) for ts in song.time_signature_changes] == [(4, 4, 0.0)]
    times, bpms = song.get_tempo_changes()
    assert list(times) == [0.0] and list(bpms) == [120.0]


def test_changing_tempo_pickup_and_lead_in_land_notes_at_their_seconds(tmp_path: Path) -> None:
    # A crop starting 0.3 s before its first beat, two pickup beats (positions 3, 4), then bars of 4,
    # one of 3, and a tempo drifting from 120 to 100 BPM.
    periods = [0.5 + 0.01 * i for i in range(12)]
    beats = [0.3]
    for period in periods:
        beats.append(beats[-1] + period)
    positions = [3, 4, 1, 2, 3, 4, 1, 2, 3, 1, 2, 3, 4]
    tempo = grid.tempo_map(beats, positions, None, ticks_per_beat=480)
    assert tempo.lead_in == 1 and tempo.pickup
    # Bar 0: the lead-in beat and the two pickup beats; then 4, 3 and 4 beats.
    assert tempo.time_signatures() == [(0, 3), (3, 4), (7, 3), (10, 4)]
    notes = [(0.1, 0.2, 60, 0.5), (beats[3] + 0.001, beats[4], 62, 0.8), (beats[7] + 0.2, beats[9] + 0.1, 64, 1.0),
             (beats[-1] + 0.4, beats[-1] + 0.9, 67, 0.02)]  # the last one after the crop's last beat
    rows = grid.note_rows(notes, tempo)
    assert [r["velocity"] for r in rows] == [64, 102, 127, 3]
    # beats[2] is the first downbeat (bar 1), beats[3] its second beat; beats[6] opens bar 2.
    assert rows[1]["bar"] == 1 and rows[1]["beat_in_bar"] == pytest.approx(2 + 0.001 / periods[3], abs=1e-6)
    assert rows[1]["start_beat"] == pytest.approx(3 + 0.001 / periods[3], abs=1e-6)
    assert rows[0]["bar"] == 0 and rows[0]["start_beat"] < 0
    assert rows[2]["bar"] == 2 and rows[2]["beat_in_bar"] == pytest.approx(2 + 0.2 / periods[7], abs=1e-6)
    assert rows[2]["end_beat"] == pytest.approx(9 + 0.1 / periods[9], abs=1e-6)
    song = _write_and_read(tmp_path, rows, tempo)
    # The file's beats are the crop's beats (after the lead-in), its downbeats the crop's downbeats.
    assert song.get_beats()[1:len(beats) + 1] == pytest.approx(beats, abs=1e-5)
    assert list(song.get_downbeats()[1:4]) == pytest.approx([beats[2], beats[6], beats[9]], abs=1e-5)
    [track] = song.instruments
    longest_tick_s = max(periods) / 480
    read = sorted((n.start, n.end, n.pitch, n.velocity) for n in track.notes)
    for (start, end, pitch, vel), row in zip(read, rows):
        assert abs(start - row["start_s"]) <= longest_tick_s and abs(end - row["end_s"]) <= longest_tick_s
        assert (pitch, vel) == (row["pitch"], row["velocity"])


def test_a_crop_without_beats_has_a_constant_tempo_and_no_positions(tmp_path: Path) -> None:
    tempo = grid.tempo_map([], [], 90.0)
    assert not tempo.aligned and tempo.tempos_us == (round(60e6 / 90),)
    assert tempo.position(1.0) == {"beat": None, "bar": None, "beat_in_bar": None}
    rows = grid.note_rows([(1.0, 1.5, 48, 0.5)], tempo)
    song = _write_and_read(tmp_path, rows, tempo)
    assert song.time_signature_changes == []
    assert song.instruments[0].notes[0].start == pytest.approx(1.0, abs=60 / 90 / 480)


def test_a_beat_within_half_a_tick_of_the_start_opens_the_file() -> None:
    tempo = grid.tempo_map([0.0004, 0.5004, 1.0004], [1, 2, 3], None, ticks_per_beat=480)
    assert tempo.lead_in == 0 and tempo.bar_starts == (0,)
    assert tempo.tick(0.5004) == 480


def test_statistics_of_overlapping_notes() -> None:
    rows = [{"start_s": 0.0, "end_s": 1.0, "pitch": 60}, {"start_s": 0.5, "end_s": 1.5, "pitch": 64},
            {"start_s": 3.0, "end_s": 3.5, "pitch": 72}]
    stats = grid.statistics(rows, duration_s=10.0)
    assert stats["n_notes"] == 3 and (stats["pitch_min"], stats["pitch_max"]) == (60, 72)
    # 2.5 s of notes over the 2 s when anything sounds (silence does not count).
    assert stats["mean_polyphony"] == pytest.approx(1.25)
    assert stats["note_density_per_s"] == pytest.approx(0.3)
    histogram = stats["pitch_class_histogram"]
    assert len(histogram) == 12 and histogram[0] == pytest.approx(0.6) and histogram[4] == pytest.approx(0.4)
    assert grid.union_length([(0, 1), (0.2, 0.4), (2, 3)]) == pytest.approx(2.0)


def test_no_notes_is_null_not_zero() -> None:
    stats = grid.statistics([], duration_s=4.0)
    assert stats == {"n_notes": 0, "pitch_min": None, "pitch_max": None, "mean_polyphony": None,
                     "note_density_per_s": 0.0, "pitch_class_histogram": None}
