"""A crop's beats as a MIDI tempo map, note positions in bars and beats, and the MIDI file itself.

The file's beat `i` (tick `i * ticks_per_beat`) is the crop's beat `i - lead_in`: each interval
between two beats gets its own tempo, so a note written at its seconds lands on the same beat and
bar in a DAW as in the recording, while reading the file back (pretty_midi, mido) gives the same
seconds. Before the crop's first beat the file has `lead_in` beats spread evenly from the crop's
start (a crop cut on a downbeat has none); after its last beat the last tempo continues.

Bars: a time signature at every bar line where the bar length changes (denominator 4: a beat is
written as a quarter note, its real note value being unknown). Beats before the first downbeat
(lead-in and pickup beats) form bar 0, which starts at the file's tick 0; bar 1 starts on the
crop's first downbeat. A crop with fewer than two beats has no grid: a constant tempo (its BPM, or
120), notes in seconds only.

MIDI tempos are whole microseconds per beat: tick times are computed from the rounded tempos the
file holds (what a reader computes), so a note is off its seconds by at most half a tick, plus the
rounding of at most half a microsecond per beat before it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_BPM = 120.0  # a crop without beats or BPM (MIDI's own default tempo)


@dataclass(frozen=True)
class TempoMap:
    ticks_per_beat: int
    tempos_us: tuple[int, ...]      # microseconds per beat of each grid interval; the last one continues
    beat_s: tuple[float, ...]       # seconds of each grid beat, from the rounded tempos (the file's clock)
    lead_in: int                    # grid beats before the crop's first beat
    bar_starts: tuple[int, ...]     # grid beat of each bar line (bar 0 from tick 0 when there is a pickup)
    pickup: bool                    # whether bar_starts[0] is bar 0 (beats before the first downbeat)
    aligned: bool                   # False: no beat grid (constant tempo, no bars or beats)

    def grid_position(self, time_s: float) -> float:
        """The fractional grid beat at `time_s` (piecewise linear in the file's tempo map)."""
        i = max(0, bisect.bisect_right(self.beat_s, time_s) - 1)
        period_s = self.tempos_us[min(i, len(self.tempos_us) - 1)] / 1e6
        return i + (time_s - self.beat_s[i]) / period_s

    def tick(self, time_s: float) -> int:
        return max(0, round(self.grid_position(time_s) * self.ticks_per_beat))

    def position(self, time_s: float) -> dict[str, Any]:
        """Beat (fractional, 0 = the crop's first beat), bar number and 1-based beat in that bar."""
        if not self.aligned:
            return {"beat": None, "bar": None, "beat_in_bar": None}
        grid = self.grid_position(time_s)
        beat = grid - self.lead_in
        if not self.bar_starts:
            return {"beat": beat, "bar": None, "beat_in_bar": None}
        # A note a hair before a bar line (float noise far below a tick) belongs to that bar.
        k = bisect.bisect_right(self.bar_starts, grid + 1e-9) - 1
        if k < 0:  # before the first downbeat with no pickup bar (cannot happen: lead-in makes one)
            return {"beat": beat, "bar": None, "beat_in_bar": None}
        bar = k if self.pickup else k + 1
        return {"beat": beat, "bar": bar, "beat_in_bar": grid - self.bar_starts[k] + 1.0}

    def time_signatures(self) -> list[tuple[int, int]]:
        """(grid beat, numerator) at each bar line where the bar length changes."""
        if not self.bar_starts:
            return []
        lengths = [b - a for a, b in zip(self.bar_starts, self.bar_starts[1:])]
        full = lengths[1:] if self.pickup else lengths
        meter = Counter(full).most_common(1)[0][0] if full else (lengths[0] if lengths else 4)
        lengths.append(meter)  # the last bar, and what follows the crop's last beat
        changes, previous = [], None
        for start, length in zip(self.bar_starts, lengths):
            length = max(1, min(255, length))
            if length != previous:
                changes.append((start, length))
                previous = length
        return changes


def tempo_map(beat_times_s: list[float] | None, beat_positions: list[int] | None, bpm: float | None,
              ticks_per_beat: int = 480) -> TempoMap:
    """The tempo map of a crop from its beats (seconds from the crop's start) and their positions in
    the bar (1 = downbeat)."""
    beats = sorted(float(t) for t in (beat_times_s or []) if t >= 0)
    positions = list(beat_positions or [])
    if len(positions) != len(beat_times_s or []):
        positions = []
    else:  # the same filter and order as `beats`
        positions = [p for _, p in sorted((float(t), p) for t, p in zip(beat_times_s or [], positions) if t >= 0)]
    if len(beats) < 2:
        period_us = round(60e6 / (bpm if bpm and bpm > 0 else DEFAULT_BPM))
        return TempoMap(ticks_per_beat, (period_us,), (0.0,), 0, (), False, False)
    first_period = beats[1] - beats[0]
    if beats[0] <= first_period / ticks_per_beat / 2:
        # Within half a tick of the start (a crop cut on a beat): that beat opens the file.
        lead = []
        beats[0] = 0.0
    else:
        count = max(1, round(beats[0] / first_period))
        lead = [beats[0] * k / count for k in range(count)]
    grid = lead + beats
    tempos = tuple(max(1, round((b - a) * 1e6)) for a, b in zip(grid, grid[1:]))
    clock = [0.0]
    for period_us in tempos:
        clock.append(clock[-1] + period_us / 1e6)
    downbeats = [len(lead) + i for i, p in enumerate(positions) if p == 1]
    pickup = bool(downbeats) and downbeats[0] > 0
    bar_starts = ([0] if pickup else []) + downbeats
    return TempoMap(ticks_per_beat, tempos, tuple(clock), len(lead), tuple(bar_starts), pickup, True)


def note_rows(notes: list[tuple[float, float, int, float]], grid: TempoMap) -> list[dict[str, Any]]:
    """Each note (start s, end s, MIDI pitch, amplitude 0..1) with its velocity, beats and bar."""
    rows = []
    for start_s, end_s, pitch, amplitude in sorted(notes, key=lambda n: (n[0], n[2])):
        at = grid.position(start_s)
        rows.append({"start_s": float(start_s), "end_s": float(end_s), "pitch": int(pitch),
                     "velocity": velocity(amplitude), "start_beat": at["beat"],
                     "end_beat": grid.position(end_s)["beat"], "bar": at["bar"], "beat_in_bar": at["beat_in_bar"]})
    return rows


def velocity(amplitude: float) -> int:
    """basic-pitch's own mapping (round(127 * amplitude)), kept audible (a velocity of 0 is a note-off)."""
    return max(1, min(127, round(127 * float(amplitude))))


def statistics(rows: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """Note count, pitch range, mean polyphony, density and pitch-class histogram; NULL (None) where
    there are no notes to measure (the count and density are then 0)."""
    import numpy as np

    stats: dict[str, Any] = {"n_notes": len(rows), "pitch_min": None, "pitch_max": None, "mean_polyphony": None,
                             "note_density_per_s": len(rows) / duration_s if duration_s > 0 else None,
                             "pitch_class_histogram": None}
    if not rows:
        return stats
    pitches = np.array([r["pitch"] for r in rows])
    lengths = np.array([r["end_s"] - r["start_s"] for r in rows])
    stats["pitch_min"], stats["pitch_max"] = int(pitches.min()), int(pitches.max())
    sounding = union_length([(r["start_s"], r["end_s"]) for r in rows])
    # Notes sounding at once, averaged over the time anything sounds (silence does not dilute it).
    stats["mean_polyphony"] = float(lengths.sum() / sounding) if sounding > 0 else None
    weight = np.bincount(pitches % 12, weights=lengths, minlength=12)
    stats["pitch_class_histogram"] = (weight / weight.sum()).tolist() if weight.sum() > 0 else None
    return stats


def union_length(spans: list[tuple[float, float]]) -> float:
    """Total length covered by the spans (overlaps counted once)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(spans):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


# General MIDI programs (0-based) per source, so a DAW opens each file with a fitting sound:
# basic-pitch's own default (4, Electric Piano 1) for the mix and `other`.
PROGRAMS = {"bass": 33, "vocals": 53, "guitar": 25, "piano": 0}
DEFAULT_PROGRAM = 4


def write_midi(path: Path, rows: list[dict[str, Any]], grid: TempoMap, name: str, program: int) -> None:
    """A type-1 MIDI file: track 0 the tempo map and time signatures, track 1 the notes."""
    import mido

    meta: list[tuple[int, int, Any]] = [(0, 0, mido.MetaMessage("track_name", name="tempo map", time=0))]
    previous = None
    for beat, tempo_us in enumerate(grid.tempos_us):
        if tempo_us != previous:
            meta.append((beat * grid.ticks_per_beat, 1, mido.MetaMessage("set_tempo", tempo=tempo_us, time=0)))
            previous = tempo_us
    for beat, numerator in grid.time_signatures():
        meta.append((beat * grid.ticks_per_beat, 0, mido.MetaMessage("time_signature", numerator=numerator,
                                                                     denominator=4, time=0)))
    events: list[tuple[int, int, Any]] = [(0, 0, mido.MetaMessage("track_name", name=name, time=0)),
                                          (0, 0, mido.Message("program_change", program=program, time=0))]
    for row in rows:
        on = grid.tick(row["start_s"])
        off = max(on + 1, grid.tick(row["end_s"]))
        # At one tick: note-offs first, so a repeated pitch ends before it starts again.
        events.append((on, 2, mido.Message("note_on", note=row["pitch"], velocity=row["velocity"], time=0)))
        events.append((off, 1, mido.Message("note_off", note=row["pitch"], velocity=0, time=0)))
    song = mido.MidiFile(type=1, ticks_per_beat=grid.ticks_per_beat)
    for listed in (meta, events):
        track = mido.MidiTrack()
        now = 0
        for tick, _, message in sorted(listed, key=lambda e: (e[0], e[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        song.tracks.append(track)
    with open(path, "wb") as handle:
        song.save(file=handle)
