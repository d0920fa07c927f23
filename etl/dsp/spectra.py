"""madmom's downbeat pre-processing with one FFT call per block of frames.

madmom's RNNDownBeatProcessor turns the signal into three log-filtered spectrograms and their
positive differences (frame sizes 1024/2048/4096 at 100 frames/s), and its STFT calls the FFT
once per frame: ~110,000 calls for a 3-minute song, a third of the stage's time. Here the frames
of a block are strided views of the zero-padded signal, windowed and transformed in one `rfft`
call; the magnitude, filterbank, logarithm and difference follow madmom's own operations and
dtypes (window in float64, STFT rounded to complex64, magnitude and filtering in float32). The
window, filterbank, hop, scaling and difference distance are read from madmom's own processors
(run once on a short signal), so the bands cannot drift from madmom's; tests compare the result
with madmom's on real music. The chords stage reads its chord-feature and key spectrograms with
the same code (`band_of`, `log_filtered_spectrogram`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BLOCK_BYTES = 1 << 21  # windowed frames per FFT call (float64): cache-sized, and bounds memory on any track


@dataclass(frozen=True)
class Band:
    frame_size: int
    hop_size: int
    window: np.ndarray      # madmom's analysis window (before any integer scaling)
    filterbank: np.ndarray  # (fft bins, bands) float32, madmom's LogarithmicFilterbank
    mul: float
    add: float
    diff_frames: int


def bands_of(pre_processor: Any, sample_rate: int) -> list[Band]:
    """The three bands' settings, as madmom's pre-processor computes them on one second of noise."""
    from madmom.audio.spectrogram import SpectrogramDifference

    _, parallel, _ = pre_processor.processors
    bands = []
    for chain in parallel.processors:
        *spectral, differ = chain.processors
        logarithmic = _on_noise(spectral, sample_rate)
        if differ.diff_max_bins not in (None, 1) or not differ.positive_diffs:
            raise ValueError("madmom's spectral difference changed: this copy covers positive differences only")
        diff = SpectrogramDifference(logarithmic, diff_ratio=differ.diff_ratio, diff_frames=differ.diff_frames)
        bands.append(_band(logarithmic, int(diff.diff_frames)))
    return bands


def band_of(spectral: list[Any], sample_rate: int) -> Band:
    """The settings of one madmom chain of framing, STFT and log-filtered spectrogram processors
    (e.g. a FramedSignalProcessor, a ShortTimeFourierTransformProcessor and a
    LogarithmicFilteredSpectrogramProcessor), as they compute them on one second of noise."""
    return _band(_on_noise(spectral, sample_rate), 0)


def _on_noise(spectral: list[Any], sample_rate: int) -> Any:
    """madmom's logarithmic filtered spectrogram of one second of noise through `spectral`."""
    from madmom.audio.signal import Signal

    noise = np.random.default_rng(0).standard_normal(sample_rate).astype(np.float32)
    data: Any = Signal(noise, sample_rate=sample_rate, num_channels=1)
    for processor in spectral:
        data = processor(data)
    return data


def _band(logarithmic: Any, diff_frames: int) -> Band:
    filtered, stft = logarithmic.spectrogram, logarithmic.stft
    hop_size = stft.frames.hop_size
    if hop_size != int(hop_size):
        raise ValueError(f"madmom's hop of {hop_size} samples is not whole: strided frames need a whole hop")
    window = stft.window  # the window array, or its function once madmom's processor cached the array
    size = int(stft.frames.frame_size)
    window = np.ones(size) if window is None else window(size) if callable(window) else window
    return Band(size, int(hop_size), np.asarray(window), np.asarray(filtered.filterbank, dtype=np.float32),
                logarithmic.mul, logarithmic.add, diff_frames)


def filtered_spectrogram(signal: np.ndarray, band: Band) -> np.ndarray:
    """madmom's FilteredSpectrogram (frames, bands) of `signal` for one frame size.

    Frame i is centred on sample i * hop (madmom's signal_frame, origin 0, zero padding); there
    are ceil(len / hop) frames (madmom's end="normal").
    """
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.fft import rfft

    size, hop = band.frame_size, band.hop_size
    frames = -(-len(signal) // hop)
    window = band.window
    if np.issubdtype(signal.dtype, np.integer):  # madmom scales integer audio to ±1 through the window
        window = window / float(np.iinfo(signal.dtype).max)
    last_stop = (frames - 1) * hop - size // 2 + size
    padded = np.concatenate([np.zeros(size // 2, signal.dtype), signal,
                             np.zeros(max(0, last_stop - len(signal)), signal.dtype)])
    framed = sliding_window_view(padded, size)[::hop][:frames]
    out = np.empty((frames, band.filterbank.shape[1]), np.float32)
    block = max(1, BLOCK_BYTES // (8 * size))
    for start in range(0, frames, block):
        windowed = framed[start:start + block] * window  # float64, as madmom's np.multiply(frame, window)
        spectrum = rfft(windowed, axis=1)[:, :size // 2].astype(np.complex64)  # madmom's STFT_DTYPE
        np.dot(np.abs(spectrum), band.filterbank, out=out[start:start + block])
    return out


def log_filtered_spectrogram(signal: np.ndarray, band: Band) -> np.ndarray:
    """madmom's LogarithmicFilteredSpectrogram (frames, bands): log10(filtered * mul + add), float32."""
    spectrum = filtered_spectrogram(signal, band)
    if band.mul is not None:
        spectrum *= band.mul
    if band.add is not None:
        spectrum += band.add
    return np.log10(spectrum, out=spectrum)


def band_features(signal: np.ndarray, band: Band) -> np.ndarray:
    """Log-filtered spectrogram and its positive difference, side by side (madmom's hstack)."""
    spectrum = log_filtered_spectrogram(signal, band)
    diff = np.zeros_like(spectrum)
    frames = band.diff_frames
    diff[frames:] = spectrum[frames:] - spectrum[:-frames]
    np.maximum(diff, 0, out=diff)
    return np.hstack([spectrum, diff])


def features(signal: np.ndarray, bands: list[Band]) -> np.ndarray:
    """madmom's downbeat network input (frames, 314) for a mono signal at madmom's rate."""
    return np.hstack([band_features(np.asarray(signal), band) for band in bands])
