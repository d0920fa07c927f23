"""Reading and rendering a multitrack group's audio (runs in workers), in bounded memory.

Stems are read block by block, converted to one rate (scipy's polyphase filter, streamed: equal to
resampling them whole) and one channel count, summed where a mix or a folded stem is the sum of
several files, and written as FLAC under a temporary name, renamed after its content
(etl/engine/artifacts.py). NI Stems files (MP4, AAC or ALAC streams) are decoded with PyAV.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from etl.dsp import audio, loudness
from etl.dsp.streaming import READ_FRAMES, Levels, StreamResampler, is_empty, level_columns, to_channels
from etl.engine import artifacts
from etl.engine.errors import BadInput, SkipItem

_PCM = {16: "PCM_16", 24: "PCM_24"}


class BlockReader:
    """A decoded stream at a fixed rate and channel count, read `n` frames at a time."""

    def __init__(self, blocks: Iterator[np.ndarray], channels: int) -> None:
        self._blocks, self._channels = blocks, channels
        self._buffer = np.zeros((0, channels), dtype=np.float32)
        self.done = False

    def read(self, frames: int) -> np.ndarray:
        parts, have = [self._buffer], len(self._buffer)
        while have < frames and not self.done:
            block = next(self._blocks, None)
            if block is None:
                self.done = True
                break
            parts.append(to_channels(block, self._channels))
            have += len(block)
        joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._buffer = joined[frames:]
        return joined[:frames]


class Measure:
    """A stem file's levels and loudness, taken from its blocks as they are decoded (at its own
    rate, before any resampling), so a stem read to render a sum is not decoded again to measure it."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate, self.channels = rate, channels
        self.levels, self._meter = Levels(), loudness.meter_if_installed(rate, channels)

    def push(self, block: np.ndarray) -> None:
        self.levels.push(block)
        if self._meter is not None:
            self._meter.push(block)

    def result(self) -> tuple[Levels, float | None, int, int, int]:
        """(levels, LUFS, frames, rate, channels)."""
        lufs = self._meter.integrated() if self._meter is not None else None
        return self.levels, lufs, self.levels.count // self.channels, self.rate, self.channels


def header(path: str) -> tuple[int, int]:
    """(rate, channels) from a file's header, without decoding it."""
    with audio.open_audio(path) as handle:
        return handle.samplerate, handle.channels


def file_blocks(path: str, rate: int, measure: Measure | None = None) -> Iterator[np.ndarray]:
    """A file's audio (libsndfile) at `rate`, block by block; `measure` sees each block as decoded."""
    with audio.open_audio(path) as handle:
        resampler = StreamResampler(handle.samplerate, rate, handle.channels)
        while len(block := audio.read_block(handle, READ_FRAMES)):
            if measure is not None:
                measure.push(block)
            yield resampler.push(block)
        yield resampler.finish()


def sum_blocks(readers: list[BlockReader], channels: int) -> Iterator[np.ndarray]:
    """The sum of several streams, the shorter ones padded with silence (to the longest)."""
    while True:
        blocks = [r.read(READ_FRAMES) for r in readers]
        longest = max(len(b) for b in blocks)
        if longest == 0:
            return
        total = np.zeros((longest, channels), dtype=np.float32)
        for block in blocks:
            total[:len(block)] += block
        yield total


@dataclass
class Written:
    """What rendering one file produced and measured."""

    path: str
    sha256: str
    frames: int
    sample_rate: int
    channels: int
    clipped: int                      # samples beyond full scale, clipped there
    levels: Levels = field(default_factory=Levels)
    loudness_lufs: float | None = None


def write_flac(folder: Path, name: str, blocks: Iterator[np.ndarray], rate: int, channels: int,
               bits: int) -> Written:
    """Render blocks to `<folder>/<name>-<sha12>.flac` (a temporary name first), measuring as it goes.
    FLAC holds integers: what lies beyond full scale is clipped there, and counted."""
    levels, counted = Levels(), {"clipped": 0}
    meter = loudness.meter_if_installed(rate, channels)

    def measured() -> Iterator[np.ndarray]:
        for block in blocks:
            levels.push(block)
            if meter is not None:
                meter.push(block)
            over = np.abs(block) > 1.0
            if over.any():
                counted["clipped"] += int(over.sum())
                block = np.clip(block, -1.0, 1.0)
            yield block

    path, digest = artifacts.write_audio(folder, name, measured(), rate, "FLAC", _PCM[bits], suffix="flac",
                                         channels=channels)
    return Written(str(path), digest, levels.count // channels, rate, channels, counted["clipped"], levels,
                   meter.integrated() if meter is not None else None)


def measure(path: str) -> tuple[Levels, float | None, int, int, int]:
    """A provided stem file's levels and loudness, decoded once: (levels, LUFS, frames, rate, channels)."""
    with audio.open_audio(path) as handle:
        measured = Measure(handle.samplerate, handle.channels)
        while len(block := audio.read_block(handle, READ_FRAMES)):
            measured.push(block)
    return measured.result()


def stem_columns(levels: Levels, lufs: float | None) -> dict[str, Any]:
    """track_stems' measurement columns; `empty` by the stems stage's default thresholds."""
    return {**level_columns(levels), "loudness_integrated_lufs": lufs, "empty": is_empty(levels)}


def clip_note(clipped: int, levels: Levels) -> str | None:
    if not clipped:
        return None
    return f"{clipped} samples beyond full scale clipped (peak {20 * math.log10(levels.peak):+.2f} dBFS)"


# --- NI Stems ------------------------------------------------------------------------------------

def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the MP4 boxes in data[start:end]."""
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[start + 8:start + 16])[0], 16
        elif size == 0:
            size = end - start
        if size < header:
            return
        yield kind, start + header, min(start + size, end)
        start += size


def ni_stem_names(path: str) -> list[str] | None:
    """The stem names in an NI Stems file's `stem` atom (moov/udta/stem, JSON), or None.

    Only the `moov` box is read (its size from the top-level box headers), not the audio."""
    with open(path, "rb") as handle:
        position = 0
        while True:
            handle.seek(position)
            head = handle.read(16)
            if len(head) < 8:
                return None
            size, kind = struct.unpack(">I4s", head[:8])
            if size == 1:
                size = struct.unpack(">Q", head[8:16])[0]
            if kind == b"moov":
                handle.seek(position)
                moov = handle.read(size)
                break
            if size < 8:
                return None
            position += size
    for kind, start, end in _boxes(moov, 8, len(moov)):
        if kind != b"udta":
            continue
        for inner, s, e in _boxes(moov, start, end):
            if inner == b"stem":
                try:
                    names = [str(stem["name"]) for stem in json.loads(moov[s:e].decode("utf-8"))["stems"]]
                except (ValueError, KeyError, TypeError):
                    return None
                return names or None
    return None


def ni_layout(path: str) -> tuple[int, int, int]:
    """(rate, channels, number of audio streams) of an NI Stems file: stream 0 is the mix."""
    import importlib.util

    if importlib.util.find_spec("av") is None:
        raise SkipItem("NI Stems files are decoded with PyAV, which is not installed: "
                       "pip install 'music-etl[multitrack]'")
    import av

    try:
        with av.open(path) as container:
            streams = list(container.streams.audio)
            if len(streams) < 2:
                raise BadInput(f"an NI Stems file needs a mix and stems as audio streams; it has {len(streams)}")
            return streams[0].rate, max(s.channels for s in streams), len(streams)
    except av.error.FFmpegError as error:
        raise BadInput(f"cannot open the NI Stems file: {error}") from None


def ni_stream_blocks(path: str, stream: int, rate: int, channels: int) -> Iterator[np.ndarray]:
    """One audio stream of an NI Stems file (PyAV), as float32 blocks (frames x channels) at `rate`.
    Each stream is decoded on its own pass: memory holds one packet's audio, not the track."""
    import av

    layout = "stereo" if channels == 2 else "mono"
    try:
        with av.open(path) as container:
            source = container.streams.audio[stream]
            resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)
            for packet in container.demux(source):
                for frame in packet.decode():
                    for converted in resampler.resample(frame):
                        yield converted.to_ndarray().reshape(-1, channels)
            for converted in resampler.resample(None):
                yield converted.to_ndarray().reshape(-1, channels)
    except av.error.FFmpegError as error:
        raise BadInput(f"cannot decode stream {stream} of the NI Stems file: {error}") from None
