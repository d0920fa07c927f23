"""Exports that load from anywhere, and exports that cannot be turned against the machine.

Each format is loaded the way its trainer loads it, from a working directory that is neither the
export nor the store, and (where its files travel with it) after the export folder is moved:

- lhotse, webdataset and Hugging Face `datasets` (audiofolder) with the libraries themselves;
- audiocraft and stable-audio-tools, which do not install beside this project, by emulating their
  documented resolution rules: audiocraft's `load_audio_meta` keeps an absolute `path` and resolves
  a relative one from the working directory (dora's `to_absolute_path`), `AudioDataset` reads it with
  `audio_read(path)`, and `MusicDataset` reads MusicInfo from `Path(path).with_suffix('.json')`
  (every field but `keywords` required); stable-audio-tools' `create_dataloader_from_config` walks
  each `audio_dir` dataset's `path` and loads `custom_metadata_module` with
  `importlib.util.spec_from_file_location`, both as written (so from the working directory), and calls
  `get_custom_metadata(info, audio)` with `info["path"]` the walked file;
- csv / parquet with polars, whose paths a script opens from its working directory.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import soundfile as sf

from etl.engine.errors import ExportError
from etl.read.export import ExportRequest, export
from tests.helpers import crops, etl

MUSIC_INFO_REQUIRED = ("title", "artist", "key", "bpm", "genre", "moods", "description", "name", "instrument")


def run_export(store: Path, out: Path, fmt: str, **options: Any) -> Path:
    export(store, ExportRequest(out=out, format=fmt, **options))
    return out


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory that is neither the export nor the store."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def moved(out: Path) -> Path:
    target = out.parent / f"moved-{out.name}" / "there"
    target.parent.mkdir(parents=True)
    shutil.move(str(out), str(target))
    return target


# --- the loaders, as their libraries resolve paths ------------------------------------------------

def load_audiocraft(manifest: Path) -> list[dict[str, Any]]:
    """audiocraft: AudioMeta per line, path resolved from the working directory, MusicInfo from the sidecar."""
    loaded = []
    for line in manifest.read_text().splitlines():
        meta = json.loads(line)
        path = meta["path"] if meta["path"].startswith("/") else os.path.abspath(meta["path"])
        data, rate = sf.read(path, always_2d=True)
        assert rate == meta["sample_rate"]
        assert abs(len(data) / rate - meta["duration"]) < 1e-6
        sidecar = Path(path).with_suffix(".json")
        assert sidecar.is_file(), f"MusicDataset would find no MusicInfo for {path}: training unconditioned"
        info = json.loads(sidecar.read_text())
        assert set(MUSIC_INFO_REQUIRED) <= set(info)  # MusicInfo.from_dict(fields_required=True)
        assert info["description"]
        loaded.append({**meta, "info": info})
    return loaded


def load_stable_audio(config_path: Path) -> list[str]:
    """stable-audio-tools: walk `path`, import `custom_metadata_module`, both as written (from the cwd)."""
    config = json.loads(config_path.read_text())
    assert config["dataset_type"] == "audio_dir"
    prompts = []
    for dataset in config["datasets"]:
        spec = importlib.util.spec_from_file_location("metadata_module", dataset["custom_metadata_module"])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for root, _, names in os.walk(dataset["path"]):
            for name in sorted(names):
                if os.path.splitext(name)[1] in (".wav", ".mp3", ".flac", ".ogg", ".aif", ".opus"):
                    full = os.path.join(root, name)
                    info = {"path": full, "relpath": os.path.relpath(full, dataset["path"])}
                    prompts.append(module.get_custom_metadata(info, None)["prompt"])
    return prompts


def load_lhotse(manifest: Path) -> list[Any]:
    import lhotse

    cuts = list(lhotse.load_manifest(manifest))
    for cut in cuts[:3]:
        samples = cut.load_audio()
        assert samples.shape[-1] == cut.num_samples
    return cuts


def load_hf(out: Path, cache: Path) -> Any:
    """datasets' audiofolder. Building it imports torchcodec's encoder even for a file path (then stores
    only the path); torchcodec + FFmpeg do not install offline here, so a stand-in module satisfies that
    import when the real one is absent, and the audio is read without decoding."""
    import sys
    import types

    from datasets import Audio, load_dataset

    stand_in = {}
    if importlib.util.find_spec("torchcodec") is None:
        encoders = types.ModuleType("torchcodec.encoders")
        encoders.AudioEncoder = None
        stand_in = {"torchcodec": types.ModuleType("torchcodec"), "torchcodec.encoders": encoders}
    sys.modules.update(stand_in)  # only these two names, removed again below (never the modules loaded meanwhile)
    try:
        dataset = load_dataset("audiofolder", data_dir=str(out), cache_dir=str(cache))
    finally:
        for name in stand_in:
            sys.modules.pop(name, None)
    for split in dataset:
        dataset[split] = dataset[split].cast_column("audio", Audio(decode=False))
    return dataset


# --- each format from another working directory, and after a move -----------------------------------

@pytest.mark.parametrize("placement", [None, "link", "copy"])
def test_audiocraft_loads_from_anywhere_with_music_info(store: Path, tmp_path: Path, elsewhere: Path,
                                                        placement: str | None) -> None:
    out = run_export(store, tmp_path / "ac", "jsonl", split="80/10/10", placement=placement)
    loaded = [m for manifest in sorted(out.glob("*/data.jsonl")) for m in load_audiocraft(manifest)]
    assert len(loaded) == len(crops(store))
    by_id = {r["crop_id"]: r for r in crops(store)}
    for meta in loaded:
        assert meta["info"]["artist"] == by_id[meta["crop_id"]]["artist"]
        assert repr(meta["duration"]) == repr(round(meta["duration"] * meta["sample_rate"]) / meta["sample_rate"])


def test_audiocraft_absolute_paths_point_into_the_split_folders(store: Path, tmp_path: Path, elsewhere: Path) -> None:
    out = run_export(store, tmp_path / "ac", "jsonl", split="80/10/10", placement="link", absolute_paths=True)
    for manifest in sorted(out.glob("*/data.jsonl")):
        for line in manifest.read_text().splitlines():
            path = Path(json.loads(line)["path"])
            assert path.is_file() and path.parent == manifest.parent / "audio"


@pytest.mark.parametrize("placement", ["link", "copy"])
def test_stable_audio_loads_from_anywhere(store: Path, tmp_path: Path, elsewhere: Path, placement: str) -> None:
    out = run_export(store, tmp_path / "sa", "stable-audio", split="80/20", placement=placement)
    # every split with crops has its config (an empty one has none: test_export_edges.py)
    prompts = [p for config in sorted(out.glob("dataset_*.json")) for p in load_stable_audio(config)]
    assert len(prompts) == len(crops(store)) and all("BPM" in p for p in prompts)


@pytest.mark.parametrize("placement", ["link", "copy"])
def test_hf_audiofolder_loads_typed_from_anywhere_and_after_a_move(store: Path, tmp_path: Path, elsewhere: Path,
                                                                    placement: str) -> None:
    out = run_export(store, tmp_path / "hf", "hf", split="80/20", placement=placement)
    for folder in (out, None):
        folder = folder or moved(out)
        dataset = load_hf(folder, tmp_path / f"cache-{folder.name}")
        assert sum(len(dataset[s]) for s in dataset) == len(crops(store))
        train = dataset["train"]
        features = train.features
        assert features["bpm"].dtype in ("float64", "float32")
        for column in ("artist", "title", "album", "album_artist", "genre"):  # album_artist is empty here
            assert features[column].dtype in ("string", "large_string"), (column, features[column])
        assert "track_path" not in features and "source_path" not in features
        for row in train.select(range(3)):
            assert Path(row["audio"]["path"]).is_file()
            assert str(folder) in row["audio"]["path"]


def test_hf_refuses_absolute_paths(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="audiofolder"):
        run_export(store, tmp_path / "hf", "hf", absolute_paths=True)


@pytest.mark.parametrize("placement", [None, "link", "copy"])
def test_lhotse_loads_from_anywhere_with_custom(store: Path, tmp_path: Path, elsewhere: Path,
                                                 placement: str | None) -> None:
    out = run_export(store, tmp_path / "lh", "lhotse", split="90/10", placement=placement)
    cuts = [cut for manifest in sorted(out.glob("cuts_*.jsonl.gz")) for cut in load_lhotse(manifest)]
    assert len(cuts) == len(crops(store))
    assert all(cut.custom["bpm"] > 0 and cut.custom["description"] for cut in cuts)
    assert all(repr(c.duration) == repr(c.recording.num_samples / c.sampling_rate) for c in cuts)


def test_unplaced_exports_survive_a_move(store: Path, tmp_path: Path, elsewhere: Path) -> None:
    """Without --link/--copy, cwd-resolving manifests point into the store: moving the export keeps them."""
    lh = moved(run_export(store, tmp_path / "lh", "lhotse"))
    assert len(load_lhotse(lh / "cuts.jsonl.gz")) == len(crops(store))
    for fmt in ("csv", "parquet"):
        out = moved(run_export(store, tmp_path / fmt, fmt)) if fmt == "csv" else run_export(store, tmp_path / fmt, fmt)
        frame = pl.read_csv(out / "crops.csv") if fmt == "csv" else pl.read_parquet(out / "crops.parquet")
        assert all(Path(p).is_file() for p in frame["path"])
        assert "track_path" not in frame.columns and "source_path" not in frame.columns


@pytest.mark.parametrize("placement", ["link", "copy"])
def test_table_formats_with_placed_audio_load_from_anywhere(store: Path, tmp_path: Path, elsewhere: Path,
                                                            placement: str) -> None:
    out = run_export(store, tmp_path / "pq", "parquet", split="80/20", placement=placement)
    frame = pl.read_parquet(out / "crops.parquet")
    for row in frame.iter_rows(named=True):
        assert Path(row["path"]).is_file() and Path(row["path"]).parent == out / row["split"] / "audio"


@pytest.mark.parametrize("placement", ["link", "copy"])
def test_webdataset_and_folders_survive_a_move(store: Path, tmp_path: Path, elsewhere: Path, placement: str) -> None:
    import webdataset as wds

    shards = moved(run_export(store, tmp_path / "wd", "webdataset", split="80/20"))
    samples = list(wds.WebDataset([str(s) for s in sorted(shards.glob("*.tar"))], shardshuffle=False))
    assert len(samples) == len(crops(store))
    assert all(json.loads(s["json"])["description"] for s in samples)

    folders = moved(run_export(store, tmp_path / "fo", "folders", placement=placement))
    index = list(csv.DictReader((folders / "index.csv").open()))
    assert len(index) == len(crops(store)) and all((folders / r["path"]).is_file() for r in index)


def test_source_paths_only_when_asked(store: Path, tmp_path: Path) -> None:
    out = run_export(store, tmp_path / "a", "csv", include_source_paths=True)
    assert "track_path" in pl.read_csv(out / "crops.csv").columns


def test_split_shares_are_reported_and_a_skewed_split_warned(store: Path, tmp_path: Path) -> None:
    result = etl("export", "--format", "csv", "--split", "34/33/33", "--out", str(tmp_path / "x"), db=store,
                 check=True)
    assert "%" in result.stderr  # every split's achieved share
    assert "warning" in result.stderr.lower() and "off by" in result.stderr  # 3 tracks cannot make 34/33/33


# --- export safety ---------------------------------------------------------------------------------

def test_where_cannot_forge_rows(store: Path, tmp_path: Path) -> None:
    """The condition may not close its bracket and append rows of its own (a path, a crop id)."""
    forged = ("false) UNION ALL SELECT * REPLACE ('../../../escaped' AS crop_id), '/etc/hostname' AS source_path, "
              "NULL AS split FROM crops_v WHERE (true")
    for fmt in ("webdataset", "jsonl"):
        out = tmp_path / "a" / "b" / "c" / fmt
        result = etl("export", "--where", forged, "--format", fmt, "--out", str(out), db=store)
        assert result.returncode == 1 and result.stderr.startswith("error:"), result.stderr
        assert not out.exists() and not list(tmp_path.rglob("escaped*"))


@pytest.mark.parametrize("sql", ["SELECT * FROM query('SELECT 42')", "SELECT * FROM query_table('crops')",
                                 "SELECT * FROM crops_v WHERE crop_id IN (SELECT * FROM Query_Table(['crops']))"])
def test_query_table_functions_are_refused(store: Path, tmp_path: Path, sql: str) -> None:
    result = etl("query", sql, db=store)
    assert result.returncode == 1 and "query" in result.stderr.lower()
    where = etl("export", "--where", "crop_id IN (SELECT crop_id FROM query('SELECT * FROM crops'))",
                "--format", "csv", "--out", str(tmp_path / "q"), db=store)
    assert where.returncode == 1 and not (tmp_path / "q").exists()


def test_a_crafted_crop_id_cannot_write_outside_out(store: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy" / "etl.duckdb"
    shutil.copytree(store.parent, db.parent)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE crops SET crop_id = '../../../escaped' WHERE crop_id = (SELECT min(crop_id) FROM crops)")
    for fmt, options in (("jsonl", {"placement": "link"}), ("webdataset", {}), ("hf", {})):
        out = tmp_path / "deep" / "er" / fmt
        with pytest.raises(ExportError, match="crop id"):
            run_export(db, out, fmt, **options)
        assert not out.exists()
    assert not list(tmp_path.rglob("escaped*"))


def test_force_replaces_only_a_previous_export(store: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="export.json"):
        run_export(store, stranger, "csv", force=True)
    assert (stranger / "keep.txt").read_text() == "mine"

    previous = run_export(store, tmp_path / "previous", "csv")
    run_export(store, previous, "parquet", force=True)
    assert (previous / "crops.parquet").is_file() and not (previous / "crops.csv").exists()


def test_out_may_not_be_or_hold_the_store_data_or_sources(store: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(store), read_only=True) as con:
        [(data,)] = con.execute("SELECT data_folder()").fetchall()
        sources = [Path(p) for (p,) in con.execute("SELECT path FROM sources").fetchall()]
    for out in (store.parent, Path(data), sources[0], store.parent.parent):
        for force in (False, True):
            with pytest.raises(ExportError, match="--out"):
                run_export(store, out, "csv", force=force)
    assert store.is_file() and crops(store)
    assert all(Path(r["path"]).is_file() for r in crops(store))
    inside = store.parent / "exports" / "house"  # an export may live beside the store
    run_export(store, inside, "csv")
    assert (inside / "crops.csv").is_file()


# --- after a move: `etl export --relocate NEW` ---------------------------------------------------------

RELOCATABLE = {"jsonl": ["*/data.jsonl"], "lhotse": ["cuts_*.jsonl.gz"], "stable-audio": ["dataset_*.json"],
               "csv": ["crops.csv"], "parquet": ["crops.parquet"]}


def loaded_paths(fmt: str, folder: Path) -> list[str]:
    """Every absolute path the format's loader opens, loaded from the working directory as it stands."""
    if fmt == "jsonl":
        return [m["path"] for manifest in sorted(folder.glob("*/data.jsonl")) for m in load_audiocraft(manifest)]
    if fmt == "lhotse":
        return [source.source for manifest in sorted(folder.glob("cuts_*.jsonl.gz"))
                for cut in load_lhotse(manifest) for source in cut.recording.sources]
    if fmt == "stable-audio":
        paths = []
        for config_file in sorted(folder.glob("dataset_*.json")):
            assert all("BPM" in p for p in load_stable_audio(config_file))
            for dataset in json.loads(config_file.read_text())["datasets"]:
                assert Path(dataset["path"]).is_relative_to(folder)  # an empty split has no audio folder
                paths += [dataset["custom_metadata_module"]]
                paths += [str(p) for p in sorted(Path(dataset["path"]).glob("*.flac"))]
        return paths
    frame = pl.read_csv(folder / "crops.csv") if fmt == "csv" else pl.read_parquet(folder / "crops.parquet")
    return list(frame["path"])


def manifests(fmt: str, folder: Path) -> dict[str, Any]:
    """Each manifest's bytes (a Parquet file's table and schema: DuckDB's encoding may differ by the byte)."""
    import pyarrow.parquet as pq

    files = [p for pattern in [*RELOCATABLE.get(fmt, []), "export.json"] for p in folder.glob(pattern)]
    return {str(p.relative_to(folder)): pq.read_table(p) if p.suffix == ".parquet" else p.read_bytes()
            for p in sorted(files)}


def relocate_cli(folder: Path, *extra: str) -> Any:
    """`etl export --relocate`, with a database that does not exist: relocating needs none."""
    db = folder.parent / "no-database.duckdb"
    result = etl("export", "--relocate", str(folder), *extra, db=db)
    assert not db.exists()
    return result


@pytest.mark.parametrize("fmt", sorted(RELOCATABLE))
def test_relocate_a_moved_export(store: Path, tmp_path: Path, elsewhere: Path, fmt: str) -> None:
    out = run_export(store, tmp_path / fmt, fmt, split="80/20", placement="link")
    assert json.loads((out / "export.json").read_text())["out"] == str(out)
    new = moved(out)
    result = relocate_cli(new)
    assert result.returncode == 0 and f"to {new}" in result.stderr, result.stderr
    paths = loaded_paths(fmt, new)  # from a working directory that is neither OUT, NEW nor the store
    assert len([p for p in paths if p.endswith(".flac")]) == len(crops(store))
    for path in paths:
        assert Path(path).exists() and Path(path).is_relative_to(new), path
    assert json.loads((new / "export.json").read_text())["out"] == str(new)
    assert not list(new.rglob(".*relocate-*"))  # no temporary file left

    relocated = manifests(fmt, new)  # what a fresh export at NEW writes, to the byte
    run_export(store, new, fmt, split="80/20", placement="link", force=True)
    assert manifests(fmt, new) == relocated


def test_relocate_twice_and_after_a_second_move(store: Path, tmp_path: Path, elsewhere: Path) -> None:
    new = moved(run_export(store, tmp_path / "pq", "parquet", split="80/20", placement="copy"))
    assert relocate_cli(new).returncode == 0
    once = manifests("parquet", new)
    again = relocate_cli(new)
    assert again.returncode == 0 and "nothing to relocate" in again.stderr
    assert manifests("parquet", new) == once
    newer = moved(new)
    assert relocate_cli(newer).returncode == 0
    frame = pl.read_parquet(newer / "crops.parquet")
    assert all(Path(p).is_file() and Path(p).is_relative_to(newer) for p in frame["path"])
    assert frame.schema == pl.read_parquet_schema(newer / "crops.parquet") and frame["bpm"].dtype == pl.Float64


def test_relocate_in_place_changes_nothing(store: Path, tmp_path: Path) -> None:
    out = run_export(store, tmp_path / "lh", "lhotse", split="90/10", placement="link")
    before = manifests("lhotse", out)
    result = relocate_cli(out)
    assert result.returncode == 0 and "nothing to relocate" in result.stderr
    assert manifests("lhotse", out) == before


def test_relocate_survives_a_crash_between_files(store: Path, tmp_path: Path, elsewhere: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Each manifest is renamed into place whole, export.json last: relocating again finishes the job."""
    from etl.read.export import relocate as module

    out = run_export(store, tmp_path / "ac", "jsonl", split="34/33/33", placement="link")  # 3 manifests here
    new = moved(out)
    replace, calls = os.replace, []

    def crash_on_the_second(source: Any, target: Any) -> None:
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        replace(source, target)

    monkeypatch.setattr(module.os, "replace", crash_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        module.relocate(new)
    monkeypatch.setattr(module.os, "replace", replace)
    assert not list(new.rglob(".*relocate-*"))
    assert json.loads((new / "export.json").read_text())["out"] == str(out)
    for manifest in new.glob("*/data.jsonl"):  # whole: all old paths or all new
        lines = [json.loads(line)["path"] for line in manifest.read_text().splitlines()]
        assert all(p.startswith(f"{out}/") for p in lines) or all(p.startswith(f"{new}/") for p in lines)
    assert module.relocate(new).paths  # the manifests the crash left
    assert json.loads((new / "export.json").read_text())["out"] == str(new)
    assert all(Path(p).is_relative_to(new) and Path(p).is_file() for p in loaded_paths("jsonl", new))


def test_relocate_refuses_what_it_cannot_rewrite(store: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    refused = relocate_cli(stranger)
    assert refused.returncode == 1 and refused.stderr.startswith("error:") and "export.json" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    for fmt, options in (("hf", {}), ("folders", {}), ("webdataset", {}), ("lhotse", {}),  # lhotse: into the store
                         ("jsonl", {"placement": "link", "absolute_paths": False})):
        new = moved(run_export(store, tmp_path / fmt, fmt, **options))
        before = manifests(fmt, new)
        result = relocate_cli(new)
        assert result.returncode == 0 and "nothing to relocate" in result.stderr, (fmt, result.stderr)
        assert manifests(fmt, new) == before

    new = moved(run_export(store, tmp_path / "csv", "csv", placement="link"))
    both = relocate_cli(new, "--format", "csv")
    assert both.returncode == 1 and "--format" in both.stderr
    record = json.loads((new / "export.json").read_text())
    del record["out"]  # an export written before `out` was recorded
    (new / "export.json").write_text(json.dumps(record))
    older = relocate_cli(new)
    assert older.returncode == 1 and "export again" in older.stderr
    missing = etl("export", "--format", "csv", db=store)
    assert missing.returncode == 1 and "--out" in missing.stderr
