"""basic-pitch's ICASSP-2022 model on onnxruntime, called the way `basic_pitch.inference.predict`
calls it, on audio this project decodes.

`predict(path)` loads the file with `librosa.load(sr=22050, mono=True)`: soundfile's float32
samples, averaged over channels, resampled with soxr at its HQ setting. `mono_22k` does exactly
that with etl.dsp.audio and soxr (librosa's default resampler; resampy, which basic-pitch imports
only to sonify MIDI, is never called), so the model sees the same samples. The windowing,
the model call and the unwrapping are basic-pitch's own functions (`window_audio_file`,
`Model.predict`, `unwrap_output`); notes come from its `model_output_to_notes`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# basic-pitch's constants (basic_pitch.constants), here so `etl status` need not import it.
SAMPLE_RATE = 22050
FFT_HOP = 256
OVERLAP_FRAMES = 30  # run_inference's overlap between windows
LOWEST_PITCH, HIGHEST_PITCH = 21, 108  # the model's 88 keys


def quiet_import() -> Any:
    """basic_pitch.inference; its package logs a warning per missing backend (TensorFlow, CoreML,
    TFLite) on import, which is noise where onnxruntime is the backend meant."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        import basic_pitch.inference as inference
    finally:
        root.setLevel(level)
    return inference


def model_path() -> Any:
    """The bundled ONNX file (basic-pitch picks it when onnxruntime is its only backend)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "saved_models" / "icassp_2022" / "nmp.onnx"


def load_model(threads: int = 0) -> Any:
    """basic-pitch's Model over an onnxruntime session with `threads` intra-op threads (0: onnxruntime's
    default, every core: right for one worker, oversubscribed for several)."""
    import onnxruntime as ort

    inference = quiet_import()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # Model(path) opens the session with default options; the same object with our session instead.
    model = inference.Model.__new__(inference.Model)
    model.model_type = inference.Model.MODEL_TYPES.ONNX
    model.model = ort.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])
    return model


def mono_22k(path: str) -> np.ndarray:
    """The file as basic-pitch's `librosa.load(path, sr=22050, mono=True)` gives it."""
    import numpy as np
    import soxr

    from etl.dsp import audio

    mono, rate = audio.read_mono(path, 0, -1)
    if rate == SAMPLE_RATE:
        return mono
    return np.asarray(soxr.resample(mono, rate, SAMPLE_RATE, quality="soxr_hq"), dtype=np.float32)


def model_output(model: Any, mono: np.ndarray) -> dict[str, np.ndarray]:
    """`run_inference`'s result (note, onset, contour activations per frame) for 22.05 kHz samples."""
    import numpy as np

    inference = quiet_import()
    from basic_pitch.constants import AUDIO_N_SAMPLES

    overlap_len = OVERLAP_FRAMES * FFT_HOP
    padded = np.concatenate([np.zeros(overlap_len // 2, dtype=np.float32), mono.astype(np.float32, copy=False)])
    output: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
    for window, _ in inference.window_audio_file(padded, AUDIO_N_SAMPLES - overlap_len):
        for key, value in model.predict(np.expand_dims(window, axis=0)).items():
            output[key].append(value)
    return {key: inference.unwrap_output(np.concatenate(values), len(mono), OVERLAP_FRAMES)
            for key, values in output.items()}


def notes(output: dict[str, np.ndarray], onset_threshold: float, frame_threshold: float,
          minimum_note_length_ms: float, pitch_min: int, pitch_max: int,
          melodia_trick: bool) -> list[tuple[float, float, int, float]]:
    """Note events (start s, end s, MIDI pitch, amplitude 0..1) as `predict` makes them."""
    import librosa

    quiet_import()
    from basic_pitch import note_creation

    # predict's own conversion of milliseconds to model frames.
    min_note_len = int(round(minimum_note_length_ms / 1000 * (SAMPLE_RATE / FFT_HOP)))
    # The pitch range as basic-pitch's frequency limits: each MIDI number's own frequency maps back to
    # that number's row; the full range is no limit at all (predict's default, None).
    min_freq = float(librosa.midi_to_hz(pitch_min)) if pitch_min > LOWEST_PITCH else None
    max_freq = float(librosa.midi_to_hz(pitch_max)) if pitch_max < HIGHEST_PITCH else None
    _, events = note_creation.model_output_to_notes(
        output, onset_thresh=onset_threshold, frame_thresh=frame_threshold, min_note_len=min_note_len,
        min_freq=min_freq, max_freq=max_freq, include_pitch_bends=False, melodia_trick=melodia_trick)
    return [(float(start), float(end), int(pitch), float(amplitude)) for start, end, pitch, amplitude, _ in events]
