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

from etl.engine import pipeline
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
    assert before and all(r["key_name"] is None and r["loudness_integrated_lufs"] is not None for r in before)
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
    assert all(r["key_name"] for r in after)
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
