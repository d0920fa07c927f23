"""`etl query`, the Store API and `etl export` on a store built by the real pipeline from real music.

Each export format is loaded back with the library a trainer would use where it installs here
(lhotse, webdataset, polars, Hugging Face datasets' split detection), and otherwise with a minimal
reader that follows the format's documentation (audiocraft's AudioMeta / MusicInfo,
stable-audio-tools' custom metadata module): see docs/query-and-export.md.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import soundfile as sf

from etl import Store
from etl.engine.errors import ExportError, QueryError
from etl.read.export import ExportRequest, export
from etl.read.export import formats as export_formats
from tests.helpers import crops, etl


def test_store_has_tagged_crops_with_features(store: Path) -> None:
    rows = crops(store)
    assert len(rows) >= 20
    assert {r["artist"] for r in rows} == {"Sectoid (Carlos Viola Iborra)", "Maxstack", "Mattias Westlund"}
    assert all(r["loudness_integrated_lufs"] is not None and r["key_name"] for r in rows)


# --- etl query ---------------------------------------------------------------------------------

def test_query_formats_agree_with_duckdb(store: Path, tmp_path: Path) -> None:
    sql = "SELECT crop_id, artist, bpm, chroma_mean FROM crops_v ORDER BY crop_id"
    expected = crops(store)
    by_id = {r["crop_id"]: r for r in expected}

    as_json = json.loads(etl("query", sql, "--format", "json", db=store, check=True).stdout)
    lines = [json.loads(line) for line in etl("query", sql, "-f", "jsonl", db=store, check=True).stdout.splitlines()]
    table = list(csv.DictReader(io.StringIO(etl("query", sql, "-f", "csv", db=store, check=True).stdout)))
    etl("query", sql, "-f", "parquet", "--out", str(tmp_path / "r.parquet"), db=store, check=True)
    parquet = pl.read_parquet(tmp_path / "r.parquet").to_dicts()
    for result in (as_json, lines, table, parquet):
        assert [r["crop_id"] for r in result] == sorted(by_id)
    assert all(abs(r["bpm"] - by_id[r["crop_id"]]["bpm"]) < 1e-9 for r in as_json)
    assert parquet[0]["chroma_mean"] == pytest.approx(by_id[parquet[0]["crop_id"]]["chroma_mean"])
    assert not list(tmp_path.glob(".*tmp*")), "the temporary file was left behind"

    shown = etl("query", "SELECT artist, count(*) AS n FROM crops_v GROUP BY ALL", db=store, check=True).stdout
    assert "Maxstack" in shown and "artist" in shown


def test_named_queries_with_bound_parameters(store: Path) -> None:
    listing = {q["name"]: q for q in json.loads(etl("query", "--list", "--json", db=store, check=True).stdout)}
    assert listing["crops_by_bpm"]["params"] == ["min_bpm", "max_bpm"]
    assert {"crops_by_genre", "count_by_key", "tracks_overview"} <= set(listing)

    rock = etl("query", "--name", "crops_by_genre", "--param", "genre=rock", "-f", "json", db=store, check=True)
    assert {r["artist"] for r in json.loads(rock.stdout)} == {"Sectoid (Carlos Viola Iborra)"}
    # A parameter is data, never SQL: an injection attempt matches nothing.
    injected = etl("query", "--name", "crops_by_genre", "-p", "genre=x' OR 1=1 --", "-f", "json", db=store, check=True)
    assert json.loads(injected.stdout) == []

    bpms = [r["bpm"] for r in crops(store)]
    low, high = sorted(bpms)[len(bpms) // 4], sorted(bpms)[3 * len(bpms) // 4]
    result = etl("query", "-n", "crops_by_bpm", "-p", f"min_bpm={low}", "-p", f"max_bpm={high}", "-f", "json",
                 db=store, check=True)
    assert len(json.loads(result.stdout)) == sum(low <= b <= high for b in bpms)

    missing = etl("query", "-n", "crops_by_bpm", "-p", "min_bpm=1", db=store)
    assert missing.returncode == 1 and "--param max_bpm=VALUE" in missing.stderr


@pytest.mark.parametrize("sql", [
    "DELETE FROM crops",
    "SELECT 1; DROP TABLE crops",
    "COPY crops TO 'stolen.csv'",
    "ATTACH 'other.duckdb'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
])
def test_query_refuses_writes_and_files_in_one_line(store: Path, sql: str) -> None:
    result = etl("query", sql, db=store)
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
    assert len(crops(store)) >= 20


def test_store_api_returns_polars_frames(store: Path) -> None:
    api = Store(store)
    everything = api.crops()
    assert isinstance(everything, pl.DataFrame) and everything.height == len(crops(store))
    median = float(everything["bpm"].median())
    fast = api.crops(where="bpm >= $bpm", params={"bpm": median}, columns=["crop_id", "bpm", "artist"])
    assert fast.columns == ["crop_id", "bpm", "artist"]
    assert fast.height == everything.filter(pl.col("bpm") >= median).height
    assert api.tracks().height == 3
    assert sum(frame.height for frame in api.iter_crops(batch_rows=7)) == everything.height
    assert set(api.stage_status()["stage"]) >= {"ingest", "crops", "features"}
    with pytest.raises(QueryError):
        api.query("DELETE FROM crops")
    with pytest.raises(QueryError):
        api.crops(where="true; DROP TABLE crops")


def test_half_read_iter_crops_holds_no_lock(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook that reads one batch and stops must not keep `etl run` out of the file."""
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    api = Store(store)
    everything = api.crops()
    batches = api.iter_crops(batch_rows=7)
    first = next(batches)
    assert first.height == 7
    writer = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
                             str(store)], capture_output=True, text=True, timeout=60)
    assert writer.returncode == 0, f"a half-read iter_crops kept the file locked: {writer.stderr}"
    rest = list(batches)
    assert pl.concat([first, *rest]).equals(everything)  # same rows, order and types as crops()
    assert list(tmp_path.iterdir()) == [], "the snapshot was not removed"
    abandoned = api.iter_crops(batch_rows=7)
    next(abandoned)
    abandoned.close()
    assert list(tmp_path.iterdir()) == [], "the snapshot of an abandoned iterator was not removed"


# --- etl export --------------------------------------------------------------------------------

def run_export(store: Path, out: Path, fmt: str, **options: Any) -> Path:
    export(store, ExportRequest(out=out, format=fmt, **options))
    return out


def resolve(manifest: Path, path: str) -> Path:
    return Path(path) if os.path.isabs(path) else (manifest.parent / path).resolve()


def test_jsonl_is_audiocraft_manifest_with_music_info_sidecars(store: Path, tmp_path: Path) -> None:
    out = run_export(store, tmp_path / "ac", "jsonl", split="80/10/10", placement="link")
    rows = {r["crop_id"]: r for r in crops(store)}
    seen = 0
    for manifest in sorted(out.glob("*/data.jsonl")):
        for line in manifest.read_text().splitlines():
            meta = json.loads(line)  # audiocraft's AudioMeta.from_dict keeps these fields, ignores the rest
            assert set(meta) >= {"path", "duration", "sample_rate", "amplitude", "weight", "info_path"}
            audio = resolve(manifest, meta["path"])
            info = sf.info(str(audio))
            assert info.samplerate == meta["sample_rate"]
            assert abs(info.duration - meta["duration"]) < 0.01
            assert os.stat(audio).st_ino == os.stat(rows[meta["crop_id"]]["path"]).st_ino  # a hard link
            # MusicDataset reads path.with_suffix('.json') and requires every MusicInfo field.
            sidecar = json.loads(audio.with_suffix(".json").read_text())
            assert {"title", "artist", "key", "bpm", "genre", "moods", "keywords", "description", "name",
                    "instrument"} <= set(sidecar)
            assert sidecar["artist"] == rows[meta["crop_id"]]["artist"]
            assert sidecar["key"] == rows[meta["crop_id"]]["key_name"] and sidecar["description"]
            seen += 1
    assert seen == len(rows)


def test_stable_audio_config_module_and_prompts(store: Path, tmp_path: Path) -> None:
    out = run_export(store, tmp_path / "sa", "stable-audio")
    config = json.loads((out / "dataset.json").read_text())
    assert config["dataset_type"] == "audio_dir"
    dataset = config["datasets"][0]
    module_path = out / dataset["custom_metadata_module"]
    spec = importlib.util.spec_from_file_location("custom_metadata", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = sorted((out / dataset["path"]).glob("*.flac"))
    assert len(files) == len(crops(store))
    for audio in files[:5]:  # how stable-audio-tools calls it: info carries the file's path
        info = {"path": str(audio), "relpath": audio.name}
        prompt = module.get_custom_metadata(info, None)["prompt"]
        assert "BPM" in prompt and " by " in prompt


def test_hf_audiofolder_splits_and_metadata(store: Path, tmp_path: Path) -> None:
    from datasets.data_files import get_data_patterns

    out = run_export(store, tmp_path / "hf", "hf", split="80/10/10")
    patterns = get_data_patterns(str(out))  # the split names Hugging Face datasets recognises
    assert {str(s) for s in patterns} <= {"train", "validation", "test"} and "train" in {str(s) for s in patterns}
    total = 0
    for metadata in out.glob("*/metadata.parquet"):
        frame = pl.read_parquet(metadata)
        assert frame.columns[0] == "file_name"
        for name in frame["file_name"]:
            assert (metadata.parent / name).is_file() and not name.startswith("/")
        total += frame.height
    assert total == len(crops(store))


def test_lhotse_cutset_loads_audio(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lhotse

    out = run_export(store, tmp_path / "lh", "lhotse", split="90/10")
    monkeypatch.chdir(out)  # relative paths are relative to the manifest
    cuts = lhotse.load_manifest("cuts_train.jsonl.gz")
    assert len(cuts) > 0
    cut = next(iter(cuts))
    samples = cut.load_audio()
    assert samples.shape[-1] == pytest.approx(cut.duration * cut.sampling_rate, abs=2)
    assert cut.custom["bpm"] > 0 and cut.custom["split"] == "train"
    others = [lhotse.load_manifest(m) for m in sorted(Path(".").glob("cuts_*.jsonl.gz")) if m.name != "cuts_train.jsonl.gz"]
    assert len(cuts) + sum(len(c) for c in others) == len(crops(store))


def test_webdataset_shards_respect_the_size_limit(store: Path, tmp_path: Path) -> None:
    import webdataset as wds

    limit = 1 << 20
    out = run_export(store, tmp_path / "wd", "webdataset", shard_bytes=limit)
    shards = sorted(out.glob("crops-*.tar"))
    assert len(shards) > 1
    for shard in shards:
        assert shard.stat().st_size <= limit or len(tarfile.open(shard).getnames()) == 2
    samples = list(wds.WebDataset([str(s) for s in shards], shardshuffle=False))
    assert len(samples) == len(crops(store))
    first = samples[0]
    info = sf.info(io.BytesIO(first["flac"]))
    assert info.duration == pytest.approx(json.loads(first["json"])["duration_s"], abs=0.01)


def test_csv_and_parquet_carry_every_column_and_the_split(store: Path, tmp_path: Path) -> None:
    rows = crops(store)
    for fmt in ("csv", "parquet"):
        out = run_export(store, tmp_path / fmt, fmt, split="50/50", absolute_paths=True)
        frame = pl.read_parquet(out / "crops.parquet") if fmt == "parquet" else pl.read_csv(out / "crops.csv")
        assert frame.height == len(rows) and {"split", "bpm", "key_name", "path"} <= set(frame.columns)
        assert set(frame["split"]) == {"train", "test"}
        assert set(frame["path"]) == {r["path"] for r in rows}


def test_folders_are_portable_hard_linked_trees(store: Path, tmp_path: Path) -> None:
    out = run_export(store, tmp_path / "folders", "folders")
    files = sorted(p for p in out.rglob("*.flac"))
    assert len(files) == len(crops(store))
    for path in files:
        relative = path.relative_to(out).as_posix()
        assert relative.isascii() and relative.count("/") == 2
    assert (out / "Mattias Westlund" / "The Battle for Wesnoth OST").is_dir()
    assert any(p.name.startswith("Traveling Minstrels - 001") for p in files)
    index = list(csv.DictReader((out / "index.csv").open()))
    assert sorted(out / r["path"] for r in index) == files
    assert all(os.stat(p).st_nlink >= 2 for p in files)  # links, not copies


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("group_by", ["track", "album", "artist"])
def test_splits_are_deterministic_and_keep_groups_together(store: Path, tmp_path: Path, group_by: str) -> None:
    first = run_export(store, tmp_path / "a", "csv", split="34/33/33", group_by=group_by)
    second = run_export(store, tmp_path / "b", "csv", split="34/33/33", group_by=group_by)
    # The same bytes, but for export.json's record of where it was written (`out`, for --relocate).
    without_out = [{k: v for k, v in json.loads((folder / "export.json").read_text()).items() if k != "out"}
                   for folder in (first, second)]
    assert without_out[0] == without_out[1]
    assert {k: v for k, v in tree_digest(first).items() if k != "export.json"} == \
        {k: v for k, v in tree_digest(second).items() if k != "export.json"}
    frame = pl.read_csv(first / "crops.csv")
    key = {"track": "track_id", "album": "album", "artist": "artist"}[group_by]
    assert frame.group_by(key).agg(pl.col("split").n_unique())["split"].max() == 1


def test_export_refuses_a_non_empty_folder_and_never_leaves_half_an_export(
        store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        run_export(store, out, "csv")
    with pytest.raises(ExportError, match="export.json"):  # --force never replaces a stranger's folder
        run_export(store, out, "csv", force=True)
    assert (out / "keep.txt").read_text() == "mine"

    previous = run_export(store, tmp_path / "previous", "parquet")
    before = tree_digest(previous)

    def broken(con: Any, plan: Any, staging: Path) -> None:
        (staging / "crops.csv").write_text("half")
        raise OSError("disk full")

    monkeypatch.setitem(export_formats.FORMATS, "csv", broken)
    with pytest.raises(OSError):
        run_export(store, previous, "csv", force=True)
    assert tree_digest(previous) == before  # the previous export is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "previous"]  # no staging folder left
    monkeypatch.undo()

    run_export(store, previous, "csv", force=True)
    assert not (previous / "crops.parquet").exists() and (previous / "crops.csv").is_file()


def test_export_cli_where_split_and_bad_where(store: Path, tmp_path: Path) -> None:
    result = etl("export", "--where", "artist = $who", "--param", "who=Maxstack", "--format", "jsonl",
                 "--split", "90/5/5", "--out", str(tmp_path / "x"), "--json", db=store, check=True)
    summary = json.loads(result.stdout)
    assert sum(s["crops"] for s in summary) == len(crops(store, "artist = 'Maxstack'"))
    assert json.loads((tmp_path / "x" / "export.json").read_text())["where"] == "artist = $who"

    bad = etl("export", "--where", "true; DROP TABLE crops", "--format", "csv", "--out", str(tmp_path / "y"),
              db=store)
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and not (tmp_path / "y").exists()
    none = etl("export", "--where", "bpm > 1000", "--format", "csv", "--out", str(tmp_path / "z"), db=store)
    assert none.returncode == 1 and "no crops match" in none.stderr


@pytest.fixture(scope="module")
def crops_only(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store as a run of ingest and crops alone leaves it: no MIDI, chords, features or captions."""
    import shutil

    copy = tmp_path_factory.mktemp("crops-only") / "etl.duckdb"
    shutil.copyfile(store, copy)
    with duckdb.connect(str(copy)) as con:
        for table in ("crop_midi_notes", "crop_midi", "crop_chords", "crop_features", "crop_stem_features",
                      "crop_captions"):
            con.execute(f"DELETE FROM {table}")
    etl("init", db=copy, check=True)  # the views as this code makes them
    return copy


@pytest.mark.parametrize("view, condition", [
    ("crops_v", "true"),
    ("crops_all_v", "present"),
    ("crops_v", "track_bpm > 0"),
    ("crops_v", "track_path IS NOT NULL"),
    ("tracks_v", "true"),
])
def test_limit_means_limit_on_the_views(crops_only: Path, view: str, condition: str) -> None:
    """Issue 27: `SELECT ... FROM crops_v LIMIT 1` gave every crop on a store whose crop_midi has no
    'mix' row or crop_captions no 'full' one (a DuckDB optimizer bug: its minimal form is in
    sql/views/20_crops_v.sql). Users sampling with LIMIT must get at most that many rows."""
    with duckdb.connect(str(crops_only), read_only=True) as con:
        matching = con.execute(f"SELECT count(*) FROM {view} WHERE {condition}").fetchone()[0]
        assert matching > 2
        for limit in (1, 2):
            got = con.execute(f"SELECT count(*) FROM (SELECT * FROM {view} WHERE {condition} LIMIT {limit})").fetchone()[0]
            assert got == limit, f"{view} WHERE {condition} LIMIT {limit} gave {got} rows"


def test_limit_means_limit_on_every_view(store: Path, crops_only: Path) -> None:
    """The sweep after issue 27.3: every view the store defines, on a full store and on one with
    empty stage tables, gives LIMIT 1 one row wherever it has rows."""
    for db in (store, crops_only):
        with duckdb.connect(str(db), read_only=True) as con:
            views = [v for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
            assert {"crops_v", "tracks_v", "crop_midi_v", "track_classes_v"} <= set(views)
            for view in views:
                rows_in_view = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
                got = con.execute(f"SELECT count(*) FROM (SELECT * FROM {view} LIMIT 1)").fetchone()[0]
                assert got == min(rows_in_view, 1), f"{view} LIMIT 1 gave {got} of {rows_in_view} rows ({db})"


def test_etl_query_limit_gives_that_many_rows(crops_only: Path) -> None:
    shown = json.loads(etl("query", "--format", "json", "SELECT crop_id FROM crops_v LIMIT 1", db=crops_only,
                           check=True).stdout)
    assert len(shown) == 1


def test_query_out_replaces_nothing_it_should_not(store: Path, tmp_path: Path) -> None:
    """Issue 27.1: `etl query --out` overwrote anything (the store itself became a 195-byte Parquet
    file). It refuses what export and report refuse, and an existing file without --force."""
    import shutil

    copy = tmp_path / "store" / "etl.duckdb"
    copy.parent.mkdir()
    shutil.copyfile(store, copy)
    before = copy.read_bytes()

    def query_to(out: Path, *extra: str):
        return etl("query", "SELECT 1 AS x", "--format", "parquet", "--out", str(out), *extra, db=copy)

    refused = query_to(copy)
    assert refused.returncode == 1 and "the database" in refused.stderr, refused.stderr
    assert "unexpected" not in refused.stderr and copy.read_bytes() == before
    crop = Path(crops(store)[0]["path"])  # the store's own crop file: its data folder is beside it
    crop_bytes = crop.read_bytes()
    refused = etl("query", "SELECT 1 AS x", "--format", "parquet", "--out", str(crop), "--force", db=store)
    assert refused.returncode == 1 and "the data folder" in refused.stderr, refused.stderr
    assert crop.read_bytes() == crop_bytes
    source = Path(crops(copy)[0]["track_path"])
    refused = query_to(source.parent / "new.parquet")
    assert refused.returncode == 1 and "a source folder" in refused.stderr, refused.stderr
    assert not (source.parent / "new.parquet").exists()

    mine = tmp_path / "mine.parquet"
    mine.write_text("a user's file")
    refused = query_to(mine)
    assert refused.returncode == 1 and "--force" in refused.stderr and mine.read_text() == "a user's file"
    assert query_to(mine, "--force").returncode == 0
    assert pl.read_parquet(mine)["x"].to_list() == [1]
    assert query_to(tmp_path / "new.parquet").returncode == 0


def test_a_refused_query_or_report_leaves_no_folder_behind(store: Path, tmp_path: Path) -> None:
    """The sweep of issue 27: --out's folder is made only for a result that can be written."""
    bad = etl("query", "SELECT nonsense FROM crops_v", "--format", "csv", "--out", str(tmp_path / "a" / "b" / "x.csv"),
              db=store)
    assert bad.returncode == 1 and not (tmp_path / "a").exists(), bad.stderr
    bad = etl("report", "--out", str(tmp_path / "r" / "s"), "--where", "nonsense > 1", db=store)
    assert bad.returncode == 1 and not (tmp_path / "r").exists(), bad.stderr
    good = etl("query", "SELECT 1 AS x", "--format", "csv", "--out", str(tmp_path / "a" / "b" / "x.csv"), db=store)
    assert good.returncode == 0 and (tmp_path / "a" / "b" / "x.csv").read_text().splitlines() == ["x", "1"]
