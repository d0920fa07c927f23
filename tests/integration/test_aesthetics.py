"""The aesthetics stage with the `audiobox-aesthetics` package's own model class on small random
models saved as the checkpoint its reference loader reads (etl/stages/aesthetics/testing.py). Random
weights make no aesthetic sense, so these tests check the machinery: the checkpoint format, the
four axes each from its own head and target statistics, 16 kHz mono input, the reference's 10 s
windows and their weights (computed here by hand), batching, refusals, the skip reason when the
checkpoint is absent, and what the store, `crops_v`, `etl models` and `etl export --where` show.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from etl.stages.aesthetics import testing as am
from tests.helpers import corpus, crops, etl, require, rows, run_stages, write_tone

require("torch")
require("audiobox_aesthetics")

import torch  # noqa: E402

from etl.dsp import audio  # noqa: E402
from etl.engine.errors import BadInput, ConfigError  # noqa: E402
from etl.stages import aesthetics  # noqa: E402
from etl.stages.aesthetics import model as aes_model  # noqa: E402

WIDE = {"COLUMNS": "500"}  # no wrapping inside a path
LONG = ("vocadito", "vocadito_1.wav")  # 33.2 s of real singing: four windows, the last one 0.32 full


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return am.tiny(tmp_path_factory.mktemp("audiobox") / "checkpoint.pt")


def params(checkpoint: Path, **kw: Any) -> aesthetics.Params:
    return aesthetics.Params(checkpoint=str(checkpoint), device="cpu", **kw)


def item(path: Path | str, name: str = "c") -> dict[str, Any]:
    return {"item_id": name, "track_id": "t", "path": str(path)}


def seen_by_model(loaded: aes_model.Aesthetics) -> tuple[list[torch.Tensor], Any]:
    """Record every batch the AesMultiOutput module is called with (a forward pre-hook)."""
    calls: list[torch.Tensor] = []
    handle = loaded.model.register_forward_pre_hook(lambda module, args: calls.append(
        (args[0]["wav"].clone(), args[0]["mask"].clone())))
    return calls, handle


def test_checkpoint_loads_into_the_package_class_with_its_target_statistics(checkpoint: Path) -> None:
    from audiobox_aesthetics.model.aes import AesMultiOutput

    loaded = aesthetics.load(params(checkpoint))
    assert isinstance(loaded.model.model, AesMultiOutput) and not loaded.model.model.training
    assert len(loaded.model.model.wavlm_model.encoder.layers) == am.TINY_ENCODER["encoder_layers"]
    assert loaded.model.target == {axis: (am.TARGET[axis]["mean"], am.TARGET[axis]["std"]) for axis in am.AXES}
    assert loaded.checkpoint_sha256 == aesthetics.sha256_of(checkpoint)
    # The package's own default encoder is left as it was for the next model built.
    from audiobox_aesthetics.model import aes

    assert aes.DEFAULT_AUDIO_CFG.encoder_layers == 12 and aes.DEFAULT_AUDIO_CFG.encoder_embed_dim == 768


def test_windows_are_weighted_as_the_reference_does(checkpoint: Path) -> None:
    """A 33 s recording: four 10 s windows scored one at a time by hand, de-normalised per axis with
    that axis's statistics and averaged with weights 1, 1, 1, 0.32 — what the stage stores."""
    path = corpus(*LONG)
    result = aesthetics.process(item(path), params(checkpoint))
    loaded = aesthetics.load(params(checkpoint)).model
    mono = audio.read_mono_at(str(path), 16000)
    window = 160000
    assert result["windows"] == 4 and len(mono) == 531396
    weights = np.array([1.0, 1.0, 1.0, (len(mono) - 3 * window) / window])
    by_window: dict[str, list[float]] = {axis: [] for axis in am.AXES}
    for start in range(0, len(mono), window):
        piece = np.zeros(window, dtype=np.float32)
        piece[:len(mono[start:start + window])] = mono[start:start + window]
        mask = np.zeros(window, dtype=bool)
        mask[:len(mono[start:start + window])] = True
        with torch.inference_mode(), aes_model._quiet():
            out = loaded.model({"wav": torch.from_numpy(piece)[None, None], "mask": torch.from_numpy(mask)[None, None]})
        for axis in am.AXES:
            by_window[axis].append(float(out[axis][0]) * am.TARGET[axis]["std"] + am.TARGET[axis]["mean"])
    for column, axis in (("aes_ce", "CE"), ("aes_cu", "CU"), ("aes_pc", "PC"), ("aes_pq", "PQ")):
        expected = float(np.sum(np.array(by_window[axis]) * weights) / weights.sum())
        assert result[column] == pytest.approx(expected, rel=1e-5, abs=1e-5), column
        # The windows differ, so the weights matter: a plain mean would not match.
        assert abs(np.mean(by_window[axis]) - expected) > 1e-6
    assert len({round(result[c], 6) for c in ("aes_ce", "aes_cu", "aes_pc", "aes_pq")}) == 4


@pytest.mark.parametrize("rate", [44100, 48000])
def test_the_model_gets_16_khz_mono(tmp_path: Path, checkpoint: Path, rate: int) -> None:
    path = write_tone(tmp_path / f"tone{rate}.wav", seconds=12.5, freq_hz=440.0, sample_rate=rate, channels=2)
    calls, handle = seen_by_model(aesthetics.worker_model(params(checkpoint)).model)
    try:
        result = aesthetics.process(item(path), params(checkpoint))
    finally:
        handle.remove()
    [(wav, mask)] = calls
    assert wav.shape == mask.shape == (2, 1, 160000)
    assert int(mask.sum()) == 200000 and result["windows"] == 2  # 12.5 s at 16 kHz
    assert not mask[1, 0, 40000:].any() and not wav[1, 0, 40000:].any()  # zero padding, masked
    spectrum = np.abs(np.fft.rfft(wav[0, 0].numpy()))
    assert np.argmax(spectrum) * 16000 / 160000 == pytest.approx(440.0, abs=0.2)


def test_a_batch_of_crops_scores_as_one_by_one_and_a_bad_crop_fails_alone(tmp_path: Path, checkpoint: Path) -> None:
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio at all" * 100)
    paths = [corpus("librosa_data", "sorohanro_-_solo-trumpet-06.hq.ogg"), corpus("stempeg", "mixture.flac"),
             bad, corpus(*LONG), corpus("madmom", "sample.wav")]
    items = [item(p, f"c{i}") for i, p in enumerate(paths)]
    p = params(checkpoint, crops_per_batch=3)
    calls, handle = seen_by_model(aesthetics.worker_model(p).model)
    try:
        batched = aesthetics.process_batch(items, p)
    finally:
        handle.remove()
    # Good crops in groups of three: 1 + 1 + 4 windows, then 1.
    assert [wav.shape[0] for wav, _ in calls] == [6, 1]
    assert isinstance(batched[2], BadInput) and "cannot decode" in batched[2].reason
    for index, it in enumerate(items):
        if index == 2:
            continue
        alone = aesthetics.process(it, p)
        assert batched[index]["windows"] == alone["windows"]
        for column in ("aes_ce", "aes_cu", "aes_pc", "aes_pq"):
            assert batched[index][column] == pytest.approx(alone[column], rel=1e-5, abs=1e-5)


def test_absent_checkpoint_or_package_skips_with_how_to_install(tmp_path: Path, monkeypatch) -> None:
    missing = tmp_path / "nowhere" / "checkpoint.pt"
    reason = aesthetics.unavailable(params(missing))
    assert reason is not None and str(missing) in reason and "etl models fetch audiobox-aesthetics" in reason
    assert reason.short == "model not installed: etl models fetch audiobox-aesthetics"
    [row] = aesthetics.models(params(missing))
    assert not row["found"] and row["files"] == [] and "etl models fetch audiobox-aesthetics" in row["install"]
    # The default place is where `etl models fetch` puts it.
    monkeypatch.setenv("ETL_MODELS_DIR", str(tmp_path / "models"))
    assert aesthetics.checkpoint_path(aesthetics.Params()) == tmp_path / "models" / "audiobox" / "checkpoint.pt"
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "audiobox_aesthetics" else real(name))
    reason = aesthetics.unavailable(params(missing))
    assert "audiobox_aesthetics not installed" in reason and "--no-deps audiobox-aesthetics==0.0.4" in reason


def test_files_that_are_not_checkpoints_are_refused_with_the_reason(tmp_path: Path, checkpoint: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(ConfigError, match="not a readable checkpoint"):
        aesthetics.load(params(junk))
    bare = tmp_path / "bare.pt"
    torch.save({"state_dict": {}}, bare)
    with pytest.raises(ConfigError, match="no 'model_cfg'"):
        aesthetics.load(params(bare))
    other = tmp_path / "other.pt"
    data = torch.load(checkpoint, weights_only=True)
    data["wavlm_cfg"] = {**data["wavlm_cfg"], "encoder_embed_dim": 24}
    torch.save(data, other)
    with pytest.raises(ConfigError, match="do not fit the model"):
        aesthetics.load(params(other))
    with pytest.raises(ConfigError, match="device"):
        aesthetics.Params(device="tpu")


def test_new_weights_requeue_every_crop_a_moved_checkpoint_does_not(tmp_path: Path) -> None:
    src = tmp_path / "music"
    src.mkdir()
    shutil.copyfile(corpus("stempeg", "mixture.flac"), src / "mixture.flac")
    db = tmp_path / "etl.duckdb"
    first = am.tiny(tmp_path / "a" / "checkpoint.pt")
    settings = {"crops.mode": "sequential", "crops.seconds": "3", "aesthetics.checkpoint": str(first),
                "aesthetics.device": "cpu"}
    assert run_stages(db, src, ["ingest", "crops", "aesthetics"], **settings)[-1].done == 2
    assert run_stages(db, src, ["aesthetics"], **settings)[-1].done == 0
    before = rows(db, "SELECT crop_id, aes_pq, checkpoint_sha256 FROM crop_aesthetics ORDER BY crop_id")
    assert all(r["checkpoint_sha256"] == aesthetics.sha256_of(first) for r in before)
    moved = tmp_path / "b" / "checkpoint.pt"
    moved.parent.mkdir()
    first.rename(moved)
    assert run_stages(db, src, ["aesthetics"], **{**settings, "aesthetics.checkpoint": str(moved)})[-1].done == 0
    am.tiny(moved, seed=7)  # other weights at the same place
    assert run_stages(db, src, ["aesthetics"], **{**settings, "aesthetics.checkpoint": str(moved)})[-1].done == 2
    after = rows(db, "SELECT crop_id, aes_pq, checkpoint_sha256 FROM crop_aesthetics ORDER BY crop_id")
    assert [r["aes_pq"] for r in after] != [r["aes_pq"] for r in before]
    assert all(r["checkpoint_sha256"] == aesthetics.sha256_of(moved) for r in after)


@pytest.mark.slow
def test_a_checkpoint_of_the_released_size_loads_with_the_package_default_encoder(tmp_path: Path) -> None:
    """The shape of Meta's checkpoint.pt: no encoder settings, WavLM Base+ size (95 M parameters)."""
    path = am.full(tmp_path / "checkpoint.pt")
    assert "wavlm_cfg" not in torch.load(path, weights_only=True)
    result = aesthetics.process(item(corpus("stempeg", "mixture.flac")), params(path))
    loaded = aesthetics.load(params(path)).model.model
    assert len(loaded.wavlm_model.encoder.layers) == 12 and loaded.wavlm_model.cfg.encoder_embed_dim == 768
    assert result["windows"] == 1 and all(np.isfinite(result[c]) for c in ("aes_ce", "aes_cu", "aes_pc", "aes_pq"))


@pytest.fixture(scope="module")
def scored(store: Path, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared store of real tagged music with its crops scored by `etl run` (two workers)."""
    root = tmp_path_factory.mktemp("scored")
    shutil.copytree(store.parent, root, dirs_exist_ok=True)
    db = root / store.name
    etl("--set", f"aesthetics.checkpoint={checkpoint}", "--set", "aesthetics.workers=2", "--set",
        "aesthetics.device=cpu", "--set", "aesthetics.crops_per_batch=4", "run", "--stage", "aesthetics",
        db=db, check=True, timeout=600)
    return db


@pytest.mark.slow
def test_etl_run_scores_every_crop_into_crops_v(scored: Path, checkpoint: Path) -> None:
    view = crops(scored)
    assert len(view) > 10
    stored = {r["crop_id"]: r for r in rows(scored, "SELECT * FROM crop_aesthetics")}
    assert set(stored) == {c["crop_id"] for c in view}
    for crop in view:
        row = stored[crop["crop_id"]]
        assert [crop[c] for c in ("aes_ce", "aes_cu", "aes_pc", "aes_pq")] == \
               [row[c] for c in ("aes_ce", "aes_cu", "aes_pc", "aes_pq")]
        assert row["windows"] == int(np.ceil(crop["duration_s"] * 16000 / 160000 - 1e-9))
        assert row["checkpoint_sha256"] == aesthetics.sha256_of(checkpoint)
    # One crop recomputed by hand through the stage's own process gives the stored scores.
    first = view[0]
    again = aesthetics.process(item(first["path"]), params(checkpoint))
    assert stored[first["crop_id"]]["aes_pq"] == pytest.approx(again["aes_pq"], rel=1e-5)
    # Nothing changed: nothing recomputed.
    rerun = etl("--set", f"aesthetics.checkpoint={checkpoint}", "run", "--stage", "aesthetics", db=scored, check=True)
    assert "aesthetics: nothing to do" in rerun.stderr, rerun.stderr


@pytest.mark.slow
def test_export_where_aes_pq_exports_exactly_the_crops_sql_selects(scored: Path, tmp_path: Path) -> None:
    scores = sorted(r["aes_pq"] for r in rows(scored, "SELECT aes_pq FROM crops_v"))
    threshold = float(np.median(scores))  # the random model's scores straddle it
    chosen = {r["crop_id"] for r in rows(scored, f"SELECT crop_id FROM crops_v WHERE aes_pq > {threshold!r}")}
    assert 0 < len(chosen) < len(scores)
    etl("export", "--where", f"aes_pq > {threshold!r}", "--format", "csv", "--out", str(tmp_path / "x"),
        db=scored, check=True)
    with open(tmp_path / "x" / "crops.csv", newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert {r["crop_id"] for r in exported} == chosen
    assert all(float(r["aes_pq"]) > threshold for r in exported)


@pytest.mark.slow
def test_etl_models_and_run_without_the_checkpoint(scored: Path, checkpoint: Path, tmp_path: Path) -> None:
    listed = json.loads(etl("--set", f"aesthetics.checkpoint={checkpoint}", "models", "--json",
                            db=scored, check=True).stdout)
    [row] = [r for r in listed["configured"] if r["stage"] == "aesthetics"]
    assert row["found"] and row["model"] == "audiobox-aesthetics" and row["stage_skipped_because"] is None
    assert row["files"] == [{"path": str(checkpoint), "size_bytes": checkpoint.stat().st_size,
                             "sha256": aesthetics.sha256_of(checkpoint)}]
    assert any(m["name"] == "audiobox-aesthetics" and m["stage"] == "aesthetics" for m in listed["catalog"])
    text = etl("--set", f"aesthetics.checkpoint={checkpoint}", "models", db=scored, check=True, env=WIDE).stdout
    assert "aesthetics: audiobox-aesthetics (audiobox-aesthetics 0.0.4 (AesMultiOutput)) — found" in text
    # Without it: `etl run` says skipped and how to install it; what was stored stays.
    missing = tmp_path / "none.pt"
    before = rows(scored, "SELECT count(*) AS n FROM crop_aesthetics")
    run = etl("--set", f"aesthetics.checkpoint={missing}", "run", "--stage", "aesthetics", db=scored, check=True,
              env=WIDE)
    assert "aesthetics: skipped — model not installed: etl models fetch audiobox-aesthetics\n" in run.stderr
    status = json.loads(etl("--set", f"aesthetics.checkpoint={missing}", "status", "--json", db=scored,
                            check=True).stdout)
    assert str(missing) in next(r for r in status if r["stage"] == "aesthetics")["detail"]  # the whole text
    assert rows(scored, "SELECT count(*) AS n FROM crop_aesthetics") == before
