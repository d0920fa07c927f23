"""Signals read, converted and measured block by block, in bounded memory.

`StreamResampler` resamples a signal that arrives in blocks exactly as resampling it whole would;
`to_channels` matches channel counts the way demucs does; `Levels` keeps a stream's peak and RMS,
and `is_empty` says from them whether a stem is effectively empty. The stems stage streams its
separated stems through these, the multitrack stage a source's provided stems, `sdr.sdr_files`
a reference stem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

READ_FRAMES = 1 << 17           # source frames decoded at a time
# A stem is effectively empty when its peak is below EMPTY_PEAK_DBFS, its RMS below EMPTY_RMS_DBFS,
# or its peak stands EMPTY_CREST_DB above its RMS (a few stray spikes): the stems stage's defaults.
EMPTY_PEAK_DBFS = -40.0
EMPTY_RMS_DBFS = -60.0
EMPTY_CREST_DB = 40.0


class StreamResampler:
    """scipy's polyphase resampling of a signal that arrives in blocks, equal to resampling it whole.

    Each block is resampled with enough of the previous input kept as context that the filter
    never sees the block edge; blocks start on multiples of `down`, so output samples line up.
    """

    def __init__(self, from_rate: int, to_rate: int, channels: int) -> None:
        self.identity = from_rate == to_rate
        divisor = math.gcd(from_rate, to_rate)
        self.up, self.down = to_rate // divisor, from_rate // divisor
        half = 10 * max(self.up, self.down) / self.up  # resample_poly's filter half-length, in input samples
        self.margin = self.down * math.ceil((math.ceil(half) + 2) / self.down)
        self.buffer = np.zeros((0, channels), dtype=np.float32)
        self.start = 0      # input index of buffer[0], a multiple of `down`
        self.emitted = 0    # output samples returned so far
        self.received = 0

    def _out_index(self, input_index: int) -> int:
        return -(-input_index * self.up // self.down)  # ceil

    def _resampled(self, last: int) -> np.ndarray:
        from scipy.signal import resample_poly

        y = resample_poly(self.buffer, self.up, self.down, axis=0).astype(np.float32, copy=False)
        first = self.emitted - self.start * self.up // self.down
        out = y[first:first + last - self.emitted]
        self.emitted = last
        return out

    def push(self, block: np.ndarray) -> np.ndarray:
        if self.identity:
            return block
        self.buffer = np.concatenate([self.buffer, block]) if len(self.buffer) else block
        self.received += len(block)
        safe = (self.received - self.margin) * self.up // self.down  # outputs whose filter support has arrived
        if safe <= self.emitted:
            return self.buffer[:0]
        out = self._resampled(safe)
        keep_from = max(self.start, (self.emitted * self.down // self.up - self.margin) // self.down * self.down)
        self.buffer = self.buffer[keep_from - self.start:]
        self.start = keep_from
        return out

    def finish(self) -> np.ndarray:
        if self.identity or not len(self.buffer):
            return self.buffer[:0]
        return self._resampled(self._out_index(self.received))


@dataclass
class Levels:
    """Peak and RMS of a stream, per stem."""

    peak: float = 0.0
    square_sum: float = 0.0
    count: int = 0

    def push(self, block: np.ndarray) -> None:
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
            self.square_sum += float(np.sum(np.square(block, dtype=np.float64)))
            self.count += block.size

    @property
    def rms(self) -> float:
        return math.sqrt(self.square_sum / self.count) if self.count else 0.0


def dbfs(value: float) -> float | None:
    return 20 * math.log10(value) if value > 1e-12 else None


def to_channels(block: np.ndarray, channels: int) -> np.ndarray:
    """demucs.audio.convert_audio_channels on a (frames, channels) block."""
    have = block.shape[1]
    if have == channels:
        return block
    if channels == 1:
        return block.mean(axis=1, keepdims=True)
    if have == 1:
        return np.repeat(block, channels, axis=1)
    return block[:, :channels]


def is_empty(levels: Levels, peak_dbfs: float = EMPTY_PEAK_DBFS, rms_dbfs: float = EMPTY_RMS_DBFS,
             crest_db: float = EMPTY_CREST_DB) -> bool:
    """Effectively empty: too quiet at its peak, too quiet on average, or only sparse spikes."""
    peak, rms = dbfs(levels.peak), dbfs(levels.rms)
    if peak is None or rms is None:
        return True
    return peak < peak_dbfs or rms < rms_dbfs or peak - rms > crest_db


def level_columns(levels: Levels) -> dict[str, Any]:
    peak, rms = dbfs(levels.peak), dbfs(levels.rms)
    return {"sample_peak_dbfs": peak, "rms_dbfs": rms,
            "crest_factor_db": peak - rms if peak is not None and rms is not None else None}
