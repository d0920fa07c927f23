"""`etl export --relocate DIR`: make a moved export's manifests name their audio where it now lies.

Exports whose loaders resolve paths from the working directory (jsonl, lhotse, stable-audio, csv,
parquet) write absolute paths to the files placed under OUT/<split>/audio/ (with --link / --copy).
After `mv OUT NEW` those paths still name OUT; relocating replaces the OUT prefix, which export.json
records as `out`, with NEW's absolute path in every manifest, then records NEW as `out`. No database
is needed. Paths into the store (unplaced exports) do not start with OUT and are left as they are.

Each file is written under a temporary name and renamed over the old one, export.json last: a crash
leaves every manifest whole, and relocating again finishes the job (a path already under NEW is left).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.engine.errors import ExportError
from etl.read.export.record import read_record, record_bytes
from etl.read.export.formats import json_bytes, lhotse_line
from etl.read.export_formats import PATHS
from etl.read.query import copy_statement


@dataclass
class Relocation:
    format: str
    old: str | None          # the folder the manifests named (None: nothing to relocate)
    new: str
    files: int = 0           # manifests rewritten
    paths: int = 0           # paths rewritten in them
    reason: str = ""         # why nothing was rewritten

    def message(self) -> str:
        if self.reason:
            return f"nothing to relocate: {self.reason}"
        return (f"relocated {self.format} export from {self.old} to {self.new}: "
                f"{self.paths:,} paths in {self.files} files rewritten")


class _Prefix:
    """Rewrites paths under `old` to lie under `new`; a path already under `new` is left as it is."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new, self.count = old.rstrip("/"), new.rstrip("/"), 0

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or value == self.new or value.startswith(self.new + "/"):
            return value
        if value == self.old or value.startswith(self.old + "/"):
            self.count += 1
            return self.new + value[len(self.old):]
        return value


@contextlib.contextmanager
def _replacing(target: Path) -> Iterator[Path]:
    """A temporary file beside `target`, renamed over it when the block succeeds (removed otherwise)."""
    temporary = target.with_name(f".{target.name}.relocate-{uuid.uuid4().hex[:8]}")
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _replace_bytes(target: Path, data: bytes) -> bool:
    if target.read_bytes() == data:
        return False
    with _replacing(target) as temporary:
        temporary.write_bytes(data)
    return True


def _jsonl(folder: Path, move: _Prefix) -> int:
    """audiocraft's <split>/data.jsonl: `path` and `info_path` (the sidecars hold no paths)."""
    files = 0
    for manifest in sorted([*folder.glob("data.jsonl"), *folder.glob("*/data.jsonl")]):
        lines = []
        for line in manifest.read_text(encoding="utf-8").splitlines():
            meta = json.loads(line)
            for key in ("path", "info_path"):
                if key in meta:
                    meta[key] = move(meta[key])
            lines.append(json.dumps(meta, ensure_ascii=False, separators=(",", ":")) + "\n")
        files += _replace_bytes(manifest, "".join(lines).encode("utf-8"))
    return files


def _lhotse(folder: Path, move: _Prefix) -> int:
    """cuts[_<split>].jsonl.gz: each Recording's sources."""
    files = 0
    for manifest in sorted(folder.glob("cuts*.jsonl.gz")):
        with gzip.open(manifest, "rt", encoding="utf-8") as handle:
            cuts = [json.loads(line) for line in handle if line.strip()]
        for cut in cuts:
            for source in cut.get("recording", {}).get("sources", []):
                source["source"] = move(source.get("source"))
        # written as write_lhotse writes it: one cut a line, gzip's mtime 0
        text = b"".join(lhotse_line(cut) for cut in cuts)
        if gzip.decompress(manifest.read_bytes()) == text:
            continue
        with (_replacing(manifest) as temporary, open(temporary, "wb") as raw,
              gzip.GzipFile(manifest.name, "wb", fileobj=raw, mtime=0) as handle):  # the header names the manifest
            handle.write(text)
        files += 1
    return files


def _stable_audio(folder: Path, move: _Prefix) -> int:
    """dataset[_<split>].json: each dataset's `path` and `custom_metadata_module`."""
    files = 0
    for config_file in sorted(folder.glob("dataset*.json")):
        config = json.loads(config_file.read_text(encoding="utf-8"))
        for dataset in config.get("datasets", []):
            for key in ("path", "custom_metadata_module"):
                if key in dataset:
                    dataset[key] = move(dataset[key])
        files += _replace_bytes(config_file, json_bytes(config))
    return files


def _csv(folder: Path, move: _Prefix) -> int:
    """crops.csv: the `path` column, rewritten by DuckDB as it wrote it (every other field as it was)."""
    import duckdb

    manifest = folder / "crops.csv"
    if not manifest.is_file():
        return 0
    read = "read_csv($file, header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"')"
    under = "(path = ${0} OR starts_with(path, ${0} || '/'))"
    moved = (f"CASE WHEN {under.format('new')} THEN path "
             f"WHEN {under.format('old')} THEN $new || substr(path, length($old) + 1) ELSE path END")
    binds = {"file": str(manifest), "old": move.old, "new": move.new}
    with duckdb.connect() as con:
        [(changed,)] = con.execute(f"SELECT count(*) FILTER ({under.format('old')} AND NOT {under.format('new')}) "
                                   f"FROM {read}", binds).fetchall()
        if not changed:
            return 0
        with _replacing(manifest) as temporary:
            con.execute(copy_statement(f"SELECT * REPLACE ({moved} AS path) FROM {read}", temporary, "csv"), binds)
    move.count += changed
    return 1


def _parquet(folder: Path, move: _Prefix) -> int:
    """crops.parquet: the `path` column, rewritten by pyarrow; every other column and the schema (types,
    nullability) kept as read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = folder / "crops.parquet"
    if not manifest.is_file():
        return 0
    table = pq.read_table(manifest)
    index = table.schema.get_field_index("path")
    before = table.column(index).to_pylist()
    after = [move(path) for path in before]
    if after == before:
        return 0
    field = table.schema.field(index)
    with _replacing(manifest) as temporary:
        pq.write_table(table.set_column(index, field, pa.array(after, type=field.type)), temporary)
    return 1


REWRITERS = {"jsonl": _jsonl, "lhotse": _lhotse, "stable-audio": _stable_audio,
             "csv": _csv, "parquet": _parquet}


def relocate(folder: Path) -> Relocation:
    """Rewrite the export in `folder` (moved there from where export.json says) for its new place."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise ExportError(f"{folder} is not a folder: nothing to relocate")
    record = read_record(folder)
    fmt, new = record["format"], str(folder)
    if PATHS[fmt] != "cwd":
        how = "the shards carry the audio" if PATHS[fmt] is None else "its paths are relative to the manifest"
        return Relocation(fmt, None, new, reason=f"a {fmt} export works wherever it lies ({how})")
    if not record.get("absolute_paths"):
        if not record.get("placement"):  # written by an etl that allowed it: paths from OUT into the store
            raise ExportError(f"this {fmt} export's relative paths lead from where it was written into the "
                              "store, which cannot be told from here: export again (with --link for "
                              "--relative-paths)")
        return Relocation(fmt, None, new, reason=f"this {fmt} export's paths are relative to the export folder: "
                                                 "it works wherever it lies (run the loader from it)")
    if not record.get("placement"):
        return Relocation(fmt, None, new, reason=f"this {fmt} export names the store's crop files, which stay put")
    old = record.get("out")
    if not isinstance(old, str) or not old.startswith("/"):
        raise ExportError(f"{folder / 'export.json'} records no `out` (written by an older etl): "
                          "export again to this folder (the same command writes the same files)")
    move = _Prefix(old, new)
    files = REWRITERS[fmt](folder, move)
    if old != new:  # last: until here, relocating again redoes what a crash left
        record["out"] = new
        _replace_bytes(folder / "export.json", record_bytes(record))
    if old == new and not files:
        return Relocation(fmt, old, new, reason=f"the export is where it was written ({new})")
    return Relocation(fmt, old, new, files=files, paths=move.count)
