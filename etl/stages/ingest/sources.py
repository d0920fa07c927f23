"""The source folders: listed, added, removed and moved (`etl sources ...`).

A folder that is not reachable (an unmounted drive, a folder this user may not list) is reported,
never taken for deleted. Removing
a folder makes its files missing: their tracks leave the views at once, their data stays until
`etl gc` forgets them after [run] missing_grace_days. Moving a folder rewrites the paths of the
files found unchanged at the new place (same size, mtime and sampled hash), so nothing is hashed
or computed again; the others are left for the next run to notice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.dsp.identity import sample_hash
from etl.engine.errors import ConfigError
from etl.engine.resources import execute, registered
from etl.stages.ingest import unreachable

if TYPE_CHECKING:
    import duckdb

SQL = "stages/ingest/sources.sql"


def folder_path(folder: Path | str, must_exist: bool = True) -> str:
    """A source folder as stored: absolute and resolved (when it exists)."""
    path = Path(folder).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if must_exist:
        raise ConfigError(f"source {folder} is not a folder")
    return os.path.abspath(path)


def _registered(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in execute(con, "pipeline.sql", "list_sources").fetchall()]


def _overlapping(path: str, others: list[str]) -> str | None:
    """A registered source inside `path` or holding it (their files would be scanned twice)."""
    for other in others:
        if other != path and (path.startswith(other + os.sep) or other.startswith(path + os.sep)):
            return other
    return None


def listing(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    result = execute(con, SQL, "list")
    names = [d[0] for d in result.description]
    rows = [dict(zip(names, row)) for row in result.fetchall()]
    for row in rows:
        row["reachable"] = unreachable(row["path"]) is None  # a folder that cannot be listed is not
    return rows


def add(con: duckdb.DuckDBPyConnection, folder: Path | str) -> str:
    path = folder_path(folder)
    other = _overlapping(path, _registered(con))
    if other is not None:
        raise ConfigError(f"source {path} overlaps the registered source {other}: "
                          f"register one folder of a tree (`etl sources remove` the other first)")
    execute(con, SQL, "add", {"path": path})
    return path


def remove(con: duckdb.DuckDBPyConnection, folder: Path | str) -> str:
    path = folder_path(folder, must_exist=False)
    if path not in _registered(con):
        raise ConfigError(f"{path} is not a registered source (see `etl sources list`)")
    execute(con, SQL, "mark_missing", {"path": path})
    execute(con, SQL, "remove", {"path": path})
    return path


def _same_file(new_path: str, row: dict[str, Any]) -> os.stat_result | None:
    """The new file's stat when it is the file recorded at the old path (size, mtime, sampled hash)."""
    try:
        info = os.stat(new_path)
        if (info.st_size, info.st_mtime_ns) != (row["size_bytes"], row["mtime_ns"]):
            return None
        if row["sample_hash"] is not None and sample_hash(new_path) != row["sample_hash"]:
            return None
        return info
    except OSError:
        return None


def move(con: duckdb.DuckDBPyConnection, old: Path | str, new: Path | str) -> dict[str, Any]:
    """Point a source at its new place; returns how many files were found there unchanged."""
    import pyarrow as pa

    old_path, new_path = folder_path(old, must_exist=False), folder_path(new)
    sources = _registered(con)
    if old_path not in sources:
        raise ConfigError(f"{old_path} is not a registered source (see `etl sources list`)")
    other = _overlapping(new_path, [s for s in sources if s != old_path])
    if new_path in sources or other is not None:
        raise ConfigError(f"{new_path} is (or overlaps) the registered source {other or new_path}")
    result = execute(con, SQL, "files_under", {"path": old_path})
    names = [d[0] for d in result.description]
    rows = [dict(zip(names, row)) for row in result.fetchall()]
    moved: dict[str, list[Any]] = {"old_path": [], "path": [], "ctime_ns": [], "inode": []}
    for row in rows:
        if not row["path"].startswith(old_path + os.sep):
            continue
        target = new_path + row["path"][len(old_path):]
        info = _same_file(target, row)
        if info is not None:
            for name, value in (("old_path", row["path"]), ("path", target), ("ctime_ns", info.st_ctime_ns),
                                ("inode", info.st_ino)):
                moved[name].append(value)
    table = pa.table({"old_path": pa.array(moved["old_path"], pa.string()), "path": pa.array(moved["path"], pa.string()),
                      "ctime_ns": pa.array(moved["ctime_ns"], pa.int64()),
                      "inode": pa.array(moved["inode"], pa.int64())})
    renamed = table.select(["old_path", "path"]).rename_columns(["old_id", "new_id"])
    with registered(con, moved=table, renamed=renamed):
        execute(con, SQL, "move_files", {"new": new_path})
        # Ingest's items are paths: their state and outputs follow the files.
        execute(con, "engine/state.sql", "rename_items", {"stage": "ingest"})
        execute(con, "engine/state.sql", "rename_outputs", {"stage": "ingest"})
    execute(con, SQL, "move_source", {"old": old_path, "new": new_path})
    execute(con, SQL, "remove", {"path": old_path})
    execute(con, SQL, "add", {"path": new_path})
    return {"old": old_path, "new": new_path, "files": len(rows), "moved": len(moved["path"]),
            "not_found": len(rows) - len(moved["path"])}


def forget_missing(con: duckdb.DuckDBPyConnection, grace_days: float) -> int:
    """`etl gc`: forget the paths missing for longer than `grace_days`, and the tracks only they held."""
    execute(con, SQL, "forget_missing_tracks", {"grace_days": grace_days})
    return len(execute(con, SQL, "forget_missing_files", {"grace_days": grace_days}).fetchall())
