"""The beats stage's fast paths give madmom's results on real music: the vectorised spectra, the
batched network (also carried across chunks) and the compiled Viterbi decoding."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import corpus, require

require("madmom")  # installed by `make test` (shims/madmom)

VIBE_ACE = "librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg"


def _signal(relative: str, seconds: float = 30.0) -> tuple[np.ndarray, int]:
    data, rate = sf.read(corpus(*relative.split("/")), dtype="float32", always_2d=True)
    return data.mean(axis=1)[: int(rate * seconds)], rate


@pytest.mark.parametrize("relative", [VIBE_ACE, "madmom/sample.wav"])
def test_vectorised_spectra_are_madmoms(relative: str) -> None:
    from madmom.audio.signal import Signal
    from madmom.features.downbeats import RNNDownBeatProcessor

    from etl.dsp import spectra

    mono, rate = _signal(relative)
    assert rate == 44100
    pre_processor = RNNDownBeatProcessor().processors[0]
    expected = pre_processor(Signal(mono, sample_rate=rate, num_channels=1))
    actual = spectra.features(mono, spectra.bands_of(pre_processor, rate))
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    # Measured bit-identical here (the same float64 window products, the same pocketfft behind
    # scipy.fft and scipy.fftpack, the same complex64 rounding); the bound allows another FFT build.
    assert np.allclose(actual, expected, rtol=1e-6, atol=1e-6)


# Bounds on |batched - madmom| (max, mean), measured on each track under every OpenBLAS kernel and
# numpy SIMD level an x86 machine may pick (see the test), with twice the largest or more as margin.
ENSEMBLE_BOUNDS = {VIBE_ACE: (4e-4, 3e-6), "madmom/sample.wav": (1e-6, 3e-8)}


@pytest.mark.parametrize("relative", list(ENSEMBLE_BOUNDS))
def test_batched_ensemble_matches_madmom(relative: str) -> None:
    from madmom.audio.signal import Signal
    from madmom.features.downbeats import (
        DBNDownBeatTrackingProcessor,
        RNNDownBeatProcessor,
    )

    from etl.stages.beats.beatnet import downbeat_processor

    mono, rate = _signal(relative)
    signal = Signal(mono, sample_rate=rate, num_channels=1)
    expected = RNNDownBeatProcessor()(signal)
    actual = downbeat_processor()(mono)
    assert actual.shape == expected.shape
    # float32 rounding (matrix products summed in another order, numpy's own exp and tanh), carried
    # along the recurrence: its size depends on the kernels the CPU gets. On 30 s of Vibe Ace, max
    # (mean): OpenBLAS SkylakeX kernels (AVX512) 1.4e-5 (1.1e-7), Haswell 7.7e-5 (5.7e-7), Nehalem
    # 5.8e-5, SandyBridge 1.8e-4 (1.3e-6), Prescott 1.5e-4 (1.1e-6); Haswell with numpy's AVX2 loops
    # (NPY_DISABLE_CPU_FEATURES="AVX512_ICL X86_V4", an AVX512 CPU whose OS does not enable it)
    # 1.6e-4 (1.1e-6); at 1 and 2 BLAS threads each, all at frame 4248. madmom's own processor
    # differs from itself by up to 1.2e-4 (mean 9e-7) across the same settings, so a tighter bound
    # would test the BLAS build, not this code. An error in it shows far above: the output gate's
    # peephole left out gives 0.5 (mean 2e-2), one layer's biases 0.1 % off a mean of 4.9e-4 here and
    # a max of 9e-4 on the madmom sample (which stays within 1.8e-7 under every setting above).
    # etl/stages/beats/README.md states the same bounds.
    max_bound, mean_bound = ENSEMBLE_BOUNDS[relative]
    difference = np.abs(actual - expected)
    assert difference.max() < max_bound and difference.mean() < mean_bound, (difference.max(), difference.mean())
    tracker = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)
    assert np.array_equal(tracker(actual), tracker(expected))


def test_forward_state_carries_across_chunks_exactly() -> None:
    """A chunk that starts from the carried forward state gives the whole pass's outputs when its
    backward direction sees the same future (here: both run to the end of the audio)."""
    from etl.stages.beats.beatnet import downbeat_processor

    network = downbeat_processor()
    mono, rate = _signal(VIBE_ACE, 20.0)
    features = network.features(mono)
    whole, _ = network.ensemble(features)
    split = 1234
    first, carry = network.ensemble(features, None, split)
    second, _ = network.ensemble(features[split:], carry, None)
    assert np.allclose(first, whole, atol=1e-7)
    # the same equations from the same state: float32 rounding of the input products only
    assert np.abs(second - whole[split:]).max() < 1e-5
    fresh, _ = network.ensemble(features[split:])  # without the carried state the start differs
    assert np.abs(fresh - whole[split:]).max() > 1e-3


@pytest.mark.parametrize("meters, max_bpm", [((3, 4), 215.0), ((4,), 100.0)])
def test_compiled_viterbi_is_madmoms(meters: tuple[int, ...], max_bpm: float) -> None:
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor

    from etl.stages.beats.beatnet import downbeat_processor
    from etl.stages.beats.viterbi import compile_tracker

    mono, _ = _signal(VIBE_ACE, 40.0)
    activations = downbeat_processor()(mono)

    def tracker() -> DBNDownBeatTrackingProcessor:
        return DBNDownBeatTrackingProcessor(beats_per_bar=list(meters), max_bpm=max_bpm, fps=100)

    reference, compiled = tracker(), compile_tracker(tracker())
    for madmom_hmm, compiled_hmm in zip(reference.hmms, compiled.hmms):
        path, log_probability = madmom_hmm.viterbi(activations)
        compiled_path, compiled_log_probability = compiled_hmm.viterbi(activations)
        assert np.array_equal(compiled_path, path) and compiled_path.dtype == path.dtype
        assert compiled_log_probability == log_probability  # bit for bit: the same additions in order
    beats = compiled(activations)
    assert len(beats) > 40 and np.array_equal(beats, reference(activations))


@pytest.mark.slow
def test_segments_follow_a_whole_track_pass_on_real_music() -> None:
    """133 s of real music in 30 s segments: the beats of a single pass over the whole track."""
    import mir_eval

    from etl.stages import beats

    path = corpus("librosa_data", "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg")
    info = sf.info(path)
    whole = beats.find_beats(str(path), info.duration, info.samplerate, beats.Params(segment_s=1000.0))
    pieces = beats.find_beats(str(path), info.duration, info.samplerate, beats.Params(segment_s=30.0))
    agreement = mir_eval.beat.f_measure(np.array(whole.beat_times_s), np.array(pieces.beat_times_s),
                                        f_measure_threshold=0.07)
    assert agreement > 0.98, agreement
