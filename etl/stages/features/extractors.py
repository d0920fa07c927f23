"""Feature extractors: pure functions of a decoded crop, one per feature group.

`Decoded` holds what several groups share — the signal (stereo and mono) and one magnitude
STFT — so a crop is decoded once and transformed once whatever groups run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

import numpy as np

from etl.dsp import loudness as loudness_meter
from etl.dsp.keys import key_names

N_FFT = 2048
HOP = 512
# Multiband RMS band edges in Hz (the last band runs to Nyquist).
BANDS = {"bass": (20.0, 250.0), "low_mid": (250.0, 2000.0), "mid": (2000.0, 8000.0), "air": (8000.0, None)}
PITCH_CLASSES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
# KeyExtractor's strength is the correlation of the crop's chroma with the key profile: 0 for
# silence, ~0.6 for white noise, 0.8-0.9 on the test music. Below this the key is NULL, not a guess.
KEY_MIN_STRENGTH = 0.3
# How a crop's own tempo estimate relates to its grid tempo: the estimate / grid ratio each names.
BPM_RELATIONS = {"same": 1.0, "double": 2.0, "half": 0.5, "triple": 3.0, "third": 1 / 3}


def db(value: float, floor: float = 1e-12) -> float | None:
    """20·log10 of an amplitude; None for digital silence (no -inf in the store)."""
    return 20 * math.log10(value) if value > floor else None


def finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@cache
def essentia_algorithm(name: str, **params: Any) -> Any:
    """One essentia algorithm instance per configuration and process, reused for every crop.

    Constructing RhythmExtractor2013 builds its streaming network (first with the default
    multifeature tracker) in ~90 ms, more than running it on a 15 s crop; the others cost little
    but are cached alike. Reused instances give the same outputs as fresh ones (checked on real
    crops for every algorithm used here). Not BeatTrackerDegara on its own: reused, it piles up ticks.
    """
    import essentia.standard as es

    return getattr(es, name)(**params)


@dataclass
class Decoded:
    stereo: np.ndarray          # (samples, channels) float32
    sample_rate: int
    mono: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mono = self.stereo.mean(axis=1).astype(np.float32)

    @cached_property
    def ebur128(self) -> loudness_meter.Ebur128:
        """The EBU R128 meter, once: the one K-weighting pass for every loudness figure. BS.1770
        sums the channels' weighted powers, whatever the layout (etl/dsp/loudness.py): a mono crop
        is one channel (duplicating it would add 3 dB), a 5.1 crop's LFE is left out."""
        return loudness_meter.ebur128(self.stereo, self.sample_rate)

    @property
    def too_quiet(self) -> bool:
        """Too quiet to measure (etl/dsp/loudness.py too_quiet): every estimate is NULL."""
        return self.ebur128.too_quiet

    @cached_property
    def magnitude(self) -> np.ndarray:
        import librosa

        return np.abs(librosa.stft(self.mono, n_fft=N_FFT, hop_length=HOP))

    @cached_property
    def power(self) -> np.ndarray:
        return self.magnitude ** 2

    @cached_property
    def mel_db(self) -> np.ndarray:
        """Mel power spectrogram in dB, from the shared STFT (MFCCs and onset detection use it)."""
        import librosa

        return librosa.power_to_db(librosa.feature.melspectrogram(S=self.power, sr=self.sample_rate))

    @cached_property
    def centroid_bandwidth(self) -> tuple[np.ndarray, np.ndarray]:
        """Per frame spectral centroid and bandwidth (the spectral and series groups use them)."""
        return centroid_and_bandwidth(self.magnitude, self.sample_rate)


def worker_setup(with_essentia: bool = True) -> None:
    """Ready a worker process: import the extractors' libraries now (essentia, which loads
    TensorFlow, takes seconds), not on the first crop, and keep their math libraries to one thread.

    The pool runs one worker per core. Left alone, numpy's and scipy's OpenBLAS each start a
    thread per core in every worker, and those threads spin after each call, on the cores the
    other workers need: the features took ~45 % more time that way on a busy 2-core machine.
    (Under the inline executor this is the coordinator's process, which then keeps one thread too.)
    """
    import librosa
    import pyloudnorm  # noqa: F401
    import scipy.signal  # noqa: F401
    from threadpoolctl import threadpool_limits

    if with_essentia:
        import essentia.standard  # noqa: F401

    librosa.feature.melspectrogram  # noqa: B018  librosa's submodules load lazily; this loads them
    threadpool_limits(1)  # the libraries loaded so far, i.e. all of them; lasts for the process


def read(path: str) -> Decoded:
    from etl.dsp import audio

    with audio.open_audio(path) as handle:
        return Decoded(audio.read_block(handle), handle.samplerate)


def level_stats(signal: Decoded) -> dict[str, Any]:
    """Sample peak, RMS, crest factor, clipping: exact checks on a sine of known level."""
    x = signal.stereo
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    peak_db, rms_db = db(peak), db(rms)
    return {
        "sample_peak_dbfs": peak_db,
        "rms_dbfs": rms_db,
        "crest_factor_db": peak_db - rms_db if peak_db is not None and rms_db is not None else None,
        "clipping_ratio": float(np.mean(np.abs(x) >= 10 ** (-0.01 / 20))) if x.size else 0.0,
    }


def integrated_lufs(signal: Decoded) -> float | None:
    """BS.1770-4 integrated loudness with pyloudnorm's filters and blocks (equal to pyloudnorm's on
    stereo), every channel layout weighted per BS.1770 (etl/dsp/loudness.py StreamMeter); None when
    too quiet to measure or shorter than one 400 ms block."""
    if len(signal.stereo) < int(0.4 * signal.sample_rate):  # shorter than one gating block
        return None
    meter = loudness_meter.StreamMeter(signal.sample_rate, signal.stereo.shape[1])
    return finite(meter.push(signal.stereo).integrated())


@cache
def _between_sample_taps(up: int = 4) -> np.ndarray:
    """The interpolation filter of scipy's resample_poly(x, up, 1), as its up − 1 phases that fall
    between the input samples (the phase on the samples is the samples themselves)."""
    from scipy.signal import firwin

    half = 10 * up  # resample_poly's filter: 2·half + 1 taps, Kaiser window, β = 5
    taps = firwin(2 * half + 1, 1.0 / up, window=("kaiser", 5.0)) * up
    phases = np.zeros((up - 1, 2 * half // up + 1), dtype=np.float32)
    for phase in range(1, up):
        phases[phase - 1, :len(taps[phase::up])] = taps[phase::up]
    return phases


def true_peak_dbtp(signal: Decoded, up: int = 4) -> float | None:
    """BS.1770 annex 2: the peak of the signal oversampled 4x (resample_poly's filter).

    Every channel's between-sample phases come from one FFT convolution, in float32; that is
    ~1.3x faster than resample_poly per channel, and gives the same peaks to 0.01 dB."""
    from scipy.signal import oaconvolve

    if not signal.stereo.size:
        return None
    phases = _between_sample_taps(up)
    delay = phases.shape[1] // 2  # output n of a phase lies between input samples n and n + 1
    channels = np.ascontiguousarray(signal.stereo.T)[:, None, :]  # (channel, 1, sample)
    between = oaconvolve(channels, phases[None], axes=-1)[..., delay:delay + len(signal.stereo)]
    return db(max(float(np.max(np.abs(signal.stereo))), float(np.max(np.abs(between)))))


def loudness(signal: Decoded) -> dict[str, Any]:
    """Loudness estimates are NULL when too quiet to measure; the sample peak, true peak and RMS
    are exact measurements and stay (NULL only for digital silence)."""
    short_term = signal.ebur128.short_term
    quiet = signal.too_quiet
    return {
        "loudness_integrated_lufs": None if quiet else integrated_lufs(signal),
        "loudness_range_lu": finite(signal.ebur128.loudness_range),
        "loudness_short_term_max_lufs": finite(float(short_term.max())) if short_term.size and not quiet else None,
        "true_peak_dbtp": true_peak_dbtp(signal),
        **level_stats(signal),
    }


def band_rms(signal: Decoded) -> dict[str, Any]:
    from scipy.signal import butter, sosfilt

    nyquist = signal.sample_rate / 2
    out = {}
    for name, (low, high) in BANDS.items():
        if low >= nyquist * 0.95:
            out[f"band_{name}_rms_dbfs"] = None
            continue
        if high is None or high >= nyquist * 0.95:
            sos = butter(4, low, btype="highpass", fs=signal.sample_rate, output="sos")
        else:
            sos = butter(4, [low, high], btype="bandpass", fs=signal.sample_rate, output="sos")
        filtered = sosfilt(sos, signal.mono)
        out[f"band_{name}_rms_dbfs"] = db(float(np.sqrt(np.mean(filtered ** 2))))
    return out


def centroid_and_bandwidth(magnitude: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: librosa's spectral centroid and bandwidth (p=2) from three spectral moments.

    sum(w·(f−c)²) = sum(w·f²) − c² for weights w summing to 1, so one matrix product gives both;
    librosa builds the |f − c|² matrix instead (~30 ms a crop). Silent frames give 0 as there.
    """
    import librosa

    freq = librosa.fft_frequencies(sr=sample_rate, n_fft=N_FFT)
    total, first, second = np.stack([np.ones_like(freq), freq, freq ** 2]) @ magnitude.astype(np.float64)
    audible = total > np.finfo(np.float32).tiny
    weight = np.divide(1.0, total, out=np.zeros_like(total), where=audible)
    centroid = first * weight
    return centroid, np.sqrt(np.maximum(second * weight - centroid ** 2, 0.0))


def rolloff(magnitude: np.ndarray, sample_rate: int, share: float) -> np.ndarray:
    """Per frame, librosa's spectral roll-off: the lowest bin frequency at which the cumulative
    magnitude reaches `share` of the frame's total (the first such bin; librosa takes a nanmin
    over a NaN-masked frequency matrix, three times the work)."""
    import librosa

    cumulative = np.cumsum(magnitude, axis=0)
    first = np.argmax(cumulative >= share * cumulative[-1], axis=0)
    return librosa.fft_frequencies(sr=sample_rate, n_fft=N_FFT)[first]


def zero_crossing_rate(mono: np.ndarray, threshold: float = 1e-10) -> np.ndarray:
    """Per frame, librosa's zero_crossing_rate (centred N_FFT frames, HOP apart), from one pass.

    librosa frames the signal first and tests each sample in the 4 frames that overlap it; here
    each adjacent pair is tested once and the frames' counts are differences of a running sum.
    As there, samples within `threshold` of 0 count as positive and a frame's first sample
    starts no crossing."""
    padded = np.pad(mono, N_FFT // 2, mode="edge")
    negative = padded < -threshold
    running = np.concatenate([[0], np.cumsum(negative[1:] != negative[:-1])])
    starts = np.arange(0, len(padded) - N_FFT + 1, HOP)
    return (running[starts + N_FFT - 1] - running[starts]) / N_FFT


def stem_spectral(signal: Decoded) -> dict[str, Any]:
    """The spectral stats stem crops keep: centroid, flatness and band levels (part of `spectral`).
    Shape (centroid, flatness) is NULL when too quiet to measure; band levels are measurements."""
    import librosa

    if signal.too_quiet:
        return {"spectral_centroid_hz": None, "spectral_flatness": None, **band_rms(signal)}
    centroid, _ = signal.centroid_bandwidth
    return {
        "spectral_centroid_hz": float(centroid.mean()),
        "spectral_flatness": float(librosa.feature.spectral_flatness(S=signal.magnitude).mean()),
        **band_rms(signal),
    }


def spectral(signal: Decoded, n_mfcc: int = 13) -> dict[str, Any]:
    import librosa

    if signal.too_quiet:
        return {**stem_spectral(signal), "spectral_bandwidth_hz": None, "spectral_rolloff_hz": None,
                "spectral_flux": None, "zero_crossing_rate": None, "mfcc_mean": None}
    magnitude, rate = signal.magnitude, signal.sample_rate
    flux = np.sqrt(np.sum(np.maximum(np.diff(magnitude, axis=1), 0) ** 2, axis=0))
    _, bandwidth = signal.centroid_bandwidth
    return {
        **stem_spectral(signal),
        "spectral_bandwidth_hz": float(bandwidth.mean()),
        "spectral_rolloff_hz": float(rolloff(magnitude, rate, 0.85).mean()),
        "spectral_flux": float(flux.mean()) if flux.size else None,  # one frame: no change to measure
        "zero_crossing_rate": float(zero_crossing_rate(signal.mono).mean()),
        "mfcc_mean": librosa.feature.mfcc(S=signal.mel_db, n_mfcc=n_mfcc).mean(axis=1).tolist(),
    }


def tonal(signal: Decoded) -> dict[str, Any]:
    import librosa

    if signal.too_quiet:
        return dict.fromkeys(("chroma_mean", "key_tonic", "key_mode", "key_strength", "key_name", "key_camelot"))
    chroma = librosa.feature.chroma_stft(S=signal.power, sr=signal.sample_rate).mean(axis=1)
    chroma = chroma / chroma.max() if chroma.max() > 0 else chroma
    tonic, mode, strength = essentia_algorithm("KeyExtractor", sampleRate=signal.sample_rate)(signal.mono)
    if strength < KEY_MIN_STRENGTH:  # no key to speak of: keep the strength, name none
        return {"chroma_mean": chroma.tolist(), "key_tonic": None, "key_mode": None,
                "key_strength": float(strength), "key_name": None, "key_camelot": None}
    tonic, name, camelot = key_names(tonic, mode)
    return {"chroma_mean": chroma.tolist(), "key_tonic": tonic, "key_mode": mode, "key_strength": float(strength),
            "key_name": name, "key_camelot": camelot}


def bpm_relation(bpm_crop: float | None, bpm_grid: float | None, tolerance: float = 0.04) -> str | None:
    """How the crop's own tempo estimate relates to the grid's: "same", or an octave-type error
    ("double", "half", "triple", "third") when the ratio is within `tolerance` of it, else
    "unrelated"; None when either is missing."""
    if not bpm_crop or not bpm_grid:
        return None
    ratio = bpm_crop / bpm_grid
    return next((name for name, factor in BPM_RELATIONS.items() if abs(ratio / factor - 1) <= tolerance),
                "unrelated")


def rhythm(signal: Decoded, bpm_grid: float | None, agree_tolerance: float = 0.04,
           method: str = "degara") -> dict[str, Any]:
    """bpm_grid: the beat grid's tempo over the crop's own beats (crops.bpm), carried down."""
    import librosa

    from etl.dsp.audio import resample

    if signal.too_quiet:  # no onsets to count, no tempo to estimate
        return {"bpm_grid": bpm_grid, "bpm_crop": None, "bpm_relation": None, "bpm_agrees": None,
                "onset_rate_hz": None, "danceability": None}
    mono44 = resample(signal.mono, signal.sample_rate, 44100)  # RhythmExtractor2013 assumes 44.1 kHz
    bpm_crop = float(essentia_algorithm("RhythmExtractor2013", method=method)(mono44)[0])
    danceability = float(essentia_algorithm("Danceability", sampleRate=44100)(mono44)[0])
    envelope = librosa.onset.onset_strength(S=signal.mel_db, sr=signal.sample_rate)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=signal.sample_rate, hop_length=HOP)
    duration_s = len(signal.mono) / signal.sample_rate
    bpm_crop_or_none = bpm_crop if bpm_crop > 0 else None
    relation = bpm_relation(bpm_crop_or_none, bpm_grid, agree_tolerance)
    return {
        "bpm_grid": bpm_grid,
        "bpm_crop": bpm_crop_or_none,
        "bpm_relation": relation,
        "bpm_agrees": None if relation is None else relation == "same",
        "onset_rate_hz": len(onsets) / duration_s if duration_s > 0 else None,
        "danceability": danceability,
    }


def _steps(values: np.ndarray, steps: int) -> list[float | None]:
    """`steps` points along the series; NaN (a silent frame) and its neighbours' share become None."""
    if values.size == 0:
        return []
    positions = np.linspace(0, len(values) - 1, steps)
    points = np.interp(positions, np.arange(len(values)), values).astype(np.float32)
    return [None if math.isnan(v) else v for v in points.tolist()]


def series(signal: Decoded, steps: int) -> dict[str, Any]:
    """Time series with a None for each point that falls on a silent frame (below -70 LUFS / dBFS,
    etl/dsp/loudness.py QUIET_DB), never a floor value; the whole series NULL when too quiet."""
    import librosa

    if signal.too_quiet:
        return {"series_loudness_lufs": None, "series_rms_dbfs": None, "series_centroid_hz": None}
    quiet = loudness_meter.QUIET_DB
    rms = librosa.feature.rms(S=signal.magnitude, frame_length=N_FFT)[0]
    with np.errstate(divide="ignore"):
        rms_db = 20 * np.log10(rms)
    silent_frame = rms_db < quiet
    centroid, _ = signal.centroid_bandwidth
    momentary = signal.ebur128.momentary
    return {
        "series_loudness_lufs": _steps(np.where(momentary < quiet, np.nan, momentary), steps),
        "series_rms_dbfs": _steps(np.where(silent_frame, np.nan, rms_db), steps),
        "series_centroid_hz": _steps(np.where(silent_frame, np.nan, centroid), steps),
    }
