"""Pure helpers of the chords stage: madmom's labels in the store's spelling, chord segments placed
on the crop's beat grid, and the chord over each beat. No madmom import here (the unit tests and
`etl status` need none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

NO_CHORD = "N"


def short_chord(label: str) -> str:
    """madmom's Harte label -> the short name of `crops_v.chords`: "C:maj" -> "C", "A:min" -> "Am",
    "N" (no chord) stays "N" (dropping it would glue the chords around a break together)."""
    if label == NO_CHORD:
        return NO_CHORD
    root, _, quality = label.partition(":")  # madmom spells roots with sharps, as the store does
    if quality in ("", "maj"):
        return root
    if quality == "min":
        return f"{root}m"
    raise ValueError(f"chord label {label!r} is outside madmom's major/minor vocabulary")


def beat_position(times_s: np.ndarray, beat_times_s: list[float]) -> list[float | None]:
    """Seconds from the crop's start -> position on its beat grid in beats (0 = the crop's first beat,
    1.5 = halfway from its second to its third), linear between beats and extended past the first
    and last beat at the nearest interval. None for every time where the crop holds under 2 beats."""
    if len(beat_times_s) < 2:
        return [None] * len(times_s)
    beats = np.asarray(beat_times_s, dtype=np.float64)
    index = np.arange(len(beats), dtype=np.float64)
    times = np.asarray(times_s, dtype=np.float64)
    inside = np.interp(times, beats, index)
    before = (times - beats[0]) / (beats[1] - beats[0])
    after = len(beats) - 1 + (times - beats[-1]) / (beats[-1] - beats[-2])
    return np.where(times < beats[0], before, np.where(times > beats[-1], after, inside)).tolist()


def segments(chords: Any, duration_s: float, beat_times_s: list[float]) -> list[dict[str, Any]]:
    """madmom's (start, end, label) rows -> segments with start_s / end_s (clipped to the crop: the
    last frame may run past its end) and start_beat / end_beat on the crop's grid."""
    rows = [(float(start), min(float(end), duration_s), str(label)) for start, end, label in chords
            if float(start) < duration_s]
    starts = beat_position(np.array([r[0] for r in rows]), beat_times_s)
    ends = beat_position(np.array([r[1] for r in rows]), beat_times_s)
    return [{"label": label, "start_s": round(start, 4), "end_s": round(end, 4),
             "start_beat": None if b0 is None else round(b0, 4), "end_beat": None if b1 is None else round(b1, 4)}
            for (start, end, label), b0, b1 in zip(rows, starts, ends)]


def beat_chords(chord_segments: list[dict[str, Any]], beat_times_s: list[float], duration_s: float) -> list[str]:
    """The chord over each beat: the label covering most of the beat's span, from its time to the next
    beat's (the last beat's span is the median interval, cut at the crop's end). The chord at the
    beat's instant alone would take the previous chord wherever the recogniser's 100 ms frames put a
    change a frame late. A tie goes to the earlier segment."""
    if not beat_times_s or not chord_segments:
        return []
    beats = np.asarray(beat_times_s, dtype=np.float64)
    interval = float(np.median(np.diff(beats))) if len(beats) > 1 else duration_s - beats[0]
    ends = np.minimum(np.append(beats[1:], beats[-1] + interval), duration_s)
    starts = np.array([s["start_s"] for s in chord_segments])
    stops = np.array([s["end_s"] for s in chord_segments])
    labels = []
    for begin, end in zip(beats, np.maximum(ends, beats)):
        if end <= begin:  # a beat at the crop's very end has no span: the last chord started by then
            index = max(0, int(np.searchsorted(starts, begin, side="right")) - 1)
        else:
            index = int(np.argmax(np.minimum(stops, end) - np.maximum(starts, begin)))
        labels.append(chord_segments[index]["label"])
    return labels


def chords_text(chord_segments: list[dict[str, Any]]) -> str:
    """"C G Am F": the segments' short names in order (madmom's segments already differ from their
    neighbours)."""
    return " ".join(short_chord(s["label"]) for s in chord_segments)
