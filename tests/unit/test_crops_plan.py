"""Where crops go: beat-aligned spans on a known grid, sequential spans, dropping short tails."""

from __future__ import annotations

import numpy as np
import pytest

from etl.engine.errors import ConfigError, SkipItem
from etl.stages.crops import Params, SpanReader, fade, plan_spans

RATE = 1000  # samples per second keeps the arithmetic readable


def grid(bars: int, bar_s: float = 2.0, first_s: float = 1.0) -> list[float]:
    return [first_s + i * bar_s for i in range(bars)]


def test_beat_aligned_spans_start_on_phrase_downbeats() -> None:
    downbeats = grid(40)  # 40 bars of 2 s from t = 1 s
    spans = plan_spans(100_000, RATE, 0, downbeats, Params(bars=8, bars_multiple=4))
    assert [s.start for s in spans] == [1000, 17000, 33000, 49000, 65000]
    assert all(s.end - s.start == 16000 and s.n_bars == 8 for s in spans)


def test_overlap_and_leading_silence() -> None:
    downbeats = grid(40)
    spans = plan_spans(100_000, RATE, 4_000, downbeats, Params(bars=8, bars_multiple=4, overlap=0.5))
    # the first downbeat after 4 s is bar 2; the next phrase boundary is bar 4 (t = 9 s)
    assert spans[0].start == 9000
    assert [b.start - a.start for a, b in zip(spans, spans[1:])] == [8000] * (len(spans) - 1)


def test_tail_shorter_than_three_quarters_is_dropped_and_grid_is_extended() -> None:
    downbeats = grid(10)  # last downbeat at 19 s; audio runs to 25 s
    spans = plan_spans(25_000, RATE, 0, downbeats, Params(bars=4, bars_multiple=1))
    # bars 0-3, 4-7, then 8..: extended by the median bar to 25 s (6 s of 8: kept, 75 %)
    assert [(s.start, s.end) for s in spans] == [(1000, 9000), (9000, 17000), (17000, 25000)]
    spans = plan_spans(22_000, RATE, 0, downbeats, Params(bars=4, bars_multiple=1))  # 5 s of 8: dropped
    assert [(s.start, s.end) for s in spans] == [(1000, 9000), (9000, 17000)]


def test_seconds_snap_to_the_nearest_downbeat() -> None:
    downbeats = grid(40)
    spans = plan_spans(100_000, RATE, 0, downbeats, Params(seconds=9.2, bars_multiple=1))
    assert all(s.end - s.start == 10000 and s.n_bars == 5 for s in spans[:-1])
    spans = plan_spans(100_000, RATE, 0, downbeats, Params(samples=7100, bars_multiple=1))
    assert spans[0].end - spans[0].start == 8000


def test_sequential_needs_no_grid() -> None:
    spans = plan_spans(35_000, RATE, 500, [], Params(mode="sequential", seconds=10))
    assert [(s.start, s.end) for s in spans] == [(500, 10500), (10500, 20500), (20500, 30500)]
    spans = plan_spans(35_000, RATE, 0, [], Params(mode="sequential", seconds=10, overlap=0.5))
    assert [s.start for s in spans] == [0, 5000, 10000, 15000, 20000, 25000]


def test_beat_aligned_without_grid_is_skipped() -> None:
    with pytest.raises(SkipItem, match="beat grid"):
        plan_spans(10_000, RATE, 0, [1.0], Params())


@pytest.mark.parametrize("bad", [{"mode": "random"}, {"format": "ogg"}, {"overlap": 1.0}, {"bars": 0}])
def test_bad_parameters_are_config_errors(bad) -> None:
    with pytest.raises(ConfigError):
        Params(**bad)


def test_span_reader_decodes_overlapping_spans_once(tmp_path) -> None:
    import soundfile as sf

    signal = np.arange(20_000, dtype=np.float32) / 20_000
    sf.write(tmp_path / "ramp.wav", signal, RATE, subtype="FLOAT")
    reader = SpanReader(str(tmp_path / "ramp.wav"))
    for start, end in [(1000, 5000), (3000, 7000), (12000, 15000)]:
        assert np.allclose(reader.read(start, end)[:, 0], signal[start:end])
    reader.close()


def test_fades_are_short_raised_cosines() -> None:
    block = np.ones((1000, 2), dtype=np.float32)
    out = fade(block, RATE, 10.0)
    assert out[0, 0] == 0 and out[-1, 1] == 0 and np.all(out[10:-10] == 1)
    assert np.all(np.diff(out[:10, 0]) > 0)
