"""The batched ensemble gives madmom's activations (and so madmom's beats) on real music."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import corpus, require

require("madmom")  # installed by `make test` (shims/madmom)


@pytest.mark.parametrize("relative", ["librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg", "madmom/sample.wav"])
def test_batched_ensemble_matches_madmom(relative: str) -> None:
    from madmom.audio.signal import Signal
    from madmom.features.downbeats import (
        DBNDownBeatTrackingProcessor,
        RNNDownBeatProcessor,
    )

    from etl.stages.beats.beatnet import downbeat_processor

    data, rate = sf.read(corpus(*relative.split("/")), dtype="float32", always_2d=True)
    signal = Signal(data.mean(axis=1)[: rate * 30], sample_rate=rate, num_channels=1)
    expected = RNNDownBeatProcessor()(signal)
    actual = downbeat_processor()(signal)
    assert actual.shape == expected.shape
    # float32 rounding, carried along the recurrence: measured max 4.8e-5 (mean 3.4e-7) on 30 s of
    # Vibe Ace, 1.5e-7 on the madmom sample; the README states the same bounds.
    difference = np.abs(actual - expected)
    assert difference.max() < 6e-5 and difference.mean() < 1e-6
    tracker = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)
    assert np.array_equal(tracker(actual), tracker(expected))
