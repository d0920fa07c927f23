"""One writer per export format. Each gets a sandboxed read-only connection (which may write
only into the staging folder), the export plan, and the staging folder; it returns how many crops
it wrote per split. Paths in manifests are computed in SQL for the final folder (relative to the
manifest unless the plan says absolute).

Table-shaped manifests (CSV, Parquet, audiocraft JSON lines, audiofolder metadata) are written
by DuckDB's COPY; the others walk the rows in Arrow batches.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from etl.engine.resources import sql, used_binds
from etl.read.export import metadata
from etl.read.export.files import UniqueNames, inside, place, portable_name, store_name
from etl.read.export.plan import ExportPlan
from etl.read.export_formats import NAMES
from etl.read.query import copy_statement

Counts = dict[str | None, int]  # crops written per split (None: no split)
Writer = Callable[[duckdb.DuckDBPyConnection, ExportPlan, Path], Counts]
BATCH_ROWS = 5_000


def _copy(con: duckdb.DuckDBPyConnection, statement: tuple[str, dict[str, Any]], target: Path, fmt: str,
          split: str | None = None) -> int:
    """COPY the statement's rows to `target`; returns how many rows were written."""
    text, binds = statement
    target.parent.mkdir(parents=True, exist_ok=True)
    binds = used_binds(text, {**binds, "export_split": split})
    return con.execute(copy_statement(text, target, fmt), binds).fetchall()[0][0]


def _rows(con: duckdb.DuckDBPyConnection, statement: tuple[str, dict[str, Any]],
          split: str | None = None) -> Iterator[dict[str, Any]]:
    text, binds = statement
    reader = con.sql(text, params=used_binds(text, {**binds, "export_split": split})).to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        yield from batch.to_pylist()


def _split_dir(staging: Path, split: str | None) -> Path:
    return staging / split if split else staging


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=1, default=str) + "\n").encode("utf-8")


def _place_audio(con: duckdb.DuckDBPyConnection, plan: ExportPlan, staging: Path, sidecars: bool) -> Counts:
    """Hard-link (or copy) each crop to <split>/audio/<crop_id>.<format>, with audiocraft's sidecar."""
    counts: Counts = {}
    if not plan.placement:
        return counts
    for split in plan.split_names:
        counts[split] = 0
        for row in _rows(con, plan.statement("split_rows", per_split_manifest=True), split):
            name = f"{store_name(row['crop_id'], 'crop id')}.{store_name(row['format'], 'crop format')}"
            target = inside(staging, _split_dir(staging, split) / "audio" / name)
            place(Path(row["source_path"]), target, plan.placement)
            if sidecars:
                target.with_suffix(".json").write_bytes(json_bytes(metadata.music_info(row)))
            counts[split] += 1
    return counts


def write_table(fmt: str) -> Writer:
    def write(con: duckdb.DuckDBPyConnection, plan: ExportPlan, staging: Path) -> Counts:
        target = staging / f"crops.{fmt}"
        total = _copy(con, plan.statement("table"), target, fmt)
        _place_audio(con, plan, staging, sidecars=False)
        if not plan.splits:
            return {None: total}
        # One file holds every split: count them in what was written (cheaper than a second query).
        text = sql("export/rows.sql", f"split_counts_{fmt}")
        return dict(con.execute(text, {"export_file": str(target)}).fetchall())

    return write


def _leave_out_if_empty(manifest: Path, split: str | None, count: int) -> bool:
    """An empty split has no files in any format (loaders refuse an empty manifest: audiocraft's
    "No audio meta provided", lhotse's None, datasets' error); the export says so (export.json's
    `empty_splits`, a warning)."""
    if split and not count:
        manifest.unlink()
        return True
    return False


def _manifest_per_split(con: duckdb.DuckDBPyConnection, plan: ExportPlan, staging: Path, statement: str,
                        file_name: str, fmt: str) -> Counts:
    counts: Counts = {}
    for split in plan.split_names:
        manifest = _split_dir(staging, split) / file_name
        counts[split] = _copy(con, plan.statement(statement, per_split_manifest=True), manifest, fmt, split)
        if _leave_out_if_empty(manifest, split, counts[split]):
            manifest.parent.rmdir()  # <split>/ held only the manifest (no rows, no audio placed)
    return counts


def write_audiocraft(con: duckdb.DuckDBPyConnection, plan: ExportPlan, staging: Path) -> Counts:
    """<split>/data.jsonl of AudioMeta lines; sidecar .json beside placed audio (MusicDataset reads it)."""
    counts = _manifest_per_split(con, plan, staging, "audiocraft_lines", "data.jsonl", "jsonl")
    _place_audio(con, plan, staging, sidecars=True)
    return counts


def write_audiofolder(con: duckdb.DuckDBPyConnection, plan: ExportPlan, staging: Path) -> Counts:
    """Hugging Face audiofolder: <split>/metadata.parquet (typed columns) whose file_name is relative to it."""
    counts = _manifest_per_split(con, plan, staging, "audiofolder_metadata", "metadata.parquet", "parquet")
    _place_audio(con, plan, staging, sidecars=False)
    return counts


def write_stable_audio(con: duckdb.DuckDBPyConnection, plan: ExportPlan, staging: Path) -> Counts:
    """An `audio_dir` dataset config per split, a custom metadata module, a prompt JSON per crop."""
    counts = _place_audio(con, plan, staging, sidecars=True)
    module = Path(__file__).with_name("stable_audio_metadata.py")
    (staging / "custom_metadata.py").write_bytes(module.read_bytes())

    def path(relative: str) -> str:
        return str(plan.out / relative) if plan.absolute_paths else relative

    for split in plan.split_names:
        if split and not counts.get(split):
            continue  # an empty split: no config naming a folder that is not there
        config = {
            "dataset_type": "audio_dir",
            "datasets": [{
                "id": f"etl-{split}" if split else "etl",
                "path": path(f"{split}/audio" if split else "audio"),
                "custom_metadata_module": path("custom_metadata.py"),
            }],
            "random_crop": False,  # the crops are already the training windows
        }
        name = f"dataset_{split}.json" if split else "dataset.json"
        (staging / name).write_bytes(json_bytes(config))
    return counts


def _lhotse_cut(row: dict[str, Any]) -> dict[str, Any]:
    channels = list(range(int(row["channels"])))
    rate = int(row["sample_rate"])
    duration_s = int(row["frames"]) / rate
    recording = {
        "id": row["crop_id"],
        "sources": [{"type": "file", "channels": channels, "source": row["path"]}],
        "sampling_rate": rate,
        "num_samples": int(row["frames"]),
        "duration": duration_s,
        "channel_ids": channels,
    }
    custom = {k: v for k, v in metadata.music_info(row).items() if v not in (None, [])}
    custom["split"] = row["split"]
    mono = len(channels) == 1
    return {"id": row["crop_id"], "start": 0.0, "duration": duration_s, "channel": 0 if mono else channels,
            "supervisions": [], "recording": recording, "custom": custom, "type": "MonoCut" if mono else "MultiCut"}


def lhotse_line(cut: dict[str, Any]) -> bytes:
    return json.dumps(cut, ensure_ascii=False, default=str).encode() + b"\n"


def write_lhotse(con: duckdb.DuckDBPyConnection, plan: ExportPlan, staging: Path) -> Counts:
    """A CutSet per split as JSON lines, gzipped (lhotse.load_manifest reads it)."""
    counts: Counts = {}
    for split in plan.split_names:
        name = f"cuts_{split}.jsonl.gz" if split else "cuts.jsonl.gz"
        counts[split] = 0
        # mtime=0: the same export twice is byte-identical
        with gzip.GzipFile(staging / name, "wb", mtime=0) as handle:
            for row in _rows(con, plan.statement("split_rows"), split):
                handle.write(lhotse_line(_lhotse_cut(row)))
                counts[split] += 1
        _leave_out_if_empty(staging / name, split, counts[split])
    _place_audio(con, plan, staging, sidecars=False)
    return counts


class _ShardWriter:
    """Tar shards of at most `max_bytes` on disk (one sample always fits), members in sample order."""

    def __init__(self, folder: Path, prefix: str, max_bytes: int) -> None:
        self.folder, self.prefix, self.max_bytes = folder, prefix, max_bytes
        self.index, self.content_bytes, self._tar = -1, 0, None

    @staticmethod
    def archive_bytes(content_bytes: int) -> int:
        # tar ends with two zero blocks and is padded to whole 10 KiB records
        record = tarfile.RECORDSIZE
        return math.ceil((content_bytes + 2 * tarfile.BLOCKSIZE) / record) * record

    def add(self, key: str, members: dict[str, bytes]) -> None:
        sample_bytes = sum(tarfile.BLOCKSIZE + math.ceil(len(data) / tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                           for data in members.values())
        if self._tar is None or (self.content_bytes
                                 and self.archive_bytes(self.content_bytes + sample_bytes) > self.max_bytes):
            self._next()
        for extension, data in members.items():
            info = tarfile.TarInfo(f"{key}.{extension}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            self._tar.addfile(info, io.BytesIO(data))
        self.content_bytes += sample_bytes

    def _next(self) -> None:
        self.close()
        self.index += 1
        self.content_bytes = 0
        self._tar = tarfile.open(self.folder / f"{self.prefix}-{self.index:06d}.tar", "w", format=tarfile.USTAR_FORMAT)

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None


def write_webdataset(con: duckdb.DuckDBPyConnection, plan: ExportPlan, staging: Path) -> Counts:
    """<split>-NNNNNN.tar shards: <crop_id>.<format> (the audio bytes) and <crop_id>.json."""
    max_bytes = int(plan.extra.get("shard_bytes", 1 << 30))
    counts: Counts = {}
    for split in plan.split_names:
        shards = _ShardWriter(staging, split or "crops", max_bytes)
        counts[split] = 0
        try:
            for row in _rows(con, plan.statement("split_rows"), split):
                key = store_name(row["crop_id"], "crop id")  # a tar member name: never ../ or /
                audio = Path(row["source_path"]).read_bytes()
                info = {**metadata.music_info(row), "split": row["split"]}
                shards.add(key, {store_name(row["format"], "crop format"): audio, "json": json_bytes(info)})
                counts[split] += 1
        finally:
            shards.close()
    return counts


def write_folders(con: duckdb.DuckDBPyConnection, plan: ExportPlan, staging: Path) -> Counts:
    """Artist/Album/NN Title - 001.flac trees (hard links or copies) and index.csv mapping them."""
    import csv

    names = UniqueNames()
    counts: Counts = {}
    with open(staging / "index.csv", "w", newline="", encoding="utf-8") as handle:
        index = csv.writer(handle)
        index.writerow(["path", "crop_id", "track_id", "split", "artist", "album", "title"])
        for row in _rows(con, plan.statement("folder_rows")):
            folder = "/".join(filter(None, [
                row["split"],
                portable_name(row.get("album_artist") if row.get("compilation") else row.get("artist"),
                              "Unknown Artist"),
                portable_name(row.get("album"), "Unknown Album"),
            ]))
            number = f"{int(row['track_number']):02d} " if row.get("track_number") else ""
            title = portable_name(row.get("title") or row.get("source_name"), row["track_id"][:12])
            file_name = names.claim(folder, f"{number}{title} - {int(row['crop_index']) + 1:03d}", f".{row['format']}")
            relative = f"{folder}/{file_name}"
            place(Path(row["source_path"]), inside(staging, staging / relative), plan.placement or "link")
            index.writerow([relative, row["crop_id"], row["track_id"], row["split"] or "",
                            row.get("artist") or "", row.get("album") or "", row.get("title") or ""])
            counts[row["split"]] = counts.get(row["split"], 0) + 1
    return counts


FORMATS: dict[str, Writer] = {
    "jsonl": write_audiocraft,
    "stable-audio": write_stable_audio,
    "hf": write_audiofolder,
    "lhotse": write_lhotse,
    "webdataset": write_webdataset,
    "csv": write_table("csv"),
    "parquet": write_table("parquet"),
    "folders": write_folders,
}
if tuple(FORMATS) != NAMES:  # one list of formats: the CLI's help reads NAMES
    raise RuntimeError(f"etl/read/export_formats.py NAMES {NAMES} differ from the writers {tuple(FORMATS)}")
