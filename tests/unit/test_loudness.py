"""The EBU R128 meter's parts that need no audio files (the compliance signals are in
tests/integration/test_features.py)."""

from __future__ import annotations

import numpy as np
import pytest

from etl.dsp import loudness


def test_k_weighting_at_48k_is_the_published_filter() -> None:
    # ITU-R BS.1770-4, tables 1 and 2: (b0, b1, b2, a0, a1, a2) of each stage at 48 kHz
    published = [[1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
                 [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]]
    assert loudness.k_weighting(48000) == pytest.approx(np.array(published), abs=1e-8)


def test_windows_are_full_windows_every_hop_from_the_first_sample() -> None:
    running = np.concatenate([[0.0], np.cumsum(np.arange(9.0))])
    assert loudness.window_means(running, 4, 3).tolist() == [1.5, 4.5]  # samples 0-3 and 3-6; 6-8 is short


def test_gating_and_range() -> None:
    level = loudness.to_power(-20.0)
    blocks = np.array([level] * 8 + [level / 1000] * 2 + [0.0] * 5)  # -20, -50 (under the relative gate), silence
    assert loudness.integrated(blocks) == pytest.approx(-20.0)
    assert loudness.integrated(np.zeros(5)) is None
    assert loudness.loudness_range(np.array([level] * 10)) == pytest.approx(0.0)
    assert loudness.loudness_range(np.array([])) is None


def test_channel_weights_of_every_layout() -> None:
    assert loudness.channel_weights(1).tolist() == [1.0]
    assert loudness.channel_weights(2).tolist() == [1.0, 1.0]
    assert loudness.channel_weights(6).tolist() == [1.0, 1.0, 1.0, 0.0, 1.41, 1.41]  # L R C LFE Ls Rs
    assert loudness.channel_weights(5).tolist() == [1.0, 1.0, 1.0, 1.41, 1.41]


def test_too_quiet_is_one_definition() -> None:
    assert loudness.too_quiet(np.zeros(10))
    assert loudness.too_quiet(np.full(10, loudness.to_power(-75.0)))
    assert not loudness.too_quiet(np.full(10, loudness.to_power(-60.0)))
    assert loudness.too_quiet(np.array([]))  # shorter than one block: nothing measured
