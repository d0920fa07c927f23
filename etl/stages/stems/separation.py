"""Source separation of one track with demucs, in bounded memory (runs in workers).

`apply_model(mix)` on a whole track holds the track, every source of it at 32-bit float and a
weight per sample: ~1.5 GB beyond the model for ten minutes of stereo. Here the same computation
is streamed. demucs splits a track into segments of `segment` seconds every `(1 - overlap)`
segments, runs the model on each (`apply_model(..., split=False)`), and overlap-adds the outputs
with triangular weights; with `shifts` it repeats that on copies of the track delayed by random
amounts (0 to 0.5 s) and averages. This module walks the same segment grids front to back,
calling demucs's own `apply_model` on each segment with exactly the input it would get, and
emits every sample as soon as no later segment overlaps it. The output equals `apply_model` on
the whole track (to float rounding; with shifts, given the same random offsets), while memory
holds a few segments. The input is normalised by the track's mean and standard deviation as
demucs's `Separator` does (a first, decode-only pass computes them).

Stems are written as 32-bit float to temporary files while separating; a second pass folds
empty stems into `other` if asked, applies the clip mode (demucs's `rescale` needs each stem's
peak, known only at the end), encodes FLAC / WAV / MP3, measures loudness, and renames.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from etl.dsp import audio, loudness
from etl.dsp.streaming import (
    EMPTY_CREST_DB,
    EMPTY_PEAK_DBFS,
    EMPTY_RMS_DBFS,
    READ_FRAMES,
    Levels,
    StreamResampler,
    is_empty,
    level_columns,
    to_channels,
)
from etl.engine import artifacts

TEMP_SUFFIX = ".sep.w64"


# --- reading the mix ----------------------------------------------------------------------------

def _source_blocks(path: str, channels: int) -> Iterator[np.ndarray]:
    with audio.open_audio(path) as handle:
        while True:
            block = audio.read_block(handle, READ_FRAMES)
            if not len(block):
                return
            yield to_channels(block, channels)


def normalisation(path: str, channels: int) -> tuple[float, float]:
    """Mean and standard deviation of the channel-averaged mix (demucs's `ref`), streamed."""
    total = square = 0.0
    count = 0
    for block in _source_blocks(path, channels):
        ref = block.mean(axis=1, dtype=np.float64)
        total += float(ref.sum())
        square += float(np.dot(ref, ref))
        count += len(ref)
    if count < 2:
        return total / max(count, 1), 1e-8
    mean = total / count
    return mean, math.sqrt(max(square - count * mean * mean, 0.0) / (count - 1)) + 1e-8


class MixStream:
    """The normalised mix at the model's rate, readable in any increasing window (zeros outside)."""

    def __init__(self, path: str, source_rate: int, model_rate: int, channels: int, mean: float, std: float) -> None:
        self.blocks = _source_blocks(path, channels)
        self.resampler = StreamResampler(source_rate, model_rate, channels)
        self.mean, self.std = mean, std
        self.buffer = np.zeros((0, channels), dtype=np.float32)
        self.start = 0           # model-rate index of buffer[0]
        self.length: int | None = None  # known once the decoder reached the end

    def _fill(self, until: int) -> None:
        while self.length is None and self.start + len(self.buffer) < until:
            block = next(self.blocks, None)
            if block is None:
                more = self.resampler.finish()
            else:
                more = self.resampler.push(block)
            if len(more):
                more = (more - self.mean) / self.std
                self.buffer = np.concatenate([self.buffer, more.astype(np.float32)])
            if block is None:
                self.length = self.start + len(self.buffer)

    def window(self, begin: int, end: int) -> np.ndarray:
        """Samples [begin, min(end, length)) as (channels, n), zeros before 0; drops what is before `begin`."""
        self._fill(end)
        stop = end if self.length is None else min(end, self.length)
        if begin > self.start:
            self.buffer = self.buffer[begin - self.start:]
            self.start = begin
        out = np.zeros((self.buffer.shape[1], max(0, stop - begin)), dtype=np.float32)
        lo = max(begin, self.start)
        if stop > lo:
            out[:, lo - begin:stop - begin] = self.buffer[lo - self.start:stop - self.start].T
        return out

    def total(self, at_least: int) -> int | None:
        """The length if the track ends before `at_least`, else None (reading as far as needed)."""
        self._fill(at_least)
        return self.length


# --- the streamed apply_model ------------------------------------------------------------------

def model_segment(model: Any, segment: float) -> float:
    first = model.models[0] if hasattr(model, "models") else model
    allowed = float(getattr(model, "max_allowed_segment", first.segment))
    if segment and segment > allowed:
        from etl.engine.errors import ConfigError

        raise ConfigError(f"[stems] segment = {segment:g} s is longer than this model allows ({allowed:g} s)")
    return float(segment or first.segment)


def separate_stream(model: Any, mix: MixStream, *, shifts: int, overlap: float, segment: float, device: Any,
                    emit: Callable[[np.ndarray], None], rng: Any = None) -> int:
    """Feed `emit` the sources (sources, channels, n) of the whole track in order; returns its length."""
    import heapq
    import random

    import torch
    from demucs.apply import TensorChunk, apply_model

    rate = model.samplerate
    seconds = model_segment(model, segment)
    seglen = int(rate * seconds)
    stride = int((1 - overlap) * seglen)
    weight = torch.cat([torch.arange(1, seglen // 2 + 1), torch.arange(seglen - seglen // 2, 0, -1)])
    weight = (weight / weight.max()).numpy().astype(np.float32)
    max_shift = int(0.5 * rate)
    rng = rng or random
    # Each pass is demucs's split loop over the track delayed by `delay` samples: its segments sit
    # at -delay + k * stride in the track's own time.
    delays = [max_shift - rng.randint(0, max_shift) for _ in range(shifts)] if shifts else [0]
    heap = [(-d, i) for i, d in enumerate(delays)]
    heapq.heapify(heap)
    n_sources, channels = len(model.sources), model.audio_channels
    acc = np.zeros((len(delays), n_sources, channels, 0), dtype=np.float32)
    wsum = np.zeros((len(delays), 0), dtype=np.float32)
    emitted = 0  # == index of acc[..., 0]
    length: int | None = None
    while heap:
        position, index = heapq.heappop(heap)
        length = mix.total(position + seglen)
        if length is not None and position >= length:
            continue
        window_start = position - seglen
        window = mix.window(window_start, position + seglen)
        chunk = TensorChunk(torch.from_numpy(window)[None], position - window_start, seglen)
        with torch.no_grad():
            out = apply_model(model, chunk, shifts=0, split=False, overlap=overlap, segment=segment or None,
                              device=device)
        out = out[0].cpu().numpy()
        n = out.shape[-1]
        first = max(0, -position)  # a delayed pass starts before the track: that part is dropped
        begin, end = position + first - emitted, position + n - emitted
        if end > acc.shape[-1]:
            grow = end - acc.shape[-1]
            acc = np.concatenate([acc, np.zeros((*acc.shape[:-1], grow), np.float32)], axis=-1)
            wsum = np.concatenate([wsum, np.zeros((len(delays), grow), np.float32)], axis=-1)
        acc[index, ..., begin:end] += weight[first:n] * out[..., first:]
        wsum[index, begin:end] += weight[first:n]
        heapq.heappush(heap, (position + stride, index))
        upcoming = heap[0][0]
        if length is not None:
            upcoming = min(upcoming, length)
        ready = max(0, upcoming) - emitted
        if ready > 0:
            done = (acc[..., :ready] / wsum[:, None, None, :ready]).mean(axis=0)
            emit(done * mix.std + mix.mean)
            acc, wsum = acc[..., ready:], wsum[:, ready:]
            emitted += ready
    if length is not None and length > emitted:  # nothing overlaps the tail any more
        done = (acc[..., :length - emitted] / wsum[:, None, None, :length - emitted]).mean(axis=0)
        emit(done * mix.std + mix.mean)
        emitted = length
    return emitted


# --- writing stems -------------------------------------------------------------------------------

_PCM = {16: "PCM_16", 24: "PCM_24"}


def _clip(block: np.ndarray, mode: str, scale: float) -> np.ndarray:
    if mode == "rescale":
        return block * scale
    if mode == "clamp":
        return np.clip(block, -0.99, 0.99)
    if mode == "tanh":
        return np.tanh(block)
    return block


def _writer_args(fmt: str, bits: int, bitrate_kbps: int) -> tuple[str, str, dict[str, Any]]:
    """(format, subtype, options) for artifacts.write_audio."""
    if fmt == "mp3":
        # libsndfile's LAME encoder writes a gapless (LAME/Xing) header, so decoders give back the
        # exact length and alignment (lameenc's raw frames come back 1105 samples late). At a
        # constant bit rate, libsndfile picks 320 - level * 288 kbit/s (MPEG-1 rates: 32-48 kHz).
        level = min(0.99, max(0.0, (320 - bitrate_kbps) / 288))
        return "MP3", "MPEG_LAYER_III", {"bitrate_mode": "CONSTANT", "compression_level": level}
    return fmt.upper(), _PCM[bits], {}


@dataclass
class StemOptions:
    format: str = "flac"
    bits: int = 16
    mp3_bitrate_kbps: int = 128
    sample_rate: int = 0
    clip: str = "rescale"
    empty_peak_dbfs: float = EMPTY_PEAK_DBFS
    empty_rms_dbfs: float = EMPTY_RMS_DBFS
    empty_crest_db: float = EMPTY_CREST_DB
    fold_empty: bool = False


def stem_is_empty(levels: Levels, options: StemOptions) -> bool:
    return is_empty(levels, options.empty_peak_dbfs, options.empty_rms_dbfs, options.empty_crest_db)


def _temp_blocks(paths: list[Path]) -> Iterator[np.ndarray]:
    """The sum of several float temp files, block by block."""
    import soundfile as sf

    handles = [sf.SoundFile(p) for p in paths]
    try:
        while True:
            blocks = [h.read(READ_FRAMES, dtype="float32", always_2d=True) for h in handles]
            if not len(blocks[0]):
                return
            yield blocks[0] if len(blocks) == 1 else np.sum(blocks, axis=0)
    finally:
        for handle in handles:
            handle.close()


def separate_track(path: str, folder: Path, model: Any, device: Any, *, shifts: int, overlap: float,
                   segment: float, options: StemOptions, rng: Any = None) -> list[dict[str, Any]]:
    """Separate one file into `folder/<stem>.<format>`; returns one row per stem."""
    with audio.open_audio(path) as handle:
        source_rate, source_channels = handle.samplerate, handle.channels
    channels = model.audio_channels
    out_channels = 1 if source_channels == 1 else channels
    out_rate = options.sample_rate or source_rate
    mean, std = normalisation(path, channels)
    mix = MixStream(path, source_rate, model.samplerate, channels, mean, std)
    sources = list(model.sources)
    pid = os.getpid()
    temps = {s: folder / f".{s}.tmp-{pid}{TEMP_SUFFIX}" for s in sources}
    writers: dict[str, artifacts.AudioWriter] = {}
    levels = {s: Levels() for s in sources}
    resampler = StreamResampler(model.samplerate, out_rate, len(sources) * out_channels)

    def write(block: np.ndarray) -> None:  # (sources * channels, frames) at out_rate, as frames x columns
        for i, stem in enumerate(sources):
            part = block[:, i * out_channels:(i + 1) * out_channels]
            writers[stem].write(part)
            levels[stem].push(part)

    def emit(sources_block: np.ndarray) -> None:
        if out_channels == 1:
            sources_block = sources_block.mean(axis=1, keepdims=True)
        flat = sources_block.reshape(len(sources) * out_channels, -1).T
        write(resampler.push(np.ascontiguousarray(flat)))

    try:
        for s in sources:
            writers[s] = artifacts.AudioWriter(temps[s], out_rate, out_channels, "W64", "FLOAT")
        separate_stream(model, mix, shifts=shifts, overlap=overlap, segment=segment, device=device, emit=emit,
                        rng=rng)
        write(resampler.finish())
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.abandon()
        raise

    empty = {s: stem_is_empty(levels[s], options) for s in sources}
    folded = [s for s in sources if options.fold_empty and empty[s] and s != "other" and "other" in sources]
    rows = []
    try:
        for stem in sources:
            row = {"stem": stem, "format": options.format, "sample_rate": out_rate, "channels": out_channels,
                   "frames": levels[stem].count // out_channels, "empty": empty[stem], "folded_into": None,
                   "path": None, "sha256": None, "loudness_integrated_lufs": None}
            if stem in folded:
                row.update(level_columns(levels[stem]), folded_into="other")
                rows.append(row)
                continue
            inputs = [temps[stem]] + ([temps[s] for s in folded] if stem == "other" else [])
            peak = levels[stem].peak
            if len(inputs) > 1 and options.clip == "rescale":
                peak = max((float(np.max(np.abs(b))) for b in _temp_blocks(inputs)), default=0.0)
            scale = 1.0 / max(1.01 * peak, 1.0)
            meter = loudness.meter_if_installed(out_rate, out_channels)
            written = Levels()

            def clipped(inputs: list[Path] = inputs, scale: float = scale, meter: Any = meter,
                        written: Levels = written) -> Iterator[np.ndarray]:
                for block in _temp_blocks(inputs):
                    block = _clip(block, options.clip, scale)
                    written.push(block)
                    if meter is not None:
                        meter.push(block)
                    yield block

            fmt, subtype, extra = _writer_args(options.format, options.bits, options.mp3_bitrate_kbps)
            final, digest = artifacts.write_audio(folder, stem, clipped(), out_rate, fmt, subtype,
                                                  suffix=options.format, channels=out_channels, **extra)
            row.update(level_columns(written), path=str(final), sha256=digest,
                       loudness_integrated_lufs=meter.integrated() if meter is not None else None)
            rows.append(row)
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    return rows

