"""Beat grids on annotated real audio and exact click tracks; the crops cut from them."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
import soundfile as sf

from etl.app import pipeline
from etl.stages import beats, crops
from tests.audio_files import write_click_track
from tests.helpers import corpus, require, rows, run_stages, source_of, write_tone

require("madmom")  # installed by `make test` (shims/madmom)

FRAME_S = 0.01  # madmom's beat networks run at 100 frames per second


def test_tempo_and_beats_on_the_annotated_recording() -> None:
    import mir_eval
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor

    path = corpus("madmom", "sample.wav")
    reference = np.loadtxt(corpus("madmom", "sample.beats"))[:, 0]
    params = beats.Params(min_duration_s=1.0)
    info = sf.info(path)
    grid = beats.process({"item_id": "s", **source_of(str(path)), "duration_s": info.duration,
                          "sample_rate": info.samplerate}, params)
    assert any(abs(grid["bpm"] / tempo - 1) <= 0.04 for tempo in (87.5, 175.0)), grid["bpm"]
    ours = mir_eval.beat.f_measure(reference, np.array(grid["beat_times_s"]), f_measure_threshold=0.07)
    bare = DBNBeatTrackingProcessor(fps=100)(RNNBeatProcessor()(str(path)))  # the naive madmom calls
    baseline = mir_eval.beat.f_measure(reference, bare, f_measure_threshold=0.07)
    assert ours >= baseline - 1e-9, (ours, baseline)
    assert ours > 0.6  # sanity: most beats of a 2.8 s excerpt found within 70 ms


@pytest.mark.parametrize("bpm, meter", [(120.0, 4), (100.0, 3)])
def test_click_tracks_give_exact_grids_and_crops(tmp_path: Path, bpm: float, meter: int) -> None:
    src = tmp_path / "music"
    clicks = write_click_track(src / "click.wav", bpm, meter, seconds=40.0)
    db = tmp_path / "etl.duckdb"
    run_stages(db, src, ["ingest", "beats", "crops"])
    [grid] = rows(db, "SELECT * FROM beat_grids")
    assert grid["meter"] == meter and grid["tempo_steady"]
    assert grid["bpm"] == pytest.approx(bpm, rel=0.01)
    true_downbeats = np.array([t for t, p in clicks if p == 1])
    click_times = np.array([t for t, _ in clicks])
    cut = rows(db, "SELECT * REPLACE (artifact_path(path) AS path) FROM crops ORDER BY crop_index")
    assert len(cut) >= 2
    bar_s = 60.0 / bpm * meter
    for crop in cut:
        assert np.min(np.abs(true_downbeats - crop["start_s"])) <= FRAME_S + 1e-6
        assert crop["n_bars"] == 8
        assert crop["duration_s"] == pytest.approx(8 * bar_s, abs=2 * FRAME_S)
        expected = click_times[(click_times >= crop["start_s"] - FRAME_S) & (click_times < crop["end_s"] - FRAME_S)]
        assert len(crop["beat_times_s"]) == len(expected) == 8 * meter
        assert np.allclose(crop["beat_times_s"], expected - crop["start_s"], atol=2 * FRAME_S)
        assert max(crop["beat_positions"]) == meter and crop["beat_positions"][0] == 1
        assert len(crop["downbeat_times_s"]) == 8
        info = sf.info(crop["path"])
        assert info.format == "FLAC" and info.samplerate == 44100
        assert info.frames == crop["end_sample"] - crop["start_sample"]


def test_silence_noise_and_short_tracks_are_skipped_with_reasons(tmp_path: Path) -> None:
    src = tmp_path / "music"
    src.mkdir()
    sf.write(src / "silence.wav", np.zeros(44100 * 10, dtype=np.float32), 44100)
    sf.write(src / "noise.wav", (0.3 * np.random.default_rng(1).standard_normal(44100 * 10)).astype(np.float32), 44100)
    write_tone(src / "short.wav", seconds=2.0)
    db = tmp_path / "etl.duckdb"
    run_stages(db, src, ["ingest", "beats"])
    reasons = {Path(r["path"]).name: (r["status"], r["last_error"]) for r in rows(
        db, "SELECT p.path, s.status, s.last_error FROM stage_items s JOIN track_paths_v p ON p.track_id = s.item_id "
            "WHERE s.stage = 'beats'")}
    assert reasons["silence.wav"][0] == "skipped" and "silence" in reasons["silence.wav"][1]
    assert reasons["noise.wav"][0] == "skipped" and "no clear pulse" in reasons["noise.wav"][1]
    assert reasons["short.wav"][0] == "skipped" and "too short" in reasons["short.wav"][1]


def test_sequential_crops_without_a_grid(tmp_path: Path) -> None:
    src = tmp_path / "music"
    write_tone(src / "tone.wav", seconds=10.5, sample_rate=22050)
    db = tmp_path / "etl.duckdb"
    run_stages(db, src, ["ingest", "beats", "crops"], **{"crops.mode": "sequential", "crops.seconds": "2",
                                                         "crops.format": "wav", "crops.sample_rate": "16000"})
    assert rows(db, "SELECT status FROM stage_items WHERE stage = 'beats'") == [{"status": "skipped"}]
    cut = rows(db, "SELECT * REPLACE (artifact_path(path) AS path) FROM crops ORDER BY crop_index")
    assert len(cut) == 5
    for crop in cut:
        assert crop["beat_times_s"] == [] and crop["n_bars"] is None and crop["bpm"] is None
        info = sf.info(crop["path"])
        assert (info.format, info.samplerate) == ("WAV", 16000)
        assert info.frames == pytest.approx(2.0 * 16000, abs=2)


def test_rerun_after_a_kill_and_changed_parameters(tmp_path: Path) -> None:
    src = tmp_path / "music"
    write_click_track(src / "click.wav", 120.0, 4, seconds=40.0)
    db = tmp_path / "etl.duckdb"
    run_stages(db, src, ["ingest", "beats", "crops"])
    before = rows(db, "SELECT crop_id, artifact_path(path) AS path FROM crops ORDER BY crop_id")
    folder = Path(before[0]["path"]).parent
    files = sorted(p.name for p in folder.iterdir())
    # A run killed halfway through this track: its claim and a half-written file are left behind.
    (folder / f".{before[0]['crop_id']}.flac.tmp-99999").write_bytes(b"half")
    con = duckdb.connect(str(db))
    con.execute("UPDATE stage_items SET status = 'running' WHERE stage = 'crops'")
    con.close()
    run_stages(db, src, ["crops"])
    assert rows(db, "SELECT crop_id, artifact_path(path) AS path FROM crops ORDER BY crop_id") == before
    assert sorted(p.name for p in folder.iterdir()) == files
    # New crop parameters: exactly this track's crops are remade; superseded rows and files go.
    status = {r["stage"]: r for r in pipeline.status(db, pipeline.load_config(None, {"crops.bars": "4"}))}
    assert status["crops"]["pending"] == 1 and status["beats"]["pending"] == 0
    run_stages(db, src, ["crops"], **{"crops.bars": "4"})
    after = rows(db, "SELECT crop_id, artifact_path(path) AS path, n_bars FROM crops")
    assert {r["n_bars"] for r in after} == {4} and len(after) > len(before)
    assert not {r["crop_id"] for r in after} & {r["crop_id"] for r in before}
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(r["path"]).name for r in after)


def test_long_tracks_are_tracked_in_segments(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    write_click_track(path, 120.0, 4, seconds=70.0)
    # No init_worker first: find_beats loads madmom's networks itself when no initializer ran.
    whole = beats.find_beats(str(path), 70.0, 44100, beats.Params(segment_s=1000.0))
    pieces = beats.find_beats(str(path), 70.0, 44100, beats.Params(segment_s=20.0, margin_s=5.0))
    assert len(pieces.beat_times_s) == len(whole.beat_times_s)
    assert np.allclose(pieces.beat_times_s, whole.beat_times_s, atol=FRAME_S + 1e-6)


def test_stem_crops_are_cut_beside_the_mix(tmp_path: Path) -> None:
    mix = tmp_path / "mix.wav"
    clicks = write_click_track(mix, 120.0, 4, seconds=20.0)
    drums = write_tone(tmp_path / "drums.wav", seconds=20.0, sample_rate=44100)
    vocals = write_tone(tmp_path / "vocals.wav", seconds=20.0, sample_rate=44100, freq_hz=660)
    times = [t for t, _ in clicks]
    positions = [p for _, p in clicks]
    item = {"item_id": "ab" + "0" * 62, **source_of(str(mix)), "sample_rate": 44100, "frames": 20 * 44100,
            "duration_s": 20.0, "beat_times_s": times, "beat_positions": positions, "bpm": 120.0,
            "artifact_dir": str(tmp_path / "out"),
            "stems": [{"stem": "drums", "path": str(drums)}, {"stem": "vocals", "path": str(vocals)}]}
    result = crops.process(item, crops.Params(bars=4, skip_stems=("vocals",)))
    assert len(result["crops"]) == 2
    assert {r["stem"] for r in result["stems"]} == {"drums"}
    for crop, stem in zip(result["crops"], result["stems"]):
        assert stem["crop_id"] == crop["crop_id"]
        assert sf.info(stem["path"]).frames == sf.info(crop["path"]).frames
        assert Path(stem["path"]).parent == Path(crop["path"]).parent


def test_undecodable_containers_fail_clearly(tmp_path: Path) -> None:
    from etl.engine.errors import BadInput
    from tests.audio_files import write_m4a

    path = write_m4a(tmp_path / "aac.m4a", seconds=6.0)
    with pytest.raises(BadInput, match="cannot decode"):
        beats.process({"item_id": "m", **source_of(str(path)), "duration_s": 6.0, "sample_rate": 44100}, beats.Params())
    item = {"item_id": "cd" + "0" * 62, **source_of(str(path)), "sample_rate": 44100, "frames": None, "duration_s": 6.0,
            "artifact_dir": str(tmp_path / "out")}
    with pytest.raises(BadInput, match="cannot decode"):
        crops.process(item, crops.Params(mode="sequential", seconds=2))


@pytest.mark.parametrize("bpm", [170.0, 123.4])
def test_steady_tempo_reads_within_half_a_percent(tmp_path: Path, bpm: float) -> None:
    # At 100 frames/s, 60 / median interval moves in ~2 % steps at 170 BPM (171.43 or 166.67).
    src = tmp_path / "music"
    write_click_track(src / "click.wav", bpm, 4, seconds=40.0)
    db = tmp_path / "etl.duckdb"
    run_stages(db, src, ["ingest", "beats", "crops"])
    [grid] = rows(db, "SELECT * FROM beat_grids")
    assert grid["bpm"] == pytest.approx(bpm, rel=0.005) and grid["bpm_method"] == "fit"
    cut = rows(db, "SELECT bpm, bpm_method FROM crops")
    assert cut and all(c["bpm"] == pytest.approx(bpm, rel=0.005) and c["bpm_method"] == "fit" for c in cut)
    [track] = rows(db, "SELECT bpm, meter, bpm_confidence FROM tracks_v")
    assert track["bpm"] == grid["bpm"] and track["meter"] == 4 and track["bpm_confidence"] > 0.9


def test_tempo_of_an_unsteady_grid_is_the_median() -> None:
    times = np.cumsum(np.concatenate([[0.5], np.random.default_rng(0).uniform(0.3, 0.7, 40)]))
    bpm, method = beats.tempo_from_beats(times, tolerance=0.04, steady_fraction=0.8)
    assert method == "median" and bpm == pytest.approx(60 / np.median(np.diff(times)))
    # a missed beat (one interval twice as long) does not stop a fit on a steady grid
    steady = np.delete(np.arange(60) * 60 / 170.0, 30)
    bpm, method = beats.tempo_from_beats(steady, tolerance=0.04, steady_fraction=0.8)
    assert method == "fit" and bpm == pytest.approx(170.0, rel=1e-9)


def test_nan_and_infinite_audio_is_rejected_with_its_reason(tmp_path: Path) -> None:
    from etl.engine.errors import BadInput

    rate = 44100
    data = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate * 8) / rate)
    data[rate * 4] = np.nan
    sf.write(tmp_path / "nan.wav", data.astype(np.float32), rate, subtype="FLOAT")
    data[rate * 4] = np.inf
    sf.write(tmp_path / "inf.wav", data.astype(np.float32), rate, subtype="FLOAT")
    for name in ("nan.wav", "inf.wav"):
        path = tmp_path / name
        with pytest.raises(BadInput, match="the audio holds NaN or infinite samples"):
            beats.process({"item_id": "t", **source_of(str(path)), "duration_s": 8.0, "sample_rate": rate},
                          beats.Params())
        item = {"item_id": "t", **source_of(str(path)), "sample_rate": rate, "frames": rate * 8, "duration_s": 8.0,
                "artifact_dir": str(tmp_path / "out")}
        with pytest.raises(BadInput, match="the audio holds NaN or infinite samples"):
            crops.process(item, crops.Params(mode="sequential", seconds=2.0))
        from etl.stages.features import extractors
        with pytest.raises(BadInput, match="the audio holds NaN or infinite samples"):
            extractors.read(str(path))


def test_float_audio_above_full_scale_is_flagged(tmp_path: Path) -> None:
    src = tmp_path / "music"
    src.mkdir()
    rate = 44100
    t = np.arange(rate * 6) / rate
    loud = 2.0 * np.sin(2 * np.pi * 440 * t)  # +6 dBFS: a float file may hold it, a 16-bit crop cannot
    sf.write(src / "loud.wav", loud.astype(np.float32), rate, subtype="FLOAT")
    sf.write(src / "fine.wav", (0.5 * loud).astype(np.float32), rate, subtype="FLOAT")
    db = tmp_path / "etl.duckdb"
    run_stages(db, src, ["ingest", "crops"], **{"crops.mode": "sequential", "crops.seconds": "2"})
    flags = {Path(r["path"]).name: (r["over"], r["peak"]) for r in rows(
        db, "SELECT t.path, bool_or(c.over_full_scale) AS over, max(c.source_peak_dbfs) AS peak "
            "FROM crops c JOIN track_paths_v t USING (track_id) GROUP BY t.path")}
    assert flags["loud.wav"][0] is True and flags["loud.wav"][1] == pytest.approx(6.02, abs=0.01)
    assert flags["fine.wav"][0] is False and flags["fine.wav"][1] == pytest.approx(0.0, abs=0.01)


def test_the_networks_follow_the_parameters_without_an_initializer() -> None:
    """find_beats and the inline executor load madmom themselves, and a later call with other
    tracker parameters (another run in the same process) gets a tracker built for them."""
    default = beats.loaded(beats.Params())
    assert beats.loaded(beats.Params()) is default
    slower = beats.loaded(beats.Params(max_bpm=100.0))
    assert slower[1] is not default[1]
    assert beats.loaded(beats.Params(max_bpm=100.0)) is slower
