"""Folders a command writes into (export, report and query --out, models fetch --dir): made when
missing, and refused in one line before any work when they cannot be made or written (a file in
the way, no permission, a read-only file system), never an "unexpected" error halfway through."""

from __future__ import annotations

import tempfile
from pathlib import Path

from etl.engine.errors import EtlError


def _why(folder: Path, error: OSError) -> str:
    """A file standing where `folder` or one of its parents should be, else the system's reason."""
    in_the_way = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    return f"{in_the_way} is not a folder" if in_the_way is not None else error.strerror or str(error)


def make_folder(folder: Path, error: type[EtlError], hint: str = "") -> None:
    """`folder` and its parents, or `error` naming the folder and why not (then `hint`)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as failure:
        raise error(f"cannot make the folder {folder}: {_why(folder, failure)}{hint}") from None


def check_writable(folder: Path, error: type[EtlError], hint: str = "") -> None:
    """`error` unless a file can be made in `folder` (which exists): tried, not guessed from its mode."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".etl-write-check-"):
            pass
    except OSError as failure:
        raise error(f"cannot write into the folder {folder}: {_why(folder, failure)}{hint}") from None


def writable_folder(folder: Path, error: type[EtlError], hint: str = "") -> None:
    """`folder`, made if missing and checked writable, or `error` in one line."""
    make_folder(folder, error, hint)
    check_writable(folder, error, hint)


def check_can_make(folder: Path, error: type[EtlError], hint: str = "") -> None:
    """`error` in one line unless `folder` could be made and written, checked without making it (the
    nearest existing folder above it must take a new file): a command refused later, for a bad
    --where, leaves no empty folder behind."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if existing == folder:
        if not folder.is_dir():
            raise error(f"cannot make the folder {folder}: {folder} is not a folder{hint}")
        check_writable(folder, error, hint)
        return
    try:
        if not existing.is_dir():
            raise NotADirectoryError
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".etl-write-check-"):
            pass
    except OSError as failure:
        raise error(f"cannot make the folder {folder}: {_why(folder, failure)}{hint}") from None
