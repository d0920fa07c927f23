"""Signal-to-distortion ratio: how close a separated stem is to the real one.

MUSDB18 / museval's SiSEC 2021 "new SDR": 10 log10(sum reference^2 / sum (reference - estimate)^2),
over the whole track and all channels. `sdr_files` streams two files block by block (memory holds a
block), resampling the reference to the estimate's rate where they differ.
"""

from __future__ import annotations

import math

import numpy as np

_EPSILON = 1e-10


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SDR in dB of two arrays (frames x channels), over the shorter's length."""
    n = min(len(reference), len(estimate))
    reference, estimate = reference[:n].astype(np.float64), estimate[:n].astype(np.float64)
    error = np.sum(np.square(reference - estimate))
    return float(10 * np.log10((np.sum(np.square(reference)) + _EPSILON) / (error + _EPSILON)))


def sdr_files(reference_path: str, estimate_path: str, block_frames: int = 1 << 17) -> float:
    """SDR in dB of a separated file against the real stem's file, streamed; channels are matched the
    way demucs matches them (a mono side is repeated), the length is the shorter one's."""
    from etl.dsp import audio
    from etl.dsp.streaming import StreamResampler, to_channels

    signal = error = 0.0
    with audio.open_audio(reference_path) as reference, audio.open_audio(estimate_path) as estimate:
        channels = max(reference.channels, estimate.channels)
        resampler = StreamResampler(reference.samplerate, estimate.samplerate, reference.channels)
        pending = np.zeros((0, channels), dtype=np.float32)
        finished = False
        while True:
            while len(pending) < block_frames and not finished:
                block = audio.read_block(reference, block_frames)
                if not len(block):
                    finished = True
                    block = resampler.finish()
                else:
                    block = resampler.push(block)
                pending = np.concatenate([pending, to_channels(block, channels)])
            wanted = to_channels(audio.read_block(estimate, block_frames), channels)
            n = min(len(wanted), len(pending))
            if n == 0:
                break
            truth, guess = pending[:n].astype(np.float64), wanted[:n].astype(np.float64)
            signal += float(np.sum(np.square(truth)))
            error += float(np.sum(np.square(truth - guess)))
            pending = pending[n:]
            if len(wanted) > n:  # the reference ended first
                break
    return 10 * math.log10((signal + _EPSILON) / (error + _EPSILON))
