"""beats (per track): beat and downbeat grid with madmom.

One network pass serves both: madmom's downbeat RNN outputs beat and downbeat activations, and
its DBN downbeat tracker turns them into beats with their position in the bar. Long tracks are
decoded in segments (with margins on both sides that are decoded but not kept), so memory stays
bounded on an hour-long mix; the network runs each segment once plus a right margin, its forward
state carried from the previous segment (_Activations). A track shorter than one segment is one
pass. What runs is madmom's, made faster without changing its results: the pre-processing
vectorised (etl/dsp/spectra.py), the 8 networks stepped together (beatnet.py), the Viterbi decoding
compiled (viterbi.py). Silence, noise and tracks too short for a grid are skipped with the
reason, not failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.dsp import audio, madmom_models, sourcefile
from etl.dsp.tempo import tempo_from_beats
from etl.engine.config import not_hashed, ranged
from etl.engine.errors import ConfigError, SkipItem
from etl.engine.stage import Read, Reason, Stage
from etl.engine.tables import Rows, Write
from etl.engine.worker_model import WorkerModel

if TYPE_CHECKING:
    import numpy as np

MADMOM_RATE = 44100  # the rate madmom's networks were trained at
FPS = 100            # activation frames per second of madmom's beat networks
HOP = MADMOM_RATE // FPS  # samples per activation frame


@dataclass(frozen=True)
class Params:
    meters: tuple[int, ...] = ranged((3, 4), 2, 16, min_items=1)  # beats per bar the DBN may choose from
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
    # "batched": madmom's pre-processing and networks vectorised (etl/dsp/spectra.py, beatnet.py: bench/beats.py times
    # them; same activations to float32 rounding); "madmom": madmom's own RNNDownBeatProcessor.
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
    import importlib.util

    problem = madmom_models.unavailable("downbeat", DOWNBEATS)
    if problem is None and importlib.util.find_spec("numba") is None:
        return Reason("numba is not installed (the beat tracker's compiled decoding): pip install 'music-etl[beats]'",
                      "numba not installed — `etl models` says how")
    return problem


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

    from etl.stages.beats.beatnet import DownbeatNetwork
    from etl.stages.beats.viterbi import compile_tracker

    network = DownbeatNetwork() if params.network == "batched" else RNNDownBeatProcessor()
    tracker = DBNDownBeatTrackingProcessor(
        beats_per_bar=list(params.meters), min_bpm=params.min_bpm, max_bpm=params.max_bpm,
        transition_lambda=params.transition_lambda, fps=FPS,
    )
    return network, compile_tracker(tracker)  # madmom's Viterbi path, compiled (viterbi.py)


_processors = WorkerModel(_build_processors, _processor_settings)


def init_worker(params: Params) -> None:
    _processors.get(params)


def loaded(params: Params) -> tuple[Any, Any]:
    """The networks and tracker for `params` (see WorkerModel: also without an initializer)."""
    return _processors.get(params)


def _segments(duration_s: float, segment_s: float) -> list[tuple[float, float]]:
    """Spans to keep; a short tail joins the previous span instead of standing alone."""
    count = max(1, math.ceil(duration_s / segment_s - 0.25))
    edges = [min(duration_s, i * segment_s) for i in range(count)] + [duration_s]
    return list(zip(edges[:-1], edges[1:]))


CONTEXT_S = 1.0  # audio read before a chunk for the spectra's windows (46 ms) and differences (20 ms)


class _Activations:
    """Beat and downbeat activations of a whole track, filled one segment at a time.

    The batched network evaluates each segment's kept span plus its right margin (the backward
    LSTMs' context), the forward LSTMs carried over from the previous segment (exact), so the
    spectra and the network cover 70 s per 60 s kept instead of 80 s with margins on both sides.
    Chunk k overwrites chunk k - 1's right margin only after segment k - 1 was decoded, so each
    segment's DBN sees there what its own chunk computed, as before; its left margin is what the
    previous chunk kept. A chunk whose audio is silent is not evaluated (zeros), and the next one
    starts afresh. madmom's own processor (network = "madmom") carries no state: it runs on each
    segment with both margins, as this stage always did.
    """

    def __init__(self, path: str, duration_s: float, sample_rate: int, params: Params) -> None:
        import numpy as np

        self.path, self.sample_rate, self.params = path, sample_rate, params
        self.network, _ = loaded(params)
        frames = math.ceil(duration_s * FPS) + 2
        self.values = np.zeros((frames, 2), np.float32)
        self.energy = np.zeros(frames)  # sum of the squared 44.1 kHz samples of each frame (silence)
        self.frames = 0  # frames read so far
        self.carry: Any = None

    def level_dbfs(self, first: int, end: int) -> float:
        return _dbfs(float(self.energy[first:end].sum()) / max(1, (end - first) * HOP))

    def segment(self, start_s: float, keep_start_s: float, keep_end_s: float, end_s: float,
                last: bool) -> tuple[int, np.ndarray]:
        """(first frame, activations) of the segment [start_s, end_s), computing what is new."""
        import numpy as np

        batched = self.params.network == "batched"
        first = round((keep_start_s if batched else start_s) * FPS)  # the first frame evaluated now
        # whole seconds of context before a chunk, so the read starts on a whole sample at any rate
        read_s = max(0, math.floor(first / FPS - CONTEXT_S)) if batched and first else first / FPS
        mono, rate = audio.read_mono(self.path, round(read_s * self.sample_rate),
                                     math.ceil((end_s - read_s) * self.sample_rate))
        signal = audio.resample(mono, rate, MADMOM_RATE)
        padded = np.zeros(-(-len(signal) // HOP) * HOP)
        padded[:len(signal)] = signal
        skip = first - round(read_s * FPS)
        energy = np.square(padded.reshape(-1, HOP)).sum(axis=1)[skip:]
        end = first + len(energy)
        if end > len(self.values):
            self.values = np.resize(self.values, (end, 2))
            self.energy = np.resize(self.energy, end)
        self.energy[first:end] = energy
        self.frames = max(self.frames, end)
        if self.level_dbfs(first, end) < self.params.silence_dbfs:
            self.values[first:end], self.carry = 0, None  # nothing to evaluate, nothing to carry
        elif batched:
            carry_at = None if last else round(keep_end_s * FPS) - first
            self.values[first:end], self.carry = self.network.chunk(signal, skip, self.carry, carry_at)
        else:
            from madmom.audio.signal import Signal

            return first, self.network(Signal(signal, sample_rate=MADMOM_RATE, num_channels=1))
        start = round(start_s * FPS)
        return start, self.values[start:end]


def find_beats(path: str, duration_s: float, sample_rate: int, params: Params) -> Grid:
    import numpy as np

    _, tracker = loaded(params)
    track = _Activations(path, duration_s, sample_rate, params)
    times: list[float] = []
    positions: list[int] = []
    pulses: list[float] = []
    for keep_start, keep_end in _segments(duration_s, params.segment_s):
        start = max(0.0, keep_start - params.margin_s)
        end = min(duration_s, keep_end + params.margin_s)
        last = keep_end >= duration_s
        first, activations = track.segment(start, keep_start, keep_end, end, last)
        if len(activations) == 0 or track.level_dbfs(first, first + len(activations)) < params.silence_dbfs:
            continue  # a silent stretch has no beats; do not spend the DBN on it
        beats = tracker(activations)
        if len(beats) == 0:
            continue
        absolute = beats[:, 0] + first / FPS
        keep = (absolute >= keep_start) & ((absolute < keep_end) | last)
        frames = np.clip(np.round(beats[keep, 0] * FPS).astype(int), 0, len(activations) - 1)
        times.extend(absolute[keep].tolist())
        positions.extend(beats[keep, 1].astype(int).tolist())
        pulses.extend(activations[frames].sum(axis=1).tolist())
    if track.frames == 0 or track.level_dbfs(0, track.frames) < params.silence_dbfs:
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
    # The tempo octave is the DBN's (issue 28.1): neither madmom's tempo histogram, nor the crops'
    # essentia estimates, nor the activation between beats, nor the bar length corrects an octave the
    # DBN misses on music of known tempo, and the first two add errors (README, bench/tempo_truth.py).
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


write = Write(rows=(Rows("grids", "beat_grids", lambda o, params: [{"track_id": o.item_id, **o.result}]),),
              statements=("insert_grids",))


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
    # 2: tempo from a least-squares fit of the beat times on steady grids (bpm_method)
    # 3: the network's forward state carried across segments (tracks longer than a segment: closer
    #    to one pass over the whole track; shorter ones give what version 2 gave)
    version=3,
)
