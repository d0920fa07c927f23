"""chords (per crop): madmom's chord recogniser and its key recogniser, a second key opinion beside
essentia's (features).

Chords: madmom's CNN chord features + CRF (Korzeniowski & Widmer 2016; `chord_model = "cnn"`, the
default: more accurate on the tests' progressions) or its deep chroma + CRF (`"deepchroma"`, ~5x
faster than the batched CNN). Both decode madmom's major/minor/no-chord vocabulary (24 chords and
"N") at 10 frames per second. Key: madmom's CNN key ensemble (Korzeniowski & Widmer 2018): a probability per key.

The crop is read once, mixed to mono and resampled to 44.1 kHz (the rate of madmom's networks) with
etl.dsp.audio. A crop too quiet to measure (etl/dsp/loudness.py) gets a row of NULLs: no chords and
no key made up from silence. The networks are loaded once per worker.

madmom's CNN chord features and its key CNN run through convnet.py: madmom's processing chains with
their spectrogram front ends vectorised (bit-identical) and their convolutions as a few matrix
products (madmom's weights, read from its loaded networks; activations within float32 rounding of
madmom's), ~50x faster than madmom's own layers; the CRF decoding and the deep chroma model are
madmom's own.

Stored in `crop_chords`: the chord segments (seconds and beats from the crop's start), the chord
over each of the crop's beats, the short text ("C G Am F"), madmom's key, its probability and every
key's probability. crops_v derives the agreed key from both opinions (etl/stages/chords/views.sql, its macros).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.dsp import madmom_models
from etl.dsp.keys import key_names
from etl.engine.config import ranged
from etl.engine.errors import ConfigError
from etl.engine.stage import Read, Stage
from etl.engine.tables import Rows, Write
from etl.engine.worker_model import WorkerModel

if TYPE_CHECKING:
    import numpy as np

MADMOM_RATE = 44100  # the rate madmom's chord and key networks were trained at
CHORD_MODELS = {  # madmom/models files each chord model needs (glob -> count)
    "cnn": {"chords/2016/chords_cnnfeat.pkl": 1, "chords/2016/chords_cnncrf.pkl": 1},
    "deepchroma": {"chroma/2016/chroma_dnn.pkl": 1, "chords/2016/chords_dccrf.pkl": 1},
}
KEY_MODEL = {"key/2018/key_cnn*.pkl": 1}


@dataclass(frozen=True)
class Params:
    chord_model: str = "cnn"  # "cnn": CNN features + CRF; "deepchroma": deep chroma + CRF
    threads: int = ranged(1, 0, 1024, hashed=False)  # maths (BLAS) threads per worker; 0: every core

    def __post_init__(self) -> None:
        if self.chord_model not in CHORD_MODELS:
            raise ConfigError(f"[chords] chord_model must be one of {', '.join(CHORD_MODELS)}, "
                              f"not {self.chord_model!r}")


def unavailable(params: Params) -> str | None:
    return madmom_models.unavailable("chord and key", {**CHORD_MODELS[params.chord_model], **KEY_MODEL})


def models(params: Params, checksums: bool = True) -> list[dict[str, Any]]:
    chords = CHORD_MODELS[params.chord_model]
    name = ("madmom CNN chord features + CRF" if params.chord_model == "cnn" else "madmom deep chroma + CRF")
    return [madmom_models.model_row(name, chords, madmom_models.unavailable("chord", chords), checksums),
            madmom_models.model_row("madmom CNN key recogniser", KEY_MODEL,
                                    madmom_models.unavailable("key", KEY_MODEL), checksums)]


def model_files(params: Params) -> list[str]:
    """The network files the results depend on (their content is folded into the stage hash)."""
    return madmom_models.files({**CHORD_MODELS[params.chord_model], **KEY_MODEL})


class Recogniser:
    """madmom's chord and key processors, built once (their networks load in a second); the CNNs'
    chains batched by convnet.py (the same networks, ~50x faster)."""

    def __init__(self, params: Params) -> None:
        from madmom.features.key import CNNKeyRecognitionProcessor

        from etl.stages.chords import convnet

        if params.threads:  # numpy's BLAS runs the networks: keep it to the worker's share of cores
            from threadpoolctl import threadpool_limits

            threadpool_limits(params.threads)
        if params.chord_model == "cnn":
            from madmom.features.chords import (
                CNNChordFeatureProcessor,
                CRFChordRecognitionProcessor,
            )

            self.chord_features = convnet.fast_pipeline(CNNChordFeatureProcessor())
            self.decode = CRFChordRecognitionProcessor()
        else:
            from madmom.audio.chroma import DeepChromaProcessor
            from madmom.features.chords import DeepChromaChordRecognitionProcessor

            self.chord_features, self.decode = [DeepChromaProcessor()], DeepChromaChordRecognitionProcessor()
        self.key = convnet.fast_pipeline(CNNKeyRecognitionProcessor())

    def features(self, signal: Any) -> Any:
        """The chord model's features of a 44.1 kHz mono Signal (frames, features), 10 frames/s."""
        from etl.stages.chords import convnet

        return convnet.run(self.chord_features, signal)

    def chords(self, signal: Any) -> Any:
        """madmom's (start, end, label) segments of a 44.1 kHz mono Signal."""
        return self.decode(self.features(signal))

    def key_probabilities(self, signal: Any) -> Any:
        """The key network's (1, 24) probabilities, in madmom's KEY_LABELS order."""
        from etl.stages.chords import convnet

        return convnet.run(self.key, signal)

    def key_scores(self, signal: Any) -> dict[str, float]:
        """The probability of each of the 24 keys, named as essentia's are in the store ("A# minor")."""
        from madmom.features.key import KEY_LABELS

        return {key_names(*label.split(" "))[1]: float(p)
                for label, p in zip(KEY_LABELS, self.key_probabilities(signal)[0])}


_recogniser = WorkerModel(Recogniser, lambda params: (params.chord_model, params.threads))


def init_worker(params: Params) -> None:
    _recogniser.get(params)


def recogniser(params: Params) -> Recogniser:
    return _recogniser.get(params)


def read_44k_mono(path: str) -> tuple[np.ndarray | None, float]:
    """The crop mixed to mono at 44.1 kHz and its duration in seconds; None for the audio when the crop
    is too quiet to measure (no 400 ms block reaches BS.1770's absolute gate)."""
    from etl.dsp import audio
    from etl.dsp.loudness import ebur128

    with audio.open_audio(path) as handle:
        block, rate = audio.read_block(handle), handle.samplerate
    duration_s = len(block) / rate
    if ebur128(block, rate).too_quiet:
        return None, duration_s
    return audio.resample(block.mean(axis=1), rate, MADMOM_RATE), duration_s


def recognise(mono44k: np.ndarray, duration_s: float, beat_times_s: list[float],
              params: Params) -> dict[str, Any]:
    """Chords and key of one crop's audio (44.1 kHz mono)."""
    from madmom.audio.signal import Signal

    from etl.stages.chords import harmony

    model = recogniser(params)
    signal = Signal(mono44k, sample_rate=MADMOM_RATE, num_channels=1)
    segments = harmony.segments(model.chords(signal), duration_s, beat_times_s)
    result = {"chord_model": params.chord_model, "chords": segments,
              "beat_chords": harmony.beat_chords(segments, beat_times_s, duration_s),
              "chords_text": harmony.chords_text(segments)}
    scores = model.key_scores(signal)
    if not all(math.isfinite(p) for p in scores.values()):
        # A crop too short for the key network's pooling (about 1.4 s) gives NaN, in madmom too:
        # nothing measured, so no key (NULL), not the largest of NaNs.
        return {**result, "key_madmom": None, "key_madmom_camelot": None, "key_madmom_confidence": None,
                "key_madmom_scores": None}
    key = max(scores, key=scores.__getitem__)
    return {**result, "key_madmom": key, "key_madmom_camelot": key_names(*key.split(" "))[2],
            "key_madmom_confidence": scores[key], "key_madmom_scores": scores}


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    mono44k, duration_s = read_44k_mono(item["path"])
    if mono44k is None:  # too quiet: nothing measured, every column NULL
        return {"chord_model": params.chord_model}
    return recognise(mono44k, duration_s, list(item["beat_times_s"] or []), params)


write = Write(rows=(Rows("new_chords", "crop_chords", lambda o, params: [{
                  "crop_id": o.item_id, "track_id": o.item["track_id"], **o.result,
                  "key_madmom_scores": list((o.result.get("key_madmom_scores") or {}).items()) or None}]),),
              statements=("insert_chords",))


STAGE = Stage(
    name="chords",
    description="chords per crop and beat, and a second key opinion, with madmom's CNNs",
    process=process,
    write=write,
    reads=(Read("crops"),),
    Params=Params,
    # 2: a crop too short for the key network has no key (NULL) instead of the largest of NaNs.
    version=2,
    init_worker=init_worker,
    unavailable=unavailable,
    models=models,
    model_files=model_files,
    batch_size=16,
)
