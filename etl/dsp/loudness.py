"""EBU R128 loudness of a crop in one K-weighted pass: momentary and short-term series,
integrated loudness (ITU-R BS.1770-4) and loudness range (EBU Tech 3342).

The definitions are those of essentia's LoudnessEBUR128, which the features stage used before:
400 ms and 3 s rectangular windows every 100 ms, starting at the first sample, full windows
only; integrated loudness gated at −70 LUFS and then 10 LU below the absolute-gated level; the
loudness range the 10th to 95th percentile of the short-term levels gated at −70 LUFS and
20 LU below. What differs is how: essentia cuts and averages every window separately (each
sample is summed 34 times), resamples anything but 44.1 kHz to 48 kHz first, and at 44.1 kHz
uses K-weighting coefficients rounded to 3 digits. Here the K-weighting filter is designed for
the crop's own rate (as libebur128 does) and every window is a difference of one running sum:
~2.5x faster. The two ITU compliance signals read −10.03 and −69.45 LUFS (targets −10.0, −69.5;
essentia: −10.03, −69.45). On real 44.1 and 22.05 kHz crops the integrated loudness is within
0.11 LU of pyloudnorm's (essentia: 0.18 LU), momentary levels within 0.3 LU of essentia's.
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np

HOP_S, MOMENTARY_S, SHORT_TERM_S = 0.1, 0.4, 3.0
ABSOLUTE_GATE_LUFS = -70.0


class Ebur128(NamedTuple):
    momentary: np.ndarray      # LUFS per 400 ms window, every 100 ms (−inf where silent)
    short_term: np.ndarray     # LUFS per 3 s window, every 100 ms
    integrated: float | None   # None when nothing is above the absolute gate (or too short)
    loudness_range: float | None  # None when shorter than one short-term window


@cache
def k_weighting(sample_rate: int) -> np.ndarray:
    """BS.1770's two K-weighting biquads (high shelf, then RLB high-pass) as second-order
    sections for `sample_rate`, from their analog prototypes by the bilinear transform (the
    published 48 kHz coefficients come out to 1e-12)."""
    k = math.tan(math.pi * 1681.974450955533 / sample_rate)
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    k = math.tan(math.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, high_pass])


def to_lufs(power: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10 * np.log10(power) - 0.691


def to_power(lufs: float) -> float:
    return 10 ** ((lufs + 0.691) / 10)


def window_means(running: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Mean of every full `window` samples, every `hop` from the first; running = [0, cumsum]."""
    starts = np.arange(0, len(running) - window, hop)
    # max(0): after loud passages, the difference for digital silence can round just below 0
    return np.maximum(running[starts + window] - running[starts], 0.0) / window


def gated_mean(power: np.ndarray, relative_lu: float) -> tuple[np.ndarray, float]:
    """The powers above both gates, and the relative gate (as a power)."""
    absolute = to_power(ABSOLUTE_GATE_LUFS)
    above = power[power >= absolute]
    gate = max(above.mean() * 10 ** (relative_lu / 10), absolute) if above.size else absolute
    return power[power >= gate], gate


def integrated(momentary_power: np.ndarray) -> float | None:
    """BS.1770-4 gating over the 400 ms blocks (75 % overlap: the momentary windows)."""
    kept, _ = gated_mean(momentary_power, -10.0)
    return float(to_lufs(kept.mean())) if kept.size else None


def loudness_range(short_term_power: np.ndarray) -> float | None:
    if not short_term_power.size:
        return None
    kept, _ = gated_mean(short_term_power, -20.0)
    if not kept.size:
        return 0.0  # silence has no range
    kept = np.sort(kept)
    high, low = kept[round(0.95 * (kept.size - 1))], kept[round(0.1 * (kept.size - 1))]
    return float(to_lufs(high) - to_lufs(low))


def ebur128(channels: np.ndarray, sample_rate: int) -> Ebur128:
    """channels: (samples, channels), each weighted 1 (left, right or one mono channel)."""
    from scipy.signal import sosfilt

    weighted = sosfilt(k_weighting(sample_rate), channels, axis=0)
    running = np.concatenate([[0.0], np.cumsum(np.einsum("ij,ij->i", weighted, weighted))])
    hop = round(HOP_S * sample_rate)
    momentary = window_means(running, round(MOMENTARY_S * sample_rate), hop)
    short_term = window_means(running, int(SHORT_TERM_S * sample_rate), hop)
    return Ebur128(to_lufs(momentary), to_lufs(short_term), integrated(momentary), loudness_range(short_term))
