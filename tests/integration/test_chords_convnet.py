"""The chords stage's batched networks (etl/stages/chords/convnet.py) against madmom's own: each
layer type on random data, the spectrogram front ends bit for bit, and the chord features, chord
labels and key probabilities on real music."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import corpus, require

require("madmom")  # installed by `make test` (shims/madmom)

from madmom.ml.nn.activations import elu, linear, relu  # noqa: E402
from madmom.ml.nn.layers import ConvolutionalLayer, MaxPoolLayer  # noqa: E402

from etl.stages.chords import convnet  # noqa: E402

REAL = [("librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg", 0.0, 30.0),
        ("librosa_data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg", 20.0, 10.0),
        ("librosa_data/Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg", 40.0, 10.0),
        ("madmom/sample.wav", 0.0, 2.8)]


def _conv_layer(rng: np.random.Generator, channels: int, features: int, kernel: tuple[int, int], pad: str,
                stride: tuple[int, int] = (1, 1), activation=linear) -> ConvolutionalLayer:
    weights = rng.standard_normal((channels, features, *kernel)).astype(np.float32)
    return ConvolutionalLayer(weights, np.array([0.25], dtype=np.float32), stride=stride, pad=pad,
                              activation_fn=activation)


@pytest.mark.parametrize("channels, features, kernel, pad, stride, activation", [
    (1, 8, (3, 3), "valid", (1, 1), linear),      # one input channel: the whole-kernel patch product
    (1, 6, (5, 5), "valid", 1, elu),
    (12, 10, (3, 3), "valid", 1, relu),      # kernel rows as separate products
    (8, 5, (9, 12), "valid", 1, linear),     # even kernel width (madmom shifts its margins)
    (6, 4, (2, 4), "valid", 1, linear),      # even in both directions
    (3, 4, (3, 5), "same", 1, relu),
    (12, 4, (4, 2), "same", 1, linear),      # 'same' with even sizes: scipy's centring
    (5, 7, (3, 3), "valid", (2, 3), linear),  # strided output
])
def test_convolution_is_madmoms(channels: int, features: int, kernel: tuple[int, int], pad: str,
                                stride: tuple[int, int] | int,
                                activation) -> None:
    rng = np.random.default_rng(channels * 100 + kernel[1])
    layer = _conv_layer(rng, channels, features, kernel, pad, stride, activation)
    data = rng.standard_normal((23, 17, channels)).astype(np.float32)
    expected = layer(data if channels > 1 else data[:, :, 0])
    actual = convnet.Convolution(layer)(data if channels > 1 else data[:, :, 0])
    assert actual.shape == expected.shape and actual.dtype == expected.dtype == np.float32
    # float32 sums in another order: within a few units in the last place of the sums' terms
    assert np.allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.sqrt(channels * kernel[0] * kernel[1]))


@pytest.mark.parametrize("size, shape", [((1, 2), (7, 13, 3)), ((2, 2), (9, 11, 4)), ((2, 2), (8, 10)),
                                         ((3, 2), (10, 7, 2))])
def test_max_pooling_is_madmoms(size: tuple[int, int], shape: tuple[int, ...]) -> None:
    data = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    layer = MaxPoolLayer(size)
    assert np.array_equal(convnet.MaxPool(layer)(data), layer(data))


def _real(relative: str, start_s: float, seconds: float):
    from madmom.audio.signal import Signal

    from etl.dsp import audio

    block, rate = sf.read(corpus(*relative.split("/")), dtype="float32", always_2d=True)
    block = block[int(start_s * rate):int((start_s + seconds) * rate)]
    return Signal(audio.resample(block.mean(axis=1), rate, 44100), sample_rate=44100, num_channels=1)


@pytest.fixture(scope="module")
def processors():
    from madmom.features.chords import CNNChordFeatureProcessor, CRFChordRecognitionProcessor
    from madmom.features.key import CNNKeyRecognitionProcessor

    return CNNChordFeatureProcessor(), CRFChordRecognitionProcessor(), CNNKeyRecognitionProcessor()


@pytest.mark.parametrize("relative, start_s, seconds", REAL)
def test_front_ends_are_madmoms_bit_for_bit(processors, relative: str, start_s: float, seconds: float) -> None:
    signal = _real(relative, start_s, seconds)
    for madmom_chain in (processors[0], processors[2]):  # chord features (10 fps), key (5 fps)
        expected = signal
        for step in madmom_chain.processors[:4]:  # signal, frames, STFT, log-filtered spectrogram
            expected = step(expected)
        fast = convnet.fast_pipeline(madmom_chain)
        actual = fast[1](fast[0](signal))
        assert actual.dtype == expected.dtype == np.float32 and np.array_equal(actual, np.asarray(expected))


@pytest.mark.slow  # madmom's own layers take ~0.4 s per second of audio
@pytest.mark.parametrize("relative, start_s, seconds", REAL)
def test_stage_features_labels_and_key_are_madmoms(processors, relative: str, start_s: float,
                                                   seconds: float) -> None:
    from etl.stages import chords

    chord_features, decode, key = processors
    stage = chords.recogniser(chords.Params())
    signal = _real(relative, start_s, seconds)
    # The chord CNN's own output (frames, 13, 128) before madmom's superframe averaging. Measured on
    # 20-30 s windows of the five librosa_data recordings, stempeg's mixture and madmom's sample:
    # at most 1.43e-6 apart (values up to 3.6: a few float32 units in the last place; mean 2e-8).
    padded = convnet.run(chord_features.processors[:5], signal)  # madmom's spectrogram, zero-padded
    expected_net, actual_net = chord_features.processors[5](padded), stage.chord_features[3](padded)
    assert actual_net.shape == expected_net.shape
    difference = np.abs(actual_net - expected_net)
    assert difference.max() < 5e-6 and difference.mean() < 1e-7
    # The features the CRF reads (madmom's superframes and average of madmom's network output, i.e.
    # what CNNChordFeatureProcessor returns): measured at most 3.0e-7 apart.
    expected, actual = convnet.run(chord_features.processors[6:], expected_net), stage.features(signal)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert np.abs(actual - expected).max() < 1e-6
    assert np.array_equal(decode(actual), decode(expected))  # the same chords, to the frame
    assert np.array_equal(stage.chords(signal), decode(expected))
    # Key probabilities: measured at most 2.7e-7 apart (4.8e-6 relative); the same key.
    expected_key, actual_key = key(signal), stage.key_probabilities(signal)
    assert actual_key.shape == expected_key.shape == (1, 24)
    assert np.abs(actual_key - expected_key).max() < 1e-6
    assert np.allclose(actual_key, expected_key, rtol=2e-5, atol=0)
    assert actual_key.argmax() == expected_key.argmax()


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")
def test_short_signals_behave_as_madmoms(processors) -> None:
    """A signal too short for the key network's pooling gives NaN probabilities in madmom (the mean
    of an empty map); the batched network gives the same shapes, and NaN where madmom's does."""
    from madmom.audio.signal import Signal

    noise = np.random.default_rng(3).standard_normal(2 * 44100).astype(np.float32) * 0.1
    for seconds in (0.05, 0.5, 1.0, 1.5, 2.0):
        signal = Signal(noise[:int(seconds * 44100)], sample_rate=44100, num_channels=1)
        for madmom_chain in (processors[0], processors[2]):
            expected = madmom_chain(signal)
            actual = convnet.run(convnet.fast_pipeline(madmom_chain), signal)
            assert actual.shape == expected.shape
            assert np.array_equal(np.isnan(actual), np.isnan(expected))
            assert np.allclose(actual[~np.isnan(actual)], expected[~np.isnan(expected)], atol=1e-6)


def test_a_crop_too_short_for_the_key_network_has_no_key_not_nan() -> None:
    """NaN probabilities are nothing measured: the key columns are NULL, not the max of NaNs."""
    from etl.stages import chords

    data, rate = sf.read(corpus("madmom", "sample.wav"), dtype="float32")
    mono = data[: int(1.0 * rate)]
    result = chords.recognise(mono, 1.0, [], chords.Params())
    assert result["key_madmom"] is None and result["key_madmom_scores"] is None
    assert result["key_madmom_confidence"] is None and result["key_madmom_camelot"] is None
    assert isinstance(result["chords"], list)
