"""Crop features: BS.1770 compliance, exact synthetic checks, real recordings, group switching."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
import soundfile as sf

from etl.app import pipeline
from etl.engine.runner import RunOptions
from etl.stages import features as stage
from etl.stages.features import extractors as features
from tests.audio_files import write_click_track
from tests.helpers import corpus, require

require("essentia")  # essentia-tensorflow and librosa are installed by `make test`
require("librosa")


def decoded(path: Path) -> features.Decoded:
    return features.read(str(path))


@pytest.mark.parametrize("name, expected", [("1770-2_Comp_RelGateTest.wav", -10.0),
                                            ("1770-2_Comp_AbsGateTest.wav", -69.5)])
def test_bs1770_compliance_signals(name: str, expected: float) -> None:
    assert features.integrated_lufs(decoded(corpus("pyloudnorm", name))) == pytest.approx(expected, abs=0.1)


def test_sine_at_a_known_level(tmp_path: Path) -> None:
    rate, amplitude = 48000, 10 ** (-6 / 20)  # a 1 kHz sine peaking at -6 dBFS
    t = np.arange(rate * 10) / rate
    sine = (amplitude * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    sf.write(tmp_path / "sine.wav", np.stack([sine, sine], axis=1), rate, subtype="FLOAT")
    values = features.loudness(decoded(tmp_path / "sine.wav"))
    assert values["sample_peak_dbfs"] == pytest.approx(-6.0, abs=0.01)
    assert values["rms_dbfs"] == pytest.approx(-6.0 - 3.0103, abs=0.01)
    assert values["crest_factor_db"] == pytest.approx(3.0103, abs=0.02)
    # BS.1770-4: a 1 kHz sine peaking at 0 dBFS in each of two channels reads 0 LUFS
    assert values["loudness_integrated_lufs"] == pytest.approx(-6.0, abs=0.1)
    assert values["true_peak_dbtp"] == pytest.approx(-6.0, abs=0.1)
    assert values["loudness_range_lu"] == pytest.approx(0.0, abs=0.5)
    assert values["clipping_ratio"] == 0.0
    bands = features.band_rms(decoded(tmp_path / "sine.wav"))
    assert bands["band_low_mid_rms_dbfs"] == pytest.approx(-9.03, abs=0.3)  # 1 kHz lies in 250-2000 Hz
    assert bands["band_bass_rms_dbfs"] < -40 and bands["band_air_rms_dbfs"] < -40


def test_chord_gives_chroma_peaks_and_key(tmp_path: Path) -> None:
    rate = 44100
    t = np.arange(rate * 8) / rate
    # F# minor triad (F#, A, C#) over two octaves
    notes_hz = [185.00, 220.00, 277.18, 369.99, 440.00, 554.37]
    chord = sum(np.sin(2 * np.pi * f * t) for f in notes_hz) / len(notes_hz)
    sf.write(tmp_path / "chord.wav", (0.5 * chord).astype(np.float32), rate)
    values = features.tonal(decoded(tmp_path / "chord.wav"))
    top3 = {features.PITCH_CLASSES[i] for i in np.argsort(values["chroma_mean"])[-3:]}
    assert top3 == {"F#", "A", "C#"}
    assert (values["key_name"], values["key_camelot"]) == ("F# minor", "11A")


def test_click_track_gives_its_bpm(tmp_path: Path) -> None:
    write_click_track(tmp_path / "click.wav", 120.0, 4, seconds=20.0)
    values = features.rhythm(decoded(tmp_path / "click.wav"), bpm_grid=120.0)
    assert values["bpm_crop"] == pytest.approx(120.0, rel=0.02)
    assert values["bpm_agrees"] is True
    assert values["onset_rate_hz"] == pytest.approx(2.0, rel=0.15)


@pytest.mark.parametrize("relative", ["librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg", "stempeg/mixture.flac",
                                      "mp3_tagged/sectoid_feelings_40s_ffmpeg.mp3"])
def test_real_recordings_give_finite_plausible_values(relative: str) -> None:
    signal = decoded(corpus(*relative.split("/")))
    values = {**features.loudness(signal), **features.spectral(signal), **features.tonal(signal),
              **features.rhythm(signal, None), **features.series(signal, 64)}
    assert -40 < values["loudness_integrated_lufs"] < 0 and values["true_peak_dbtp"] >= values["sample_peak_dbfs"] - 0.01
    assert 100 < values["spectral_centroid_hz"] < 8000 and 0 <= values["spectral_flatness"] <= 1
    assert len(values["mfcc_mean"]) == 13 and all(math.isfinite(v) for v in values["mfcc_mean"])
    assert values["key_mode"] in ("major", "minor") and 40 < values["bpm_crop"] < 220
    assert all(len(values[k]) == 64 for k in ("series_loudness_lufs", "series_rms_dbfs", "series_centroid_hz"))


def rows(db: Path, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        result = con.execute(sql)
        return [dict(zip([d[0] for d in result.description], r)) for r in result.fetchall()]
    finally:
        con.close()


def test_groups_switch_on_later_and_only_that_group_is_computed(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "music"
    write_click_track(src / "click.wav", 120.0, 4, seconds=40.0)
    db = tmp_path / "etl.duckdb"

    def run(**settings: Any) -> None:
        config = pipeline.load_config(None, {"run.executor": "inline", **settings})
        pipeline.run(db, config, sources=[src], options=RunOptions(run_id=uuid.uuid4().hex[:8], executor="inline"))

    run(**{"features.tonal": "false"})
    before = rows(db, "SELECT * FROM crops_v ORDER BY crop_index")
    # key_essentia: the features stage's own key (crops_v.key_name is the key agreed with the chords stage's)
    assert before and all(r["key_essentia"] is None and r["loudness_integrated_lufs"] is not None for r in before)
    # The in-process executor runs the worker here, so the extractors can be counted.
    calls: dict[str, int] = {}
    for group in stage.GROUPS:
        def counted(*args: Any, _group: str = group, _real: Any = getattr(features, group)) -> Any:
            calls[_group] = calls.get(_group, 0) + 1
            return _real(*args)
        monkeypatch.setattr(features, group, counted)
    run()
    assert calls == {"tonal": len(before)}
    after = rows(db, "SELECT * FROM crops_v ORDER BY crop_index")
    assert all(r["key_essentia"] for r in after)
    assert [r["loudness_integrated_lufs"] for r in after] == [r["loudness_integrated_lufs"] for r in before]
    assert after[0]["track_bpm"] == pytest.approx(120.0, rel=0.01) and after[0]["meter"] == 4


def test_stem_crops_get_loudness_and_spectral_stats(tmp_path: Path) -> None:
    from tests.helpers import write_tone

    mix = write_tone(tmp_path / "mix.wav", seconds=4.0, sample_rate=44100, channels=2)
    drums = write_tone(tmp_path / "drums.wav", seconds=4.0, sample_rate=44100, channels=2, freq_hz=100.0)
    item = {"item_id": "c1", "track_id": "t1", "path": str(mix), "bpm_grid": None, "group_hashes": {},
            "stems": [{"stem": "drums", "path": str(drums)}]}
    params = stage.Params(tonal=False, rhythm=False, series=False)
    result = stage.process(item, params)
    [drum_stats] = result["stems"]
    assert drum_stats["stem"] == "drums"
    assert drum_stats["sample_peak_dbfs"] == pytest.approx(20 * math.log10(0.3), abs=0.05)
    assert drum_stats["band_bass_rms_dbfs"] > drum_stats["band_mid_rms_dbfs"] + 30  # a 100 Hz tone
    assert drum_stats["loudness_integrated_lufs"] is not None
    assert set(result["groups"]) == {"loudness", "spectral"}


# --- Numbers that do not pretend: too quiet to measure is NULL; wrong numbers are caught --------

def _all_groups(signal: features.Decoded, bpm_grid: float | None = None) -> dict[str, Any]:
    return {**features.loudness(signal), **features.spectral(signal), **features.tonal(signal),
            **features.rhythm(signal, bpm_grid), **features.series(signal, 16)}


# What "too quiet" leaves NULL in every group; the exact level stats (sample peak, RMS) stay, as they
# are measurements, not estimates (NULL only for digital silence).
_ESTIMATES = ("loudness_integrated_lufs", "loudness_range_lu", "loudness_short_term_max_lufs",
              "spectral_centroid_hz", "spectral_bandwidth_hz", "spectral_rolloff_hz", "spectral_flatness",
              "spectral_flux", "zero_crossing_rate", "mfcc_mean", "chroma_mean", "key_tonic", "key_mode",
              "key_strength", "key_name", "key_camelot", "bpm_crop", "bpm_relation", "onset_rate_hz",
              "danceability", "series_loudness_lufs", "series_rms_dbfs", "series_centroid_hz")


@pytest.mark.parametrize("level_dbfs", [None, -90.0])  # digital silence; noise at -90 dBFS
def test_silent_crops_give_null_not_made_up_values(level_dbfs: float | None) -> None:
    rate = 44100
    noise = np.random.default_rng(3).standard_normal((rate * 8, 2))
    block = np.zeros((rate * 8, 2)) if level_dbfs is None else noise * 10 ** (level_dbfs / 20)
    values = _all_groups(features.Decoded(block.astype(np.float32), rate), bpm_grid=120.0)
    assert {k: values[k] for k in _ESTIMATES} == {k: None for k in _ESTIMATES}
    if level_dbfs is None:
        assert values["sample_peak_dbfs"] is None and values["rms_dbfs"] is None
    else:
        assert values["rms_dbfs"] == pytest.approx(level_dbfs, abs=0.1)


def test_music_still_gets_every_value() -> None:
    data, rate = sf.read(corpus("stempeg", "mixture.flac"), dtype="float32", always_2d=True)
    values = _all_groups(features.Decoded(data[: rate * 10], rate), bpm_grid=117.0)
    assert {k for k in _ESTIMATES if values[k] is None} == set()
    points = values["series_loudness_lufs"] + values["series_rms_dbfs"]  # the file opens with a few silent ms
    assert sum(v is not None for v in points) >= 0.9 * len(points)


def test_quiet_passages_are_null_entries_in_the_series() -> None:
    rate = 44100
    t = np.arange(rate * 4) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    block = np.concatenate([tone, np.zeros(rate * 4)])[:, None].astype(np.float32)
    values = features.series(features.Decoded(block, rate), 8)
    assert values["series_loudness_lufs"][-1] is None and values["series_rms_dbfs"][-1] is None
    assert values["series_centroid_hz"][-1] is None
    assert values["series_loudness_lufs"][0] is not None and min(v for v in values["series_rms_dbfs"] if v) > -30


def test_a_one_frame_crop_has_no_flux() -> None:
    rate = 44100
    block = (0.3 * np.sin(2 * np.pi * 440 * np.arange(256) / rate))[:, None].astype(np.float32)
    values = features.spectral(features.Decoded(block, rate))
    assert values["spectral_flux"] is None


def test_true_peak_between_samples() -> None:
    # A sine at fs/4 with a 45° phase is sampled at ±0.7071 of its amplitude: the true peak lies
    # between the samples, 3.01 dB above the sample peak.
    rate, amplitude = 48000, 0.5
    n = np.arange(rate * 2)
    sine = amplitude * np.sin(2 * np.pi * n / 4 + np.pi / 4)
    # Faded in and out: an abrupt start would itself overshoot between samples (Gibbs), by 0.1 dB.
    sine *= np.clip(np.minimum(n, n[::-1]) / (0.05 * rate), 0, 1)
    signal = features.Decoded(np.stack([sine, sine], axis=1).astype(np.float32), rate)
    values = features.loudness(signal)
    assert values["sample_peak_dbfs"] == pytest.approx(20 * math.log10(amplitude) - 3.0103, abs=0.01)
    assert values["true_peak_dbtp"] == pytest.approx(20 * math.log10(amplitude), abs=0.1)


@pytest.mark.parametrize("relative", ["librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg", "stempeg/mixture.flac"])
def test_spectral_stats_equal_librosa_on_real_music(relative: str) -> None:
    import librosa

    data, rate = sf.read(corpus(*relative.split("/")), dtype="float32", always_2d=True)
    signal = features.Decoded(data[: rate * 15], rate)
    values = features.spectral(signal)
    y, kw = signal.mono, {"sr": rate, "n_fft": features.N_FFT, "hop_length": features.HOP}
    # Each is librosa's per-frame value averaged over the frames: equal to 0.01 % (float rounding).
    expected = {"spectral_centroid_hz": librosa.feature.spectral_centroid(y=y, **kw).mean(),
                "spectral_bandwidth_hz": librosa.feature.spectral_bandwidth(y=y, **kw).mean(),
                "spectral_rolloff_hz": librosa.feature.spectral_rolloff(y=y, roll_percent=0.85, **kw).mean(),
                "zero_crossing_rate": librosa.feature.zero_crossing_rate(
                    y, frame_length=features.N_FFT, hop_length=features.HOP).mean()}
    for name, value in expected.items():
        assert values[name] == pytest.approx(float(value), rel=1e-4), name


def test_multichannel_crops_are_metered_per_bs1770(tmp_path: Path) -> None:
    rate = 48000
    t = np.arange(rate * 5) / rate
    sine = (0.25 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    front, surround = np.zeros((len(t), 6), np.float32), np.zeros((len(t), 6), np.float32)
    front[:, 0] = front[:, 1] = sine       # L, R
    surround[:, 4] = surround[:, 5] = sine  # Ls, Rs (5.1 in WAV order: L R C LFE Ls Rs)
    lfe = np.zeros((len(t), 6), np.float32)
    lfe[:, 0] = lfe[:, 1] = lfe[:, 3] = sine  # the LFE channel is not metered
    sf.write(tmp_path / "front.wav", front, rate, subtype="FLOAT")
    values = {name: features.loudness(features.Decoded(block, rate))
              for name, block in (("front", decoded(tmp_path / "front.wav").stereo), ("surround", surround),
                                  ("lfe", lfe))}
    assert values["front"]["loudness_integrated_lufs"] == pytest.approx(20 * math.log10(0.25), abs=0.1)
    gain = values["surround"]["loudness_integrated_lufs"] - values["front"]["loudness_integrated_lufs"]
    assert gain == pytest.approx(10 * math.log10(1.41), abs=0.02)  # surround channels weigh 1.41
    assert values["lfe"]["loudness_integrated_lufs"] == pytest.approx(values["front"]["loudness_integrated_lufs"],
                                                                      abs=0.01)
    assert values["surround"]["loudness_range_lu"] is not None


def test_bpm_relation_recognises_octave_errors() -> None:
    assert [features.bpm_relation(crop, 95.0) for crop in (95.0, 190.0, 47.5, 285.0, 31.7, 120.0, 97.0)] == \
        ["same", "double", "half", "triple", "third", "unrelated", "same"]
    assert features.bpm_relation(None, 95.0) is None and features.bpm_relation(95.0, None) is None


def test_crops_v_bpm_is_the_grid_tempo_over_the_crop(tmp_path: Path) -> None:
    src = tmp_path / "music"
    write_click_track(src / "click.wav", 120.0, 4, seconds=40.0)
    db = tmp_path / "etl.duckdb"
    config = pipeline.load_config(None, {"run.executor": "inline", "features.loudness": "false",
                                         "features.spectral": "false", "features.tonal": "false",
                                         "features.series": "false"})
    pipeline.run(db, config, sources=[src], options=RunOptions(run_id="bpm", executor="inline"))
    con = duckdb.connect(str(db))
    con.execute("UPDATE crop_features SET bpm_crop = 240.0")  # an octave error of the crop's own estimate
    con.close()
    for crop in rows(db, "SELECT c.bpm AS grid, v.bpm, v.bpm_crop, v.bpm_relation FROM crops_v v JOIN crops c USING (crop_id)"):
        assert crop["bpm"] == crop["grid"] == pytest.approx(120.0, rel=0.005)
        assert crop["bpm_relation"] == "same"  # computed by the stage, before the edit
