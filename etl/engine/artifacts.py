"""Artifact files follow commits.

- Each item owns one folder, <data_dir>/<stage>/<id[:2]>/<id>/, written only by the worker
  processing it.
- A file is written under a temporary name, hashed, and renamed to a name that says what it
  holds (`<name>-<sha256[:12]>.<ext>`), so a changed result never overwrites a file that a
  committed row still names.
- After a commit, every other file in a finished item's folder is superseded: listed in
  superseded_files in that same transaction, removed after it, and (when a run was killed between
  the two) at the start of the next run. A failed item keeps its last good result's files.
- `etl gc` removes whatever no committed row names (what a killed run's workers had written).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

TEMP_MARK = ".tmp-"  # temporary files: ".<final name>.tmp-<pid>"


def item_folder(data_dir: Path, stage: str, item_id: str) -> Path:
    return data_dir / stage / item_id[:2] / item_id


def temporary_name(folder: Path, name: str) -> Path:
    return folder / f".{name}{TEMP_MARK}{os.getpid()}"


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def publish(temporary: Path, name: str, suffix: str) -> tuple[Path, str]:
    """Rename a finished temporary file to `<name>-<sha12>.<suffix>` beside it; (path, sha256)."""
    digest = sha256_file(temporary)
    final = temporary.with_name(f"{name}-{digest[:12]}.{suffix}")
    os.replace(temporary, final)
    return final, digest


def relative(paths: Iterable[str], data_dir: Path) -> list[str]:
    return sorted(os.path.relpath(p, data_dir) for p in paths)


def store_path(path: str | Path) -> str:
    """How a row names an artifact file: relative to the data folder (`<stage>/<id[:2]>/<id>/<name>`,
    the last four parts of its absolute path), so the database and its data folder can move
    together; views and the Store API resolve it (sql/views/00_artifact_path.sql)."""
    parts = Path(path).parts
    if len(parts) < 5 or parts[-3] != parts[-2][:2]:
        raise ValueError(f"{path} is not in an item folder (<data_dir>/<stage>/<id[:2]>/<id>/)")
    return "/".join(parts[-4:])


def unreferenced(folder: Path, keep: Iterable[str], data_dir: Path) -> list[str]:
    """Files in `folder` (relative to data_dir) other than `keep` (relative names)."""
    kept = set(keep)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = (os.path.relpath(folder / name, data_dir) for name in names)
    return sorted(p for p in found if p not in kept)


def remove(paths: Iterable[str], data_dir: Path) -> list[str]:
    """Remove files (relative to data_dir) and the item folders they leave empty; returns them."""
    removed = []
    for rel in paths:
        path = data_dir / rel
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            continue
        removed.append(rel)
        _prune_empty(path.parent, data_dir)
    return removed


def _prune_empty(folder: Path, data_dir: Path) -> None:
    while folder != data_dir and data_dir in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone)
            return
        folder = folder.parent


def walk(data_dir: Path) -> Iterator[str]:
    """Every file under the data folder, relative to it."""
    for root, _, names in os.walk(data_dir):
        for name in names:
            yield os.path.relpath(os.path.join(root, name), data_dir)
