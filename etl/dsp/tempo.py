"""Tempo from beat times: the one estimate the beat grid (beat_grids.bpm) and each crop's grid
tempo (crops.bpm) use."""

from __future__ import annotations

from typing import Any

# A grid is steady when this share of its inter-beat intervals lies within TOLERANCE of the median
# (the beats stage's defaults; [beats] steady_tolerance / steady_fraction).
TOLERANCE = 0.04
STEADY_FRACTION = 0.8


def tempo_from_beats(times: Any, tolerance: float, steady_fraction: float) -> tuple[float, str]:
    """(BPM, method) from beat times. The beat trackers' times are whole 10 ms frames, so one
    interval is known to ±10 ms (at 170 BPM, 60 / median interval moves in ~2 % steps). On a steady
    grid (at least `steady_fraction` of the intervals within `tolerance` of the median) the tempo
    is the least-squares slope of beat time on beat index, over the runs of on-tempo intervals (an
    interval of ~2 or ~3 beats, a missed beat, counts as that many; anything else starts a new run
    with its own offset): the frame rounding averages out over the whole track ("fit"). An
    unsteady grid keeps 60 / median interval, robust to drift and to the odd wrong beat ("median")."""
    import numpy as np  # here: `etl status` imports the stages, and must not load numpy

    times = np.asarray(times, dtype=np.float64)
    intervals = np.diff(times)
    median = float(np.median(intervals))
    ratio = intervals / median
    beats_spanned = np.round(ratio)
    on_grid = (beats_spanned >= 1) & (beats_spanned <= 3) & (np.abs(ratio / np.maximum(beats_spanned, 1) - 1) <= tolerance)
    if np.mean(np.abs(ratio - 1) <= tolerance) < steady_fraction or on_grid.sum() < 2:
        return 60.0 / median, "median"
    run = np.concatenate([[0], np.cumsum(~on_grid)])   # each beat's run (a new one after a break)
    index = np.concatenate([[0.0], np.cumsum(np.where(on_grid, beats_spanned, 0.0))])
    sxx = sxy = 0.0
    for r in np.unique(run):
        member = run == r
        if member.sum() < 2:
            continue
        di, dt = index[member] - index[member].mean(), times[member] - times[member].mean()
        sxx, sxy = sxx + float(di @ di), sxy + float(di @ dt)
    if sxx <= 0 or sxy <= 0:
        return 60.0 / median, "median"
    return 60.0 * sxx / sxy, "fit"
