"""The classify stage with essentia-tensorflow's own loaders on tiny graphs the tests write
(etl/stages/classify/testing.py: the real models' node names and shapes, metadata in the publisher's
format). Random weights make no musical sense, so these tests check the machinery: what is read
from the metadata, shapes, the label mapping (each score is the head's output for that class,
computed here with numpy from the head's weights), top-k order, 16 kHz input, batching, refusals,
the skip reason when the model is absent, and what the database records.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from etl.stages.classify import testing as em
from tests.helpers import corpus, require, rows, run_stages, write_tone

require("essentia")

from etl.engine.errors import ConfigError  # noqa: E402
from etl.stages import classify  # noqa: E402
from etl.stages.classify import modelfiles as essentia_models  # noqa: E402

GENRE = "genre_discogs400-discogs-effnet-1"
MOOD = "mtg_jamendo_moodtheme-discogs-effnet-1"
VOICE = "voice_instrumental-discogs-effnet-1"
MOODS = ["happy", "sad", "dark", "energetic", "calm", "epic"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("essentia")
    em.write_embedding_model(folder)
    # Genre: "Electronic---House" is made the winner by its bias; the published genre head's nodes.
    em.write_head(folder, GENRE, ["Rock---Punk", "Electronic---House", "Jazz---Bop", "Pop---Ballad"], seed=2,
                  input_node="serving_default_model_Placeholder", output_node="PartitionedCall:0",
                  bias={1: 6.0})
    em.write_head(folder, MOOD, MOODS, seed=3)
    em.write_head(folder, VOICE, ["instrumental", "voice"], seed=4, output_node="model/Softmax", op="Softmax",
                  type_="multi-class classifier")
    return folder


def params(model_dir: Path, **kw) -> classify.Params:
    return classify.Params(model_dir=str(model_dir), **kw)


def install(folder: Path, model_dir: Path, *names: str) -> Path:
    """Copies the named models (graph and metadata) from the test models into `folder`."""
    folder.mkdir(exist_ok=True)
    for name in names:
        for suffix in (".pb", ".json"):
            (folder / f"{name}{suffix}").write_bytes((model_dir / f"{name}{suffix}").read_bytes())
    return folder


def noise(seconds: float, rate: int = 16000, seed: int = 0, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)


def test_absent_model_skips_with_how_to_install(tmp_path: Path) -> None:
    reason = classify.unavailable(params(tmp_path / "none"))
    assert reason is not None
    assert reason.short == "discogs-effnet-bs64-1 not installed: etl models fetch discogs-effnet"
    assert "etl models fetch discogs-effnet`" in reason  # the catalog's name, not the file's
    assert str(tmp_path / "none" / "discogs-effnet-bs64-1.pb") in reason
    assert "https://essentia.upf.edu/models/feature-extractors/discogs-effnet/discogs-effnet-bs64-1.pb" in reason
    [row] = classify.models(params(tmp_path / "none"))
    assert row["model"] == "discogs-effnet-bs64-1" and not row["found"] and "essentia.upf.edu" in row["install"]


def test_installed_models_are_listed_and_available(model_dir: Path) -> None:
    assert classify.unavailable(params(model_dir)) is None
    listed = {r["model"]: r for r in classify.models(params(model_dir))}
    assert set(listed) == {em.EMBEDDING, GENRE, MOOD, VOICE}
    assert all(r["found"] and r["problem"] is None for r in listed.values())


def test_nodes_and_labels_come_from_the_metadata(model_dir: Path) -> None:
    model = essentia_models.load(str(model_dir), em.EMBEDDING)
    assert essentia_models.embedding_output(model) == ("PartitionedCall:1", 1280)
    head = essentia_models.head(essentia_models.load(str(model_dir), GENRE), em.EMBEDDING, 1280)
    assert (head.input, head.output) == ("serving_default_model_Placeholder", "PartitionedCall:0")
    assert head.labels[1] == "Electronic---House"


def test_scores_shapes_label_mapping_and_top_k(model_dir: Path) -> None:
    model = classify.Classifier(params(model_dir, top_k=3))
    embedding = model.embedding(noise(5)[:, 0])
    assert embedding.shape == (1280,) and embedding.dtype == np.float32
    [crop] = model.classify(embedding[None])
    assert [r["head"] for r in crop] == [GENRE, MOOD, VOICE]
    for row, seed, labels in zip(crop, (2, 3, 4), (4, len(MOODS), 2)):
        w, b = em.head_weights(labels, seed, bias={1: 6.0} if row["head"] == GENRE else None)
        logits = embedding.astype(np.float64) @ w + b
        expected = (np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
                    if row["head"] == VOICE else em.sigmoid(logits))
        assert len(row["labels"]) == len(row["scores"]) == labels
        # Each label's score is the head's output for that class (the metadata's order).
        np.testing.assert_allclose(row["scores"], expected, rtol=1e-4, atol=1e-6)
        scores = dict(zip(row["labels"], row["scores"]))
        top = row["top"]
        assert len(top) == min(3, labels)
        assert [t["score"] for t in top] == sorted(scores.values(), reverse=True)[:len(top)]
        assert all(scores[t["label"]] == t["score"] for t in top)
    assert crop[0]["top"][0]["label"] == "Electronic---House"
    assert crop[0]["labels"] == ["Rock---Punk", "Electronic---House", "Jazz---Bop", "Pop---Ballad"]


def test_embedding_is_the_mean_over_patches(model_dir: Path) -> None:
    import essentia.standard as es

    model = classify.Classifier(params(model_dir))
    signal = noise(6)[:, 0]
    patches = es.TensorflowPredictEffnetDiscogs(graphFilename=str(model_dir / f"{em.EMBEDDING}.pb"),
                                                output="PartitionedCall:1")(signal)
    assert patches.shape[0] > 1 and patches.shape[1] == 1280
    np.testing.assert_allclose(model.embedding(signal), patches.mean(axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seconds, patches", [(10.0, 9), (65.0, 64), (70.0, 69)])
def test_a_fixed_batch_of_64_patches_is_padded_and_trimmed(tmp_path: Path, seconds: float, patches: int) -> None:
    """The published discogs-effnet-bs64-1 runs exactly 64 patches at a time: a crop with fewer (or a
    last batch with fewer) is zero-padded by essentia and only its own patches are averaged. The
    reference is the same weights in a graph of any batch size, run one patch at a time."""
    import essentia.standard as es

    fixed, free = tmp_path / "fixed", tmp_path / "free"
    em.write_embedding_model(fixed, batch=64)
    em.write_embedding_model(free)
    music = classify.read_16k_mono(str(corpus("librosa_data", "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg")))
    crop = music[16000 * 20:][:int(seconds * 16000)]
    one_by_one = es.TensorflowPredictEffnetDiscogs(graphFilename=str(free / f"{em.EMBEDDING}.pb"),
                                                   output="PartitionedCall:1", batchSize=1)(crop)
    assert one_by_one.shape == (patches, 1280)
    embedding = classify.Classifier(params(fixed)).embedding(crop)
    np.testing.assert_allclose(embedding, one_by_one.mean(axis=0), rtol=1e-4, atol=1e-6)
    if patches % 64:  # had the zero patches padding the last batch been averaged in, the mean would differ
        padded = -(-patches // 64) * 64
        assert not np.allclose(embedding, one_by_one.sum(axis=0) / padded, rtol=1e-3)


def test_batching_equals_one_by_one(model_dir: Path) -> None:
    model = classify.Classifier(params(model_dir))
    embeddings = np.stack([model.embedding(noise(4, seed=s)[:, 0]) for s in range(4)])
    batched = model.classify(embeddings)
    single = [model.classify(e[None])[0] for e in embeddings]
    for a, b in zip(batched, single):
        for ra, rb in zip(a, b):
            assert ra["labels"] == rb["labels"] and [t["label"] for t in ra["top"]] == [t["label"] for t in rb["top"]]
            np.testing.assert_allclose(ra["scores"], rb["scores"], rtol=1e-5, atol=1e-7)


def test_crops_are_read_at_16k_mono(tmp_path: Path, model_dir: Path) -> None:
    rate = 44100
    t = np.arange(4 * rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stereo = tmp_path / "stereo44k.wav"
    sf.write(stereo, np.stack([tone, tone], axis=1), rate, subtype="FLOAT")
    mono16 = classify.read_16k_mono(str(stereo))
    assert mono16.ndim == 1 and len(mono16) == 4 * 16000
    spectrum = np.abs(np.fft.rfft(mono16))
    assert abs(np.argmax(spectrum) * 16000 / len(mono16) - 440) < 1
    # The same tone written at 16 kHz gives (nearly) the same embedding as the resampled 44.1 kHz one.
    t16 = np.arange(4 * 16000) / 16000
    native = tmp_path / "mono16k.wav"
    sf.write(native, (0.3 * np.sin(2 * np.pi * 440 * t16)).astype(np.float32), 16000, subtype="FLOAT")
    model = classify.Classifier(params(model_dir))
    a = model.embedding(classify.read_16k_mono(str(stereo)))
    b = model.embedding(classify.read_16k_mono(str(native)))
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 0.02


def test_a_head_for_another_embedding_is_refused(tmp_path: Path, model_dir: Path) -> None:
    folder = install(tmp_path / "models", model_dir, em.EMBEDDING, MOOD)
    other = "mtg_jamendo_instrument-msd-musicnn-1"
    em.write_head(folder, other, ["guitar", "piano"], embedding_model="msd-musicnn-1")
    small = "approachability_2c-discogs-effnet-1"
    em.write_head(folder, small, ["not", "yes"], dims=200)
    # Found by the default (every installed head): refused with the reason, the others run.
    model = classify.Classifier(params(folder))
    assert [h.name for h, _ in model.heads] == [MOOD]
    assert "trained on embedding model msd-musicnn-1, not discogs-effnet-bs64-1" in model.refused[other]
    assert "takes 200-dimensional input" in model.refused[small]
    listed = {r["model"]: r for r in classify.models(params(folder))}
    assert "msd-musicnn-1" in listed[other]["problem"]
    # Named in the configuration: the stage does not run, and says why.
    named = params(folder, heads=(MOOD, other))
    reason = classify.unavailable(named)
    assert reason is not None and "msd-musicnn-1" in reason and other in reason.short
    with pytest.raises(ConfigError, match="msd-musicnn-1"):
        classify.Classifier(named)


def test_pipeline_stores_scores_and_crops_v_labels(tmp_path: Path, model_dir: Path) -> None:
    src = tmp_path / "music"
    write_tone(src / "a.wav", seconds=9, freq_hz=220, sample_rate=44100, channels=2)
    db = tmp_path / "etl.duckdb"
    settings = {"crops.mode": "sequential", "crops.seconds": "3", "classify.model_dir": str(model_dir),
                "classify.top_k": "2"}
    reports = run_stages(db, src, ["ingest", "crops", "classify"], **settings)
    assert reports[-1].done == 3, reports
    stored = rows(db, "SELECT * FROM crop_classes ORDER BY crop_id, head")
    assert len(stored) == 3 * 3
    assert {r["head"] for r in stored} == {GENRE, MOOD, VOICE}
    assert all(len(r["scores"]) == len(r["labels"]) and len(r["top"]) == 2 for r in stored)
    view = rows(db, "SELECT genre_top, genres, moods, instruments, voice FROM crops_v")
    assert len(view) == 3
    for crop in view:
        assert crop["genre_top"] == "Electronic---House" and crop["genres"][0] == "Electronic---House"
        assert len(crop["moods"]) == 2 and set(crop["moods"]) <= set(MOODS)
        assert crop["instruments"] is None  # no instrument head installed
        assert crop["voice"] in ("instrumental", "voice")
    # Per track: each label's score averaged over the crops, in the head's label order.
    [track] = rows(db, f"SELECT * FROM track_classes_v WHERE head = '{MOOD}'")
    crops = [r for r in stored if r["head"] == MOOD]
    assert track["crops"] == 3 and track["labels"] == MOODS
    np.testing.assert_allclose(track["scores"], np.mean([r["scores"] for r in crops], axis=0), rtol=1e-5)
    assert track["top_label"] == MOODS[int(np.argmax(track["scores"]))]
    # Nothing changed: nothing recomputed.
    assert run_stages(db, src, ["classify"], **settings)[-1].done == 0
    # The file has no tags: exports take the genre, moods and voice from the models.
    from etl.read.export import ExportRequest, export

    out = tmp_path / "export"
    export(db, ExportRequest(out=out, format="jsonl", where="genre_top = 'Electronic---House'"))
    lines = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and {line["genre"] for line in lines} == {"Electronic / House"}
    sidecar = json.loads(Path(lines[0]["path"]).with_suffix(".json").read_text())
    assert sidecar["genre"] == "Electronic / House" and sidecar["prompt"].startswith("Electronic / House, ")
    assert len(sidecar["moods"]) == 2 and set(sidecar["moods"]) <= set(MOODS)


def test_params_with_other_heads_reload_the_worker(model_dir: Path) -> None:
    first = classify.classifier(params(model_dir))
    second = classify.classifier(replace(params(model_dir), heads=(MOOD,)))
    assert first is not second and [h.name for h, _ in second.heads] == [MOOD]


def test_etl_run_with_worker_processes_and_etl_models(tmp_path: Path, model_dir: Path) -> None:
    from tests.helpers import etl

    src = tmp_path / "music"
    write_tone(src / "a.flac", seconds=6, freq_hz=330, sample_rate=22050)
    db = tmp_path / "etl.duckdb"
    sets = ["--set", "crops.mode=sequential", "--set", "crops.seconds=3", "--set", f"classify.model_dir={model_dir}",
            "--set", "classify.workers=2"]
    etl("init", db=db, check=True)
    etl(*sets, "run", "--source", str(src), "--stage", "ingest", "--stage", "crops", "--stage", "classify",
        db=db, check=True)
    assert rows(db, "SELECT count(*) AS n, count(DISTINCT crop_id) AS crops FROM crop_classes") == [{"n": 6, "crops": 2}]
    listed = json.loads(etl(*sets, "models", "--json", db=db, check=True).stdout)["configured"]
    mine = {r["model"]: r for r in listed if r["stage"] == "classify"}
    assert set(mine) == {em.EMBEDDING, GENRE, MOOD, VOICE} and all(r["found"] for r in mine.values())
    # Without the models: skipped, with the short reason in `etl status`.
    status = json.loads(etl("--set", f"classify.model_dir={tmp_path / 'none'}", "status", "--json", db=db,
                            check=True).stdout)
    [row] = [r for r in status if r["stage"] == "classify"]
    assert "discogs-effnet-bs64-1 not installed: etl models fetch discogs-effnet" in json.dumps(row)


def test_installing_or_replacing_a_head_requeues_moving_the_models_does_not(tmp_path: Path, model_dir: Path) -> None:
    folder = install(tmp_path / "models", model_dir, em.EMBEDDING, MOOD)
    src = tmp_path / "music"
    write_tone(src / "a.wav", seconds=6, freq_hz=220, sample_rate=44100)
    db = tmp_path / "etl.duckdb"
    settings = {"crops.mode": "sequential", "crops.seconds": "3", "classify.model_dir": str(folder)}
    assert run_stages(db, src, ["ingest", "crops", "classify"], **settings)[-1].done == 2
    assert run_stages(db, src, ["classify"], **settings)[-1].done == 0
    # A head installed by hand (not named in the settings): every crop gets its scores.
    install(folder, model_dir, VOICE)
    assert run_stages(db, src, ["classify"], **settings)[-1].done == 2
    assert rows(db, "SELECT count(*) AS n FROM crop_classes") == [{"n": 4}]
    # The models folder moved: same files, nothing recomputed.
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    assert run_stages(db, src, ["classify"], **{**settings, "classify.model_dir": str(moved)})[-1].done == 0
    # A head's weights replaced by other weights: recomputed.
    em.write_head(moved, MOOD, MOODS, seed=99)
    before = rows(db, f"SELECT scores FROM crop_classes WHERE head = '{MOOD}' ORDER BY crop_id")
    assert run_stages(db, src, ["classify"], **{**settings, "classify.model_dir": str(moved)})[-1].done == 2
    after = rows(db, f"SELECT scores FROM crop_classes WHERE head = '{MOOD}' ORDER BY crop_id")
    assert before != after


def test_stored_embeddings_rank_similar_crops(tmp_path: Path, model_dir: Path) -> None:
    from etl.read import query as q

    src = tmp_path / "music"
    # Two tracks: the crops of each are alike (one steady tone each), unlike the other's.
    write_tone(src / "low.wav", seconds=9, freq_hz=110, sample_rate=44100)
    sf.write(src / "noise.wav", noise(9, 44100, seed=5), 44100)
    db = tmp_path / "etl.duckdb"
    settings = {"crops.mode": "sequential", "crops.seconds": "3", "classify.model_dir": str(model_dir)}
    run_stages(db, src, ["ingest", "crops", "classify"], **settings)
    assert rows(db, "SELECT count(*) AS n FROM crop_embeddings") == [{"n": 0}]  # off by default
    assert run_stages(db, src, ["classify"], **settings, **{"classify.store_embedding": "true"})[-1].done == 6
    stored = rows(db, "SELECT e.crop_id, e.embedding, c.track_id FROM crop_embeddings e JOIN crops c USING (crop_id)")
    assert len(stored) == 6 and all(len(r["embedding"]) == 1280 for r in stored)
    # The stored vector is the model's mean embedding of the crop.
    model = classify.Classifier(params(model_dir))
    [path] = [r["path"] for r in rows(db, f"SELECT path FROM crops_v WHERE crop_id = '{stored[0]['crop_id']}'")]
    np.testing.assert_allclose(stored[0]["embedding"], model.embedding(classify.read_16k_mono(path)), rtol=1e-5,
                               atol=1e-6)
    # The named query ranks the other crops of the same track first.
    probe = stored[0]
    result = q.run_to_table(db, q.named_query("similar_crops").sql, {"crop_id": probe["crop_id"]}, 100, None)
    ranked = [dict(zip(result.columns, r)) for r in result.rows]
    assert len(ranked) == 5 and probe["crop_id"] not in [r["crop_id"] for r in ranked]
    same_track = {r["crop_id"] for r in stored if r["track_id"] == probe["track_id"]} - {probe["crop_id"]}
    assert {r["crop_id"] for r in ranked[:2]} == same_track
    assert [r["similarity"] for r in ranked] == sorted((r["similarity"] for r in ranked), reverse=True)


# --- the batched embeddings against TensorflowPredictEffnetDiscogs ---------------------------------

FISHIN = ("librosa_data", "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg")
VIBE = ("librosa_data", "Kevin_MacLeod_-_Vibe_Ace.hq.ogg")
# Crops of real music as (recording, start s, samples at 16 kHz) and the patches each gives: fewer
# than 64, exactly 64, more than 64 (two runs), one, and one where the algorithm's own count is one
# short of the patches its frames hold (189 * 256 samples: 190 frames, 2 patches, it returns 1).
REAL_CROPS = [(VIBE, 20, 10 * 16000, 9), (FISHIN, 0, 65 * 16000, 64), (FISHIN, 60, 70 * 16000, 69),
              (VIBE, 30, 3 * 16000, 1), (FISHIN, 5, 189 * 256, 1), (VIBE, 50, 10 * 16000 + 77, 9)]


@pytest.fixture(scope="module")
def effnet_dir(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """An EfficientNet-B0 embedding model (random weights, the published interface and fixed batch of
    64 patches: convolutions, depthwise convolutions and pooling, the real model's kind of graph) and
    the test heads."""
    folder = install(tmp_path_factory.mktemp("effnet"), model_dir, GENRE, MOOD, VOICE)
    em.write_effnet_b0_model(folder)
    return folder


def crop_files(folder: Path, crops: list[tuple[tuple[str, str], float, int, int]]) -> list[dict]:
    """The crops written as 16 kHz mono float WAV files (read back sample for sample), as work items."""
    folder.mkdir(exist_ok=True)
    music = {name: classify.read_16k_mono(str(corpus(*name))) for name in {c[0] for c in crops}}
    items = []
    for index, (name, start, samples, _) in enumerate(crops):
        signal = music[name][int(start * 16000):][:samples]
        assert len(signal) == samples
        sf.write(folder / f"{index}.wav", signal, 16000, subtype="FLOAT")
        items.append({"item_id": str(index), "track_id": "t", "path": str(folder / f"{index}.wav")})
    return items


def todays(model_dir: Path, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """What the stage computed before crops shared model runs: `TensorflowPredictEffnetDiscogs` on the
    crop (its patches' embeddings), their mean, each head on that one mean."""
    import essentia.standard as es

    patches = es.TensorflowPredictEffnetDiscogs(graphFilename=str(model_dir / f"{em.EMBEDDING}.pb"),
                                                output="PartitionedCall:1")(signal)
    mean = patches.mean(axis=0).astype(np.float32)
    return np.asarray(patches), mean, classify.Classifier(params(model_dir)).classify(mean[None])[0]


def test_batched_embeddings_equal_the_algorithms_on_real_crops(tmp_path: Path, effnet_dir: Path) -> None:
    """Each crop's patch embeddings from the stacked runs are the ones TensorflowPredictEffnetDiscogs
    returns for the crop alone (fixed batch of 64; crops of 1, 9, 64 and 69 patches sharing runs), and
    so are their means: to the bit on the development machine, but CI's CPU made 1.4% of them differ
    by up to 1.4e-9 (values near 1e-3: TensorFlow's kernels may sum in another order when the other
    rows of the batch differ), so asserted within 1e-5 of the largest value. A patch taken from the
    wrong place or another crop's row differs by the values' own size. The scores differ only because the heads run on several crops'
    means at once (a matrix product of other rows, other rounding): measured at most 6.0e-8 (one
    float32 step below 1.0), asserted below 1e-6."""
    from etl.stages.classify import effnet

    items = crop_files(tmp_path / "crops", REAL_CROPS)
    signals = [classify.read_16k_mono(item["path"]) for item in items]
    model = classify.Classifier(params(effnet_dir))
    patches = [model.patches(s) for s in signals]
    assert [len(p) for p in patches] == [c[3] for c in REAL_CROPS]
    assert [effnet.patch_count(len(s)) for s in signals] == [c[3] for c in REAL_CROPS]
    before = model.embed.runs
    stacked = model.embed(patches)  # one chunk: 153 patches in 3 runs of 64, the last one padded
    assert model.embed.runs - before == 3
    results = classify.process_batch(items, params(effnet_dir))
    for signal, rows, result in zip(signals, stacked, results):
        reference, mean, classes = todays(effnet_dir, signal)
        rounding = 1e-5 * float(np.abs(reference).max())
        np.testing.assert_allclose(rows, reference, rtol=0, atol=rounding)
        np.testing.assert_allclose(rows.mean(axis=0), mean, rtol=0, atol=rounding)
        for new, old in zip(result["classes"], classes):
            assert new["labels"] == old["labels"]
            assert [t["label"] for t in new["top"]] == [t["label"] for t in old["top"]]
            np.testing.assert_allclose(new["scores"], old["scores"], rtol=0, atol=1e-6)


def test_the_mel_bands_are_essentias_streaming_front_end(tmp_path: Path) -> None:
    """FrameCutter (512 / 256) then TensorflowInputMusiCNN, as the algorithm's inner network runs them."""
    import essentia
    import essentia.streaming as ess

    from etl.stages.classify import effnet

    front_end = effnet.FrontEnd()
    music = classify.read_16k_mono(str(corpus(*FISHIN)))
    for samples in (5000, 32512, 32513, 160000, 160077):
        signal = np.ascontiguousarray(music[16000 * 30:][:samples])
        source = ess.VectorInput(signal)
        cutter, mel, pool = ess.FrameCutter(frameSize=512, hopSize=256), ess.TensorflowInputMusiCNN(), essentia.Pool()
        source.data >> cutter.signal
        cutter.frame >> mel.frame
        mel.bands >> (pool, "bands")
        essentia.run(source)
        bands = front_end.bands(signal)
        assert len(bands) == effnet.frame_count(samples)
        np.testing.assert_array_equal(bands, pool["bands"])


def test_silence_in_a_crop_is_handled_as_the_algorithm_does(tmp_path: Path, model_dir: Path) -> None:
    """Digital silence (frames the streaming FrameCutter adds -100 dB noise to: mel bands of 0 after
    the float32 log compression) at the start, middle and end of a crop, and a silent crop: the same
    embeddings as the algorithm's, to the bit."""
    music = classify.read_16k_mono(str(corpus(*VIBE)))[16000 * 10:][:16000 * 12].copy()
    music[:16000 * 2] = 0.0
    music[16000 * 5:16000 * 7] = 0.0
    music[-16000:] = 0.0
    _, mean, _ = todays(model_dir, music)
    model = classify.Classifier(params(model_dir))
    np.testing.assert_array_equal(model.embedding(music), mean)
    silence = np.zeros(16000 * 4, np.float32)
    _, mean, _ = todays(model_dir, silence)
    np.testing.assert_array_equal(model.embedding(silence), mean)


def test_process_gives_each_crop_what_process_batch_gives_it(tmp_path: Path, model_dir: Path) -> None:
    """A chunk mixing crops of 1 to 69 patches, one too short for a patch and one unreadable file: the
    bad two fail alone, the others get what `process` gives them one by one: the same embeddings to
    the bit, scores within the heads' rounding on a batch of means (measured 7.2e-7 on these heads'
    large logits, 6.1e-6 relative)."""
    from etl.engine.errors import BadInput, classify as classify_error

    crops = [*REAL_CROPS, (FISHIN, 60, 32512, 0)]  # 127 * 256 samples: no patch
    items = crop_files(tmp_path / "crops", crops)
    broken = tmp_path / "crops" / "broken.wav"
    broken.write_bytes(b"RIFF not audio")
    items.append({"item_id": "broken", "track_id": "t", "path": str(broken)})
    p = params(model_dir, store_embedding=True)
    batched = classify.process_batch(items, p)
    assert isinstance(batched[-2], BadInput) and "too short for one embedding patch" in str(batched[-2])
    assert isinstance(batched[-1], Exception) and classify_error(batched[-1])[1] is False
    for item, result in zip(items[:-2], batched[:-2]):
        alone = classify.process(item, p)
        assert alone["embedding"] == result["embedding"]
        for a, b in zip(alone["classes"], result["classes"]):
            assert a["labels"] == b["labels"]
            np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-6)
    with pytest.raises(BadInput, match="too short"):
        classify.process(items[-2], p)


@pytest.mark.parametrize("batch", [None, 16])
def test_a_model_of_another_batch_or_of_any_batch(tmp_path: Path, batch: int | None) -> None:
    """A graph that takes any number of patches (metadata batch -1) runs them unpadded, up to 64 a run;
    one of a fixed batch of 16 (which `TensorflowPredictEffnetDiscogs`, padding to 64, cannot run) in
    runs of 16. The reference: the same weights one patch at a time."""
    import essentia.standard as es

    folder, free = tmp_path / "models", tmp_path / "free"
    em.write_embedding_model(folder, batch=batch)
    em.write_embedding_model(free)
    meta_path = folder / f"{em.EMBEDDING}.json"
    meta = json.loads(meta_path.read_text())
    meta["schema"]["inputs"][0]["shape"][0] = batch or -1
    meta_path.write_text(json.dumps(meta))
    music = classify.read_16k_mono(str(corpus(*FISHIN)))
    crops = [music[16000 * s:][:16000 * seconds] for s, seconds in ((10, 10), (30, 20), (60, 3))]  # 9, 19, 1 patches
    model = classify.Classifier(params(folder))
    assert model.embed.batch == (batch or 64) and model.embed.fixed == (batch is not None)
    embeddings = model.embeddings([model.patches(c) for c in crops])
    assert model.embed.patches_run == (32 if batch else 29)
    one = es.TensorflowPredictEffnetDiscogs(graphFilename=str(free / f"{em.EMBEDDING}.pb"),
                                            output="PartitionedCall:1", batchSize=1)
    for crop, embedding in zip(crops, embeddings):
        np.testing.assert_allclose(embedding, one(crop).mean(axis=0), rtol=1e-5, atol=1e-6)


def test_the_model_batch_comes_from_the_metadata() -> None:
    def batch(shape: object) -> int | None:
        inputs = [{"name": "x"} if shape is None else {"name": "x", "shape": shape}]
        return essentia_models.embedding_batch(essentia_models.Model("m", Path("m.pb"), {"schema": {"inputs": inputs}}))

    assert [batch([64, 128, 96]), batch([32, 128, 96]), batch([-1, 128, 96]), batch([None, 128, 96]),
            batch(None), batch(["b", 128, 96])] == [64, 32, None, None, 64, 64]
