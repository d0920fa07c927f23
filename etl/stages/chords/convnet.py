"""madmom's convolutional networks (chord features, key) evaluated with a few matrix products.

madmom's ConvolutionalLayer convolves every (input channel, output channel) pair on its own with
`scipy.ndimage.convolve`: 5,000 to 10,000 small convolutions per layer, ~95,000 calls for a 20 s
crop through the chord feature CNN, 86 % of the stage's time. Here a layer is an im2col matrix
product: the input's kernel-sized patches as the rows of one matrix (or, for a wide layer, its
frequency patches, one product per kernel row), times the kernel as a (patch, output channel)
matrix, in float32 through numpy's BLAS. The arithmetic is madmom's: a true convolution (its
kernels flipped, as scipy's `convolve` does), 'valid' or 'same' output, the layer's bias added
and its activation applied after the sum, its stride taken from the result. The max-pooling
layers (non-overlapping blocks) are one reshape and max. Every other layer (batch normalisation,
padding, averaging, ...) is madmom's own layer object, called as madmom calls it: those are
vectorised already. So the weights, biases, padding, activations, batch-norm and pooling
parameters are those of madmom's loaded network objects and cannot drift from its model files.

Only the summation order differs (madmom adds the channels' convolutions one by one into a
float32 array; a matrix product sums in blocks), so activations agree with madmom's within float32
rounding: tests/integration/test_chords_convnet.py states the measured bound.

`fast_pipeline` turns one of madmom's processing chains (CNNChordFeatureProcessor,
CNNKeyRecognitionProcessor) into the same chain with its spectrogram front end vectorised
(etl/dsp/spectra.py: one FFT call per block of frames, bit-identical to madmom's) and its
networks evaluated here; every other step (signal handling, padding, superframes, pooling,
ensemble averaging, softmax) is madmom's own function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Below this many values per kernel row (frequency taps x input channels), a layer's whole kernel
# is one patch row (one product); above it, one product per kernel row over frequency patches
# (a kt-times smaller patch matrix, and products wide enough to run at full speed).
WHOLE_PATCH_BELOW = 32


class Convolution:
    """madmom's ConvolutionalLayer as im2col matrix products (same weights, bias, padding,
    activation and stride)."""

    def __init__(self, layer: Any) -> None:
        channels, features, self.kt, self.kf = layer.weights.shape
        if layer.pad not in ("valid", "same"):
            raise NotImplementedError(f"madmom's convolution padding {layer.pad!r} is not covered")
        self.pad = layer.pad
        # madmom convolves (scipy flips the kernel); a patch product correlates: flip it here.
        # Rows ordered (kernel row, kernel column, input channel) as the patches are laid out.
        flipped = np.asarray(layer.weights, dtype=np.float32)[:, :, ::-1, ::-1]
        self.rows = np.ascontiguousarray(flipped.transpose(2, 3, 0, 1)).reshape(self.kt, self.kf * channels, features)
        self.whole = np.ascontiguousarray(self.rows.reshape(self.kt * self.kf * channels, features))
        self.channels, self.features = channels, features
        self.bias, self.activation_fn = layer.bias, layer.activation_fn
        stride = layer.stride
        self.stride = None if stride in (None, 1, (1, 1)) else (stride, stride) if np.isscalar(stride) else stride

    def __call__(self, data: np.ndarray) -> np.ndarray:
        if data.ndim == 2:  # madmom: no channel axis means one channel
            data = data[:, :, None]
        frames_in, bins_in, channels = data.shape
        if channels != self.channels:
            raise ValueError(f"{channels} input channels for a layer of {self.channels}")
        data = np.asarray(data, dtype=np.float32)
        if self.pad == "same":  # scipy's 'same' centring: an even kernel has one more zero after
            kt, kf = self.kt, self.kf
            data = np.pad(data, (((kt - 1) // 2, kt // 2), ((kf - 1) // 2, kf // 2), (0, 0)))
        frames, bins = data.shape[0] - self.kt + 1, data.shape[1] - self.kf + 1
        if frames <= 0 or bins <= 0:  # madmom returns an empty map for input smaller than the kernel
            return np.zeros((max(frames, 0), max(bins, 0), self.features), np.float32)
        if self.kf * channels < WHOLE_PATCH_BELOW:
            patches = sliding_window_view(data, (self.kt, self.kf), axis=(0, 1))  # (frames, bins, C, kt, kf)
            patches = np.ascontiguousarray(patches.transpose(0, 1, 3, 4, 2)).reshape(frames * bins, -1)
            out = patches @ self.whole
        else:
            # (frames_in, bins, kf * C): each row's frequency patches; kernel row a reads frames a..
            rows = sliding_window_view(data, self.kf, axis=1)  # (frames_in, bins, C, kf)
            rows = np.ascontiguousarray(rows.transpose(0, 1, 3, 2)).reshape(len(data), bins, -1)
            width = rows.shape[2]
            out = rows[:frames].reshape(frames * bins, width) @ self.rows[0]
            for a in range(1, self.kt):
                out += rows[a:a + frames].reshape(frames * bins, width) @ self.rows[a]
        out = out.reshape(frames, bins, self.features)
        out += self.bias
        if self.activation_fn is not None:
            self.activation_fn(out, out=out)
        if self.stride is not None:
            out = out[::self.stride[0], ::self.stride[1]]
        return out


class MaxPool:
    """madmom's MaxPoolLayer for non-overlapping blocks (size == stride): its maximum filter read
    at every stride-th position is the maximum over each whole block, a trailing partial block
    dropped."""

    def __init__(self, layer: Any) -> None:
        self.size = tuple(layer.size)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        (p, q), (frames, bins) = self.size, data.shape[:2]
        rest = data.shape[2:]
        blocks = data[:frames // p * p, :bins // q * q].reshape(frames // p, p, bins // q, q, *rest)
        return blocks.max(axis=(1, 3))


def _layer(layer: Any) -> Callable[[np.ndarray], np.ndarray]:
    from madmom.ml.nn.layers import ConvolutionalLayer, MaxPoolLayer

    if type(layer) is ConvolutionalLayer:
        return Convolution(layer)
    if type(layer) is MaxPoolLayer and layer.axis is None and tuple(layer.size) == tuple(layer.stride):
        return MaxPool(layer)
    return layer  # madmom's own layer (batch norm, padding, averaging, ...): already vectorised


class Network:
    """A madmom NeuralNetwork with its convolution and pooling layers batched; same output."""

    def __init__(self, network: Any) -> None:
        self.source = network  # madmom's
        self.layers = [_layer(layer) for layer in network.layers]

    def __call__(self, data: np.ndarray, **kwargs: Any) -> np.ndarray:
        if isinstance(data, np.ndarray) and data.ndim < 2:  # as madmom's NeuralNetwork.process
            data = np.array(data, copy=False, ndmin=2)
        for layer in self.layers:
            data = layer(data)
        return data.squeeze()


class Ensemble:
    """A madmom NeuralNetworkEnsemble: each network batched, madmom's ensemble function over them."""

    def __init__(self, ensemble: Any) -> None:
        parallel, self.combine = ensemble.processors
        self.networks = [Network(network) for network in parallel.processors]

    def __call__(self, data: np.ndarray, **kwargs: Any) -> np.ndarray:
        return self.combine([network(data) for network in self.networks])


class FrontEnd:
    """madmom's framing -> STFT -> log-filtered spectrogram, one FFT call per block of frames."""

    def __init__(self, spectral: list[Any], sample_rate: int) -> None:
        from etl.dsp import spectra

        self.band = spectra.band_of(spectral, sample_rate)

    def __call__(self, signal: np.ndarray, **kwargs: Any) -> np.ndarray:
        from etl.dsp import spectra

        return spectra.log_filtered_spectrogram(np.asarray(signal), self.band)


def fast_pipeline(processor: Any) -> list[Callable[[Any], Any]]:
    """The steps of madmom's SequentialProcessor `processor` with its spectrogram front end and its
    networks replaced as above and every other step kept: call them in order (`run`)."""
    from madmom.audio.signal import FramedSignalProcessor, SignalProcessor
    from madmom.audio.spectrogram import LogarithmicFilteredSpectrogramProcessor
    from madmom.audio.stft import ShortTimeFourierTransformProcessor
    from madmom.ml.nn import NeuralNetwork, NeuralNetworkEnsemble

    steps = list(processor.processors)
    kinds = [type(step) for step in steps]
    front = [FramedSignalProcessor, ShortTimeFourierTransformProcessor, LogarithmicFilteredSpectrogramProcessor]
    start = next((i for i in range(len(steps) - 2) if kinds[i:i + 3] == front), None)
    if start is None or not isinstance(steps[0], SignalProcessor):
        raise ValueError(f"{type(processor).__name__}: no framing -> STFT -> log-filtered spectrogram chain found")
    sample_rate = steps[0].sample_rate
    steps[start:start + 3] = [FrontEnd(steps[start:start + 3], sample_rate)]
    fast: list[Callable[[Any], Any]] = []
    for step in steps:
        if isinstance(step, NeuralNetworkEnsemble):
            fast.append(Ensemble(step))
        elif isinstance(step, NeuralNetwork):
            fast.append(Network(step))
        else:
            fast.append(step)
    return fast


def run(steps: list[Callable[[Any], Any]], data: Any) -> Any:
    for step in steps:
        data = step(data)
    return data
