"""beats (per track): beat and downbeat grid with madmom.

One network pass serves both: madmom's downbeat RNN outputs beat and downbeat activations, and
its DBN downbeat tracker turns them into beats with their position in the bar. Long tracks are
processed in segments (with margins on both sides that are decoded but not kept), so memory
stays bounded on an hour-long mix; a track shorter than one segment is one plain madmom call.
Silence, noise and tracks too short for a grid are skipped with the reason, not failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.dsp import audio, madmom_models, sourcefile
from etl.dsp.tempo import tempo_from_beats
from etl.engine.config import not_hashed, params_hash, ranged
from etl.engine.errors import ConfigError, SkipItem
from etl.engine.pool import Outcome
from etl.engine.resources import execute, registered
from etl.engine.stage import Read, Stage
from etl.engine.tables import rows_like
from etl.engine.worker_model import WorkerModel

if TYPE_CHECKING:
    import duckdb
    import numpy as np

MADMOM_RATE = 44100  # the rate madmom's networks were trained at
FPS = 100            # activation frames per second of madmom's beat networks


@dataclass(frozen=True)
class Params:
    meters: tuple[int, ...] = ranged((3, 4), 2, 16)  # beats per bar the DBN may choose from
    min_bpm: float = ranged(55.0, 10, 400)
    max_bpm: float = ranged(215.0, 10, 400)
    transition_lambda: float = ranged(100.0, 0.001, 10000)  # DBN tempo-change penalty (higher: steadier)
    min_duration_s: float = ranged(5.0, 0, 86400)  # shorter tracks are skipped
    silence_dbfs: float = ranged(-60.0, -200, 0)  # quieter tracks (RMS) are skipped
    min_pulse: float = ranged(0.1, 0, 2)  # mean activation at the beats; below: "no clear pulse"
    steady_tolerance: float = ranged(0.04, 0, 1)  # an inter-beat interval within ±4 % of the median is on tempo
    steady_fraction: float = ranged(0.8, 0, 1)  # this share on tempo makes the tempo "steady"
    segment_s: float = ranged(60.0, 5, 86400)  # long tracks are tracked in segments of this length...
    margin_s: float = ranged(10.0, 0, 3600)  # ...each decoded with this much context on both sides
    # "batched": madmom's networks stepped together (etl/beatnet.py, ~4x faster, same activations
    # to float32 rounding); "madmom": madmom's own RNNDownBeatProcessor.
    network: str = not_hashed("batched")

    def __post_init__(self) -> None:
        if self.min_bpm >= self.max_bpm:
            raise ConfigError(f"[beats] min_bpm ({self.min_bpm:g}) must be below max_bpm ({self.max_bpm:g})")


@dataclass
class Grid:
    beat_times_s: list[float]
    beat_positions: list[int]
    pulse_strength: float


INSTALL = madmom_models.INSTALL
DOWNBEATS = {"downbeats/2016/downbeats_blstm_[1-8].pkl": 8}


def downbeat_model_files() -> list[str] | None:
    """madmom's 8 downbeat BLSTMs, found where madmom.models.DOWNBEATS_BLSTM looks, without
    importing madmom. None when madmom is not installed."""
    return madmom_models.model_files(next(iter(DOWNBEATS)))


def unavailable(params: Params) -> str | None:
    return madmom_models.unavailable("downbeat", DOWNBEATS)


def models(params: Params, checksums: bool = True) -> list[dict[str, Any]]:
    """madmom's bundled downbeat networks (the ensemble of 8 BLSTMs this stage evaluates)."""
    return [madmom_models.model_row("madmom DOWNBEATS_BLSTM (8 networks) + DBN downbeat tracker", DOWNBEATS,
                                    unavailable(params), checksums)]


def _processor_settings(params: Params) -> tuple[Any, ...]:
    return (params.network, tuple(params.meters), params.min_bpm, params.max_bpm, params.transition_lambda)


def _build_processors(params: Params) -> tuple[Any, Any]:
    """The 8 downbeat networks and the DBN's state space (built once per worker: seconds)."""
    from madmom.features.downbeats import (
        DBNDownBeatTrackingProcessor,
        RNNDownBeatProcessor,
    )

    from etl.stages.beats.beatnet import downbeat_processor

    network = downbeat_processor() if params.network == "batched" else RNNDownBeatProcessor()
    tracker = DBNDownBeatTrackingProcessor(
        beats_per_bar=list(params.meters), min_bpm=params.min_bpm, max_bpm=params.max_bpm,
        transition_lambda=params.transition_lambda, fps=FPS,
    )
    return network, tracker


_processors = WorkerModel(_build_processors, _processor_settings)


def init_worker(params: Params) -> None:
    _processors.get(params)


def loaded(params: Params) -> tuple[Any, Any]:
    """The networks and tracker for `params` (see WorkerModel: also without an initializer)."""
    return _processors.get(params)


def track_segment(mono: np.ndarray, sample_rate: int, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """madmom on one stretch of audio: (beats as [time_s, position] rows, activations)."""
    from madmom.audio.signal import Signal

    network, tracker = loaded(params)
    signal = Signal(audio.resample(mono, sample_rate, MADMOM_RATE), sample_rate=MADMOM_RATE, num_channels=1)
    activations = network(signal)
    return tracker(activations), activations


def _segments(duration_s: float, segment_s: float) -> list[tuple[float, float]]:
    """Spans to keep; a short tail joins the previous span instead of standing alone."""
    count = max(1, math.ceil(duration_s / segment_s - 0.25))
    edges = [min(duration_s, i * segment_s) for i in range(count)] + [duration_s]
    return list(zip(edges[:-1], edges[1:]))


def find_beats(path: str, duration_s: float, sample_rate: int, params: Params) -> Grid:
    import numpy as np

    times: list[float] = []
    positions: list[int] = []
    pulses: list[float] = []
    square_sum, sample_count = 0.0, 0
    for keep_start, keep_end in _segments(duration_s, params.segment_s):
        start = max(0.0, keep_start - params.margin_s)
        end = min(duration_s, keep_end + params.margin_s)
        mono, rate = audio.read_mono(path, int(start * sample_rate), int(math.ceil((end - start) * sample_rate)))
        square_sum += float(np.dot(mono, mono))
        sample_count += len(mono)
        if len(mono) == 0 or _dbfs(float(np.dot(mono, mono)) / len(mono)) < params.silence_dbfs:
            continue  # a silent stretch has no beats; do not spend the network on it
        beats, activations = track_segment(mono, rate, params)
        if len(beats) == 0:
            continue
        absolute = beats[:, 0] + start
        last = keep_end >= duration_s
        keep = (absolute >= keep_start) & ((absolute < keep_end) | last)
        frames = np.clip(np.round(beats[keep, 0] * FPS).astype(int), 0, len(activations) - 1)
        times.extend(absolute[keep].tolist())
        positions.extend(beats[keep, 1].astype(int).tolist())
        pulses.extend(activations[frames].sum(axis=1).tolist())
    if sample_count == 0 or _dbfs(square_sum / sample_count) < params.silence_dbfs:
        raise SkipItem(f"silence: the track's level is below {params.silence_dbfs:g} dBFS RMS")
    pulse = float(np.mean(pulses)) if pulses else 0.0
    if len(times) < 4:
        raise SkipItem(f"no beat grid: only {len(times)} beats found")
    if pulse < params.min_pulse:
        raise SkipItem(f"no clear pulse (mean beat activation {pulse:.2f} < {params.min_pulse:g}): "
                       "noise, a drone or free-time music")
    return Grid(times, positions, pulse)


def _dbfs(mean_square: float) -> float:
    return 10 * math.log10(mean_square) if mean_square > 0 else -math.inf


def summarise(grid: Grid, params: Params) -> dict[str, Any]:
    """Tempo and meter from the beat grid (tempo_from_beats: a fit when steady, else the median)."""
    import numpy as np

    times = np.asarray(grid.beat_times_s)
    positions = np.asarray(grid.beat_positions)
    intervals = np.diff(times)
    median_interval = float(np.median(intervals))
    on_tempo = float(np.mean(np.abs(intervals / median_interval - 1) <= params.steady_tolerance))
    bpm, method = tempo_from_beats(times, params.steady_tolerance, params.steady_fraction)
    downbeats = np.flatnonzero(positions == 1)
    # beats per bar: the position reached before each following downbeat
    bar_lengths = [int(positions[i - 1]) for i in downbeats[1:]] or [int(positions.max())]
    meter = int(np.bincount(bar_lengths).argmax())
    return {
        "beat_times_s": [round(t, 4) for t in times.tolist()],
        "beat_positions": positions.astype(int).tolist(),
        "downbeat_times_s": [round(t, 4) for t in times[downbeats].tolist()],
        "meter": meter,
        "bpm": bpm,
        "bpm_method": method,
        "bpm_confidence": on_tempo,
        "tempo_steady": on_tempo >= params.steady_fraction,
        "pulse_strength": grid.pulse_strength,
        "n_beats": int(len(times)),
        "n_bars": int(len(downbeats)),
    }


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    if item["duration_s"] < params.min_duration_s:
        raise SkipItem(f"too short for a beat grid ({item['duration_s']:.1f} s < {params.min_duration_s:g} s)")
    with sourcefile.unchanged(item["source"]) as path:
        return summarise(find_beats(path, item["duration_s"], item["sample_rate"], params), params)


def write(con: duckdb.DuckDBPyConnection, outcomes: list[Outcome], params: Params) -> None:
    done = [{"track_id": o.item_id, **o.result} for o in outcomes if o.status == "done"]
    with registered(con, grids=rows_like(con, "beat_grids", done)):
        execute(con, "stages/beats/write.sql", "insert_grids", {"params_hash": params_hash(params)})


STAGE = Stage(
    name="beats",
    description="beat and downbeat grid, meter and BPM with madmom",
    process=process,
    write=write,
    reads=(Read("ingest", "track_id"), Read("multitrack", "track_id", optional=True)),
    presence=True,
    Params=Params,
    init_worker=init_worker,
    unavailable=unavailable,
    models=models,
    batch_size=8,
    version=2,  # 2: tempo from a least-squares fit of the beat times on steady grids (bpm_method)
)
