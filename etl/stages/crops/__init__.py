"""crops (per track, yields many): beat-aligned (or sequential) training crops and their stems.

Beat-aligned crops start on downbeats at phrase boundaries (every `bars_multiple` bars, counted
from the track's first downbeat) and span `bars` bars, or `seconds` / `samples` snapped to the
nearest downbeat. Sequential crops need no grid; where a grid exists they carry its beats too.
Each track is decoded once, front to back, holding at most one crop's audio in memory.

Files live in the track's folder, <data_dir>/crops/<track_id[:2]>/<track_id>/, named after the
crop and their content (<crop_id>[.<stem>]-<sha256[:12]>.<format>, see etl/engine/artifacts.py): a
changed crop is a new file, and the engine removes superseded ones after the commit that
supersedes them. A crop id hashes the track, the span and the crop parameters.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.dsp import audio, sourcefile, tempo
from etl.engine import artifacts
from etl.engine.config import params_hash, ranged
from etl.engine.errors import ConfigError, SkipItem
from etl.engine.stage import Read, Stage
from etl.engine.tables import Rows, Write

if TYPE_CHECKING:
    import numpy as np

_FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III")}


@dataclass(frozen=True)
class Params:
    mode: str = "beat-aligned"       # beat-aligned | sequential
    bars: int = ranged(8, 1, 1024)   # crop length in bars (beat-aligned)
    seconds: float = ranged(0.0, 0, 86400)  # or in seconds (snapped to a downbeat when beat-aligned)
    samples: int = ranged(0, 0, 2**40)  # or in samples of the source
    bars_multiple: int = ranged(4, 1, 1024)  # beat-aligned crops start every N bars (whole phrases)
    overlap: float = ranged(0.0, 0, 0.99)  # 0 (back to back) or 0.5
    min_fraction: float = ranged(0.75, 0, 1)  # a crop shorter than this share of the target is dropped
    fade_ms: float = ranged(10.0, 0, 10000)  # raised-cosine fade at both ends
    silence_dbfs: float = ranged(-72.0, -200, 0)  # leading audio quieter than this is skipped
    format: str = "flac"             # flac | wav | mp3
    compression_level: float = ranged(0.5, 0, 1)  # 0..1: FLAC effort, or MP3 quality (0 = highest bit rate)
    sample_rate: int = ranged(0, 8000, 384000, also=(0,))  # 0: the source's rate; else resampled (polyphase)
    skip_stems: tuple[str, ...] = () # stems not cut beside the mix crop, e.g. ["vocals"]

    def __post_init__(self) -> None:
        if self.mode not in ("beat-aligned", "sequential"):
            raise ConfigError(f"[crops] mode must be 'beat-aligned' or 'sequential', not {self.mode!r}")
        if self.format not in _FORMATS:
            raise ConfigError(f"[crops] format must be one of {', '.join(_FORMATS)}, not {self.format!r}")
        if not 0 <= self.overlap < 1:
            raise ConfigError("[crops] overlap must be at least 0 and below 1 (e.g. 0 or 0.5)")
        if self.bars < 1 or self.bars_multiple < 1 or self.seconds < 0 or self.samples < 0:
            raise ConfigError("[crops] bars and bars_multiple must be at least 1; seconds and samples not negative")


@dataclass(frozen=True)
class Span:
    start: int        # samples of the source
    end: int
    n_bars: int | None


SEQUENTIAL_DEFAULT_S = 10.0  # sequential crops when neither seconds nor samples is set


def first_sound(path: str, silence_dbfs: float, block: int = 1024) -> int:
    """Index of the first block louder than `silence_dbfs` (RMS); reads only the leading silence."""
    import numpy as np

    threshold = 10 ** (silence_dbfs / 10)
    position = 0
    with audio.open_audio(path) as handle:
        while True:
            data = audio.read_block(handle, block * 64)
            if len(data) == 0:
                return position
            mono = data.mean(axis=1)
            usable = len(mono) // block * block or len(mono)
            energy = (mono[:usable].reshape(-1, min(block, usable)) ** 2).mean(axis=1)
            loud = np.flatnonzero(energy > threshold)
            if len(loud):
                return position + int(loud[0]) * min(block, usable)
            position += len(data)


def plan_spans(total: int, rate: int, start_at: int, downbeats_s: list[float], params: Params) -> list[Span]:
    """Where the crops go, in source samples."""
    if params.mode == "sequential":
        length = params.samples or int(round((params.seconds or SEQUENTIAL_DEFAULT_S) * rate))
        hop = max(1, int(round(length * (1 - params.overlap))))
        spans = []
        for start in range(start_at, total, hop):
            end = min(start + length, total)
            if end - start < params.min_fraction * length:
                break
            spans.append(Span(start, end, None))
        return spans
    if len(downbeats_s) < 2:
        raise SkipItem("beat-aligned crops need a beat grid with at least two downbeats")
    downbeats = [int(round(t * rate)) for t in downbeats_s]
    bar = float(sorted(b - a for a, b in zip(downbeats, downbeats[1:]))[len(downbeats) // 2 - 1])
    tolerance = int(0.01 * rate)  # a downbeat a frame before the first sound still counts
    spans = []
    if params.samples or params.seconds:
        target = params.samples or int(round(params.seconds * rate))
        bars_per_crop = max(1, round(target / bar))
    else:
        bars_per_crop = params.bars
        target = int(round(bars_per_crop * bar))
    step = max(params.bars_multiple,
               round(bars_per_crop * (1 - params.overlap) / params.bars_multiple) * params.bars_multiple)
    index = next((i for i, d in enumerate(downbeats) if d >= start_at - tolerance), None)
    if index is None:
        return []
    index = math.ceil(index / params.bars_multiple) * params.bars_multiple
    while index < len(downbeats):
        start = downbeats[index]
        if params.samples or params.seconds:  # the downbeat nearest to the requested length
            candidates = downbeats[index + 1:] or [start + int(bars_per_crop * bar)]
            end = min(candidates, key=lambda d: abs(d - start - target))
            n_bars = downbeats.index(end) - index if end in downbeats else bars_per_crop
        elif index + bars_per_crop < len(downbeats):
            end, n_bars = downbeats[index + bars_per_crop], bars_per_crop
        else:  # past the last tracked downbeat: extend by the median bar
            end, n_bars = start + target, bars_per_crop
        end = min(end, total)
        if end - start < params.min_fraction * target:
            break
        spans.append(Span(start, end, n_bars))
        index += step
    return spans


class SpanReader:
    """Reads spans in increasing order, decoding each sample once (overlaps come from a buffer)."""

    def __init__(self, path: str) -> None:
        import numpy as np

        self._np = np
        self._handle = audio.open_audio(path)
        self._buffer = np.zeros((0, self._handle.channels), dtype="float32")
        self._buffer_start = 0
        self._position = 0  # where the decoder is

    def read(self, start: int, end: int) -> np.ndarray:
        np = self._np
        if start >= self._buffer_start + len(self._buffer):
            self._buffer = self._buffer[:0]
            if start != self._position:
                self._handle.seek(start)
                self._position = start
            self._buffer_start = start
        else:
            self._buffer = self._buffer[start - self._buffer_start:]
            self._buffer_start = start
        missing = end - (self._buffer_start + len(self._buffer))
        if missing > 0:
            more = audio.read_block(self._handle, missing)
            self._position += len(more)
            self._buffer = np.concatenate([self._buffer, more]) if len(self._buffer) else more
        return self._buffer[: end - start]

    def close(self) -> None:
        self._handle.close()


def fade(block: np.ndarray, rate: int, fade_ms: float) -> np.ndarray:
    import numpy as np

    length = min(len(block) // 2, int(rate * fade_ms / 1000))
    if length <= 0:
        return block
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, length, dtype=np.float32)))[:, None]
    out = block.copy()
    out[:length] *= ramp
    out[-length:] *= ramp[::-1]
    return out


def write_atomic(folder: Path, name: str, block: np.ndarray, rate: int, params: Params) -> tuple[Path, str]:
    """Write to a temporary name in the folder, then rename it after its content: (path, sha256)."""
    container, subtype = _FORMATS[params.format]
    extra = {"compression_level": params.compression_level} if params.format in ("flac", "mp3") else {}
    return artifacts.write_audio(folder, name, block, rate, container, subtype, suffix=params.format, **extra)


def _span_audio(reader: SpanReader, span: Span, rate: int, file_rate: int, out_rate: int, frames: int) -> np.ndarray:
    """A span (in source samples) of a file at `file_rate` (a stem may have its own), at out_rate,
    exactly `frames` long so that stem crops line up with their mix crop."""
    import numpy as np

    if file_rate == rate:
        block = reader.read(span.start, span.end)
    else:
        block = reader.read(span.start * file_rate // rate, -(-span.end * file_rate // rate))
    block = audio.resample(block, file_rate, out_rate)
    if len(block) < frames:
        block = np.concatenate([block, np.zeros((frames - len(block), block.shape[1]), block.dtype)])
    return block[:frames]


def _channels(path: Path) -> int:
    import soundfile as sf

    return sf.info(str(path)).channels


def crop_id(track_id: str, span: Span, hashed_params: str) -> str:
    """The same span of the same audio cut with the same parameters is the same crop."""
    return hashlib.sha256(f"{track_id}:{span.start}:{span.end}:{hashed_params}".encode()).hexdigest()[:20]


def _inside(times: list[float], positions: list[int], start_s: float, end_s: float) -> tuple[list, list]:
    pairs = [(round(t - start_s, 4), p) for t, p in zip(times, positions) if start_s <= t < end_s]
    return [t for t, _ in pairs], [p for _, p in pairs]


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    # Provided stems that are the user's own files are checked like the mix (rendered ones are ours).
    stem_files = [s["file"] for s in item.get("stems") or [] if s.get("file")]
    with sourcefile.unchanged(item["source"]):
        for stem_file in stem_files:
            sourcefile.check(stem_file)
        result = cut(item, params)
        for stem_file in stem_files:
            sourcefile.check(stem_file)
        return result


def cut(item: dict[str, Any], params: Params) -> dict[str, Any]:
    """The crops of one track (and of its stems), written into its artifact folder."""
    import numpy as np

    track_id, rate = item["item_id"], item["sample_rate"]
    folder = Path(item["artifact_dir"])
    beat_times = list(item.get("beat_times_s") or [])
    positions = [int(p) for p in (item.get("beat_positions") or [])]
    if params.mode == "beat-aligned" and not beat_times:
        why = item.get("beats_reason") or f"the beats stage has not run on it ({item.get('beats_status') or 'pending'})"
        raise SkipItem(f"no beat grid for beat-aligned crops: {why}")
    total = item["frames"] or int(item["duration_s"] * rate)
    start_at = first_sound(item["path"], params.silence_dbfs)
    downbeats = [t for t, p in zip(beat_times, positions) if p == 1]
    spans = plan_spans(total, rate, start_at, downbeats, params)
    if not spans:
        raise SkipItem("no crop fits: the audio after the leading silence is shorter than one crop")

    hashed = params_hash(params)
    out_rate = params.sample_rate or rate
    folder.mkdir(parents=True, exist_ok=True)
    stems = [s for s in item.get("stems") or [] if s["stem"] not in params.skip_stems]
    readers = {"mix": SpanReader(item["path"]), **{s["stem"]: SpanReader(s["path"]) for s in stems}}
    rates = {"mix": rate, **{s["stem"]: s.get("sample_rate") or rate for s in stems}}
    # Mix crops already cut (stems added later) are kept, not recut: the same id is the same audio.
    existing = {c["crop_id"]: c for c in item.get("existing_crops") or []
                if c["sha256"] and c.get("source_peak_dbfs") is not None and os.path.isfile(c["path"])}
    crops, stem_rows = [], []
    try:
        for index, span in enumerate(spans):
            cid = crop_id(track_id, span, hashed)
            start_s, end_s = span.start / rate, span.end / rate
            rel_beats, rel_positions = _inside(beat_times, positions, start_s, end_s)
            frames = -(-(span.end - span.start) * out_rate // rate)  # the crop's length at out_rate
            for name, reader in readers.items():
                if name == "mix" and cid in existing:
                    path, mix_sha256 = Path(existing[cid]["path"]), existing[cid]["sha256"]
                    channels, peak = _channels(path), existing[cid]["source_peak_dbfs"]
                    continue
                block = _span_audio(reader, span, rate, rates[name], out_rate, frames)
                if name == "mix":  # float sources can exceed full scale; the crop's encoder clips there
                    peak = 20 * math.log10(max(float(np.max(np.abs(block))) if block.size else 0.0, 1e-10))
                block = fade(block, out_rate, params.fade_ms)
                written, digest = write_atomic(folder, cid if name == "mix" else f"{cid}.{name}", block,
                                               out_rate, params)
                if name != "mix":
                    stem_rows.append({"crop_id": cid, "stem": name, "track_id": track_id, "path": str(written),
                                      "format": params.format, "sample_rate": out_rate,
                                      "channels": int(block.shape[1]), "sha256": digest})
                else:
                    path, mix_sha256, channels = written, digest, int(block.shape[1])
            # The grid's tempo over the crop's own beats (the track's where it has fewer than 3).
            bpm, bpm_method = (tempo.tempo_from_beats(rel_beats, tempo.TOLERANCE, tempo.STEADY_FRACTION)
                               if len(rel_beats) >= 3 else (item.get("bpm"), "track" if item.get("bpm") else None))
            crops.append({
                "crop_id": cid, "track_id": track_id, "crop_index": index, "mode": params.mode,
                "start_sample": span.start, "end_sample": span.end, "start_s": start_s, "end_s": end_s,
                "duration_s": end_s - start_s, "n_bars": span.n_bars, "n_beats": len(rel_beats),
                "bpm": bpm, "bpm_method": bpm_method,
                "source_peak_dbfs": round(peak, 4), "over_full_scale": peak > 0.0,
                "beat_times_s": rel_beats, "beat_positions": rel_positions,
                "downbeat_times_s": [t for t, p in zip(rel_beats, rel_positions) if p == 1],
                "path": str(path), "format": params.format, "sample_rate": out_rate, "channels": channels,
                "sha256": mix_sha256,
            })
    finally:
        for reader in readers.values():
            reader.close()
    return {"crops": crops, "stems": stem_rows}


write = Write(rows=(Rows("new_crops", "crops", lambda o, params: [
                  {**row, "path": artifacts.store_path(row["path"])} for row in o.result["crops"]]),
                    Rows("new_crop_stems", "crop_stems", lambda o, params: [
                  {**row, "path": artifacts.store_path(row["path"])} for row in o.result["stems"]])),
              statements=("insert_crops", "insert_stems"))


def files(result: dict[str, Any]) -> list[str]:
    return [row["path"] for row in (*result["crops"], *result["stems"])]


def outputs(result: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Per crop: its row and its stem crops' rows, content hashes included (paths only repeat them)."""
    stems: dict[str, list[dict[str, Any]]] = {}
    for row in result["stems"]:
        stems.setdefault(row["crop_id"], []).append({k: v for k, v in row.items() if k != "path"})
    return {row["crop_id"]: [{k: v for k, v in row.items() if k != "path"}, stems.get(row["crop_id"], [])]
            for row in result["crops"]}


STAGE = Stage(
    name="crops",
    description="beat-aligned training crops (and their stem crops) as audio files",
    process=process,
    write=write,
    reads=(Read("ingest", "track_id"), Read("beats", "track_id"), Read("stems", "track_id"),
           Read("multitrack", "track_id", optional=True), Read("multitrack", "stems_key", optional=True)),
    presence=True,
    outputs=outputs,
    files=files,
    Params=Params,
    batch_size=16,
    artifacts=True,
    version=2,  # 2: crop BPM fitted to its beats (bpm_method); source peak and over_full_scale recorded
)
