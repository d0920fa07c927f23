"""Exports at their edges (issue 27): --force replaces only what the previous export wrote, an empty
split is left out by every format alike, relative paths resolve from the export folder, the prompt
travels in every format, and the options say what they do."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from etl.engine.errors import ExportError
from etl.read.export import ExportRequest, export
from etl.read.export.formats import FORMATS
from tests.helpers import crops, etl
from tests.integration.test_export_anywhere import load_audiocraft, load_lhotse, moved, relocate_cli


def run_export(store: Path, out: Path, fmt: str, **options: Any) -> Path:
    export(store, ExportRequest(out=out, format=fmt, **options))
    return out


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `folder`."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


# --- 27.4: --force replaces only what the previous export wrote -----------------------------------------

@pytest.mark.parametrize("record", ['{"tool": "other"}', '"hello"', "not json"])
def test_force_refuses_a_folder_whose_export_json_is_not_ours(store: Path, tmp_path: Path, record: str) -> None:
    folder = tmp_path / "theirs"
    (folder / "ckpt").mkdir(parents=True)
    (folder / "export.json").write_text(record)
    (folder / "NOTES.md").write_text("mine")
    (folder / "ckpt" / "model.pt").write_bytes(b"weights")
    before = tree(folder)
    with pytest.raises(ExportError, match="export.json"):
        run_export(store, folder, "csv", force=True)
    assert tree(folder) == before


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_force_refuses_and_names_files_the_previous_export_did_not_write(store: Path, tmp_path: Path,
                                                                          fmt: str) -> None:
    out = run_export(store, tmp_path / fmt, fmt, split="50/50")
    (out / "NOTES.md").write_text("mine")
    (out / "ckpt").mkdir()
    (out / "ckpt" / "model.pt").write_bytes(b"weights")
    # and a file inside one of the export's own folders (its deepest), where it has folders
    deep = max((p for p in out.rglob("*") if p.is_dir() and p.name != "ckpt"), key=lambda p: len(p.parts),
               default=out)
    (deep / "mine.txt").write_text("mine too")
    before = tree(out)
    result = etl("export", "--format", fmt, "--split", "50/50", "--out", str(out), "--force", db=store)
    assert result.returncode == 1 and result.stderr.startswith("error:"), result.stderr
    assert "NOTES.md" in result.stderr and "ckpt" in result.stderr and "mine.txt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert tree(out) == before
    (out / "NOTES.md").unlink()
    shutil.rmtree(out / "ckpt")
    (deep / "mine.txt").unlink()
    run_export(store, out, fmt, split="80/20", force=True)  # now only the export's own files: replaced
    assert json.loads((out / "export.json").read_text())["split"] == "80/20"


def test_force_refuses_an_export_that_does_not_list_its_files(store: Path, tmp_path: Path) -> None:
    out = run_export(store, tmp_path / "old", "csv")
    record = json.loads((out / "export.json").read_text())
    del record["files"]  # written by an etl before exports listed their files
    (out / "export.json").write_text(json.dumps(record))
    with pytest.raises(ExportError, match="lists no files"):
        run_export(store, out, "csv", force=True)
    assert (out / "crops.csv").is_file()


# --- 27.5: an empty split, one rule for every format ------------------------------------------------------

def written_splits(fmt: str, out: Path) -> set[str]:
    """The splits an export wrote files for."""
    if fmt in ("csv", "parquet"):
        frame = pl.read_csv(out / "crops.csv") if fmt == "csv" else pl.read_parquet(out / "crops.parquet")
        return set(frame["split"])
    if fmt in ("lhotse", "stable-audio", "webdataset"):
        prefix = {"lhotse": "cuts_", "stable-audio": "dataset_", "webdataset": ""}[fmt]
        names = [p.name[len(prefix):] for p in out.iterdir() if p.name.startswith(prefix) and p.is_file()]
        return {n.split(".")[0].split("-")[0] for n in names} - {"export", "custom_metadata", "index"}
    return {p.name for p in out.iterdir() if p.is_dir()}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_an_empty_split_is_left_out_and_said(store: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / fmt
    result = etl("export", "--format", fmt, "--split", "50/50/0", "--out", str(out), db=store)
    assert result.returncode == 0, result.stderr
    assert "test" not in written_splits(fmt, out)
    assert written_splits(fmt, out) <= {"train", "valid"} and written_splits(fmt, out)
    assert "warning: test has no crops" in result.stderr, result.stderr
    record = json.loads((out / "export.json").read_text())
    assert record["empty_splits"] == ["test"]
    assert {s["split"]: s["crops"] for s in record["splits"]}["test"] == 0
    if fmt == "lhotse":
        assert all(load_lhotse(m) for m in out.glob("cuts_*.jsonl.gz"))  # None for an empty file
    if fmt == "jsonl":
        assert all(load_audiocraft(m) for m in out.glob("*/data.jsonl"))


def test_every_split_full_records_no_empty_split(store: Path, tmp_path: Path) -> None:
    out = run_export(store, tmp_path / "x", "jsonl", split="50/50")
    assert json.loads((out / "export.json").read_text())["empty_splits"] == []


# --- 27.6: relative paths resolve from the export folder ------------------------------------------------

def in_folder(folder: Path) -> Any:
    class _Chdir:
        def __enter__(self) -> None:
            self.before = os.getcwd()
            os.chdir(folder)

        def __exit__(self, *_: Any) -> None:
            os.chdir(self.before)

    return _Chdir()


@pytest.mark.parametrize("placement", ["link", "copy"])
def test_relative_jsonl_paths_resolve_from_the_export_folder_for_every_split(store: Path, tmp_path: Path,
                                                                             placement: str) -> None:
    out = run_export(store, tmp_path / "ac", "jsonl", split="50/50", placement=placement, absolute_paths=False)
    with in_folder(out):  # audiocraft resolves from the working directory: one serves train and test
        loaded = [m for manifest in sorted(Path(".").glob("*/data.jsonl")) for m in load_audiocraft(manifest)]
    assert len(loaded) == len(crops(store)) and not any(m["path"].startswith("/") for m in loaded)
    relocated = relocate_cli(moved(out))
    assert relocated.returncode == 0 and "relative to the export folder" in relocated.stderr, relocated.stderr


@pytest.mark.parametrize("fmt", ["lhotse", "csv", "parquet"])
def test_relative_paths_into_the_store_are_refused(store: Path, tmp_path: Path, fmt: str) -> None:
    """Paths from OUT into the store break when either moves, and no relocation can tell which moved."""
    result = etl("export", "--format", fmt, "--relative-paths", "--out", str(tmp_path / fmt), db=store)
    assert result.returncode == 1 and "--relative-paths" in result.stderr and "--link" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / fmt).exists()
    placed = run_export(store, tmp_path / f"{fmt}-placed", fmt, split="50/50", placement="link", absolute_paths=False)
    with in_folder(placed):
        frame = (pl.read_csv("crops.csv") if fmt == "csv" else pl.read_parquet("crops.parquet")
                 if fmt == "parquet" else None)
        paths = (list(frame["path"]) if frame is not None else
                 [s.source for m in sorted(Path(".").glob("cuts_*.jsonl.gz")) for c in load_lhotse(m)
                  for s in c.recording.sources])
        assert len(paths) == len(crops(store)) and all(Path(p).is_file() and not p.startswith("/") for p in paths)


def test_relocate_refuses_an_older_export_with_relative_paths_into_the_store(store: Path, tmp_path: Path) -> None:
    out = run_export(store, tmp_path / "lh", "lhotse")
    record = json.loads((out / "export.json").read_text())
    record["absolute_paths"] = False  # as an etl before this one wrote `--relative-paths` without --link
    (out / "export.json").write_text(json.dumps(record))
    result = relocate_cli(moved(out))
    assert result.returncode == 1 and "export again" in result.stderr, result.stderr


# --- 27.7: the prompt in every format -------------------------------------------------------------------

def test_the_prompt_travels_in_every_format(store: Path, tmp_path: Path) -> None:
    sidecars = run_export(store, tmp_path / "ac", "jsonl", placement="link")
    prompts = {m["crop_id"]: m["info"]["prompt"] for m in load_audiocraft(sidecars / "data.jsonl")}
    assert len(prompts) == len(crops(store)) and all(prompts.values())
    assert all(m["info"]["description"] == prompts[m["crop_id"]] for m in load_audiocraft(sidecars / "data.jsonl"))
    tables = {
        "hf": pl.read_parquet(run_export(store, tmp_path / "hf", "hf") / "metadata.parquet"),
        "csv": pl.read_csv(run_export(store, tmp_path / "csv", "csv") / "crops.csv"),
        "parquet": pl.read_parquet(run_export(store, tmp_path / "pq", "parquet") / "crops.parquet"),
    }
    for fmt, frame in tables.items():
        assert dict(zip(frame["crop_id"], frame["prompt"])) == prompts, fmt
    with gzip.open(run_export(store, tmp_path / "lh", "lhotse") / "cuts.jsonl.gz", "rt") as handle:
        lhotse = {c["id"]: c["custom"]["prompt"] for c in map(json.loads, handle)}
    assert lhotse == prompts


def test_the_prompt_falls_back_to_the_model_genre_and_leads_with_a_caption(store: Path, tmp_path: Path) -> None:
    """An empty genre tag is no genre: the model's top label stands in, in SQL and Python alike."""
    db = tmp_path / "copy" / "etl.duckdb"
    shutil.copytree(store.parent, db.parent)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE track_tags SET genre = ''")
    frame = pl.read_csv(run_export(db, tmp_path / "csv", "csv") / "crops.csv")
    sidecars = run_export(db, tmp_path / "ac", "jsonl", placement="link")
    prompts = {m["crop_id"]: m["info"]["prompt"] for m in load_audiocraft(sidecars / "data.jsonl")}
    assert dict(zip(frame["crop_id"], frame["prompt"])) == prompts
    tops = dict(zip(frame["crop_id"], frame["genre_top"]))
    for crop_id, prompt in prompts.items():
        if tops[crop_id]:
            assert prompt.startswith(tops[crop_id].replace("---", " / ")), prompt


# --- 27.8: what the options say and do --------------------------------------------------------------------

def test_link_help_names_every_format_it_is_the_default_for(store: Path) -> None:
    from etl.read.export_formats import NEEDS_PLACED_AUDIO

    text = " ".join(etl("export", "--help", db=store, check=True).stdout.split())
    for fmt in NEEDS_PLACED_AUDIO:
        assert fmt in text.split("Default for", 1)[1].split(".", 1)[0], text


@pytest.mark.parametrize("flag", ["--link", "--copy"])
def test_webdataset_refuses_placement_it_does_not_do(store: Path, tmp_path: Path, flag: str) -> None:
    result = etl("export", "--format", "webdataset", flag, "--out", str(tmp_path / "wd"), db=store)
    assert result.returncode == 1 and result.stderr.startswith("error:") and flag in result.stderr, result.stderr
    assert not (tmp_path / "wd").exists()


def test_folders_name_untagged_tracks_by_their_file_and_number_tagged_ones(store: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy" / "etl.duckdb"
    shutil.copytree(store.parent, db.parent)
    with duckdb.connect(str(db)) as con:
        [(untagged, path)] = con.execute("SELECT track_id, path FROM tracks_v ORDER BY track_id LIMIT 1").fetchall()
        con.execute("UPDATE track_tags SET title = NULL, artist = NULL, album = NULL, track_number = NULL "
                    "WHERE track_id = $1", [untagged])
        con.execute("UPDATE track_tags SET track_number = 7 WHERE track_id != $1", [untagged])
    out = run_export(db, tmp_path / "fo", "folders")
    index = list(csv.DictReader((out / "index.csv").open()))
    names = {r["track_id"]: r["path"] for r in index}
    assert names[untagged].startswith(f"Unknown Artist/Unknown Album/{Path(path).stem} - 0"), names[untagged]
    assert all(Path(p).name.startswith("07 ") for t, p in names.items() if t != untagged)


def test_dedupe_is_refused_where_nothing_was_fingerprinted(store: Path, tmp_path: Path) -> None:
    """Issue 29: without fingerprints every track looks unique; --dedupe says so instead of keeping all."""
    db = tmp_path / "copy" / "etl.duckdb"
    shutil.copytree(store.parent, db.parent)
    kept = etl("export", "--format", "csv", "--dedupe", "--out", str(tmp_path / "a"), db=db)
    assert kept.returncode == 0, kept.stderr  # the store's three distinct recordings: none left out
    assert json.loads((tmp_path / "a" / "export.json").read_text())["copies_left_out"] == 0
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM track_fingerprints")
    refused = etl("export", "--format", "csv", "--dedupe", "--out", str(tmp_path / "b"), db=db)
    assert refused.returncode == 1 and "fingerprint" in refused.stderr and not (tmp_path / "b").exists()
