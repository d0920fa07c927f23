"""Files of an export: a staging folder swapped in whole, audio placed by hard link or copy,
and portable file names.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

from etl.engine.errors import ExportError
from etl.engine.folders import writable_folder


@contextlib.contextmanager
def staged(out: Path, force: bool) -> Iterator[Path]:
    """Yield an empty staging folder beside `out`; on success it becomes `out` by rename.

    Readers never see a half-written export under the final name: until the rename, `out` holds
    the previous export (or nothing); a failure or Ctrl-C removes the staging folder.
    """
    writable_folder(out.parent, ExportError, " (choose another --out)")  # the staging folder goes there
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ExportError(f"{out} is not empty: choose another --out or add --force to replace it")
        if not (out / "export.json").is_file():  # --force replaces an export, never a stranger's folder
            raise ExportError(f"--out {out} holds no export.json of a previous export: --force only replaces "
                              "an export's folder; choose an empty or new --out")
    token = uuid.uuid4().hex[:8]
    staging = out.parent / f".{out.name}.partial-{token}"
    staging.mkdir()
    try:
        yield staging
        previous = out.parent / f".{out.name}.old-{token}"
        if out.exists():
            os.rename(out, previous)
        os.rename(staging, out)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_STORE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def store_name(value: object, what: str) -> str:
    """A value from the store used as a file name: letters, digits, '.', '_', '-' only (no '/', no '..')."""
    text = str(value)
    if not _STORE_NAME.fullmatch(text) or ".." in text:
        raise ExportError(f"{what} {text!r} cannot be a file name (it could write outside --out): "
                          "nothing exported")
    return text


def inside(folder: Path, target: Path) -> Path:
    """`target`, checked to stay inside `folder` once resolved (no '..', no link leading out)."""
    resolved = target.resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise ExportError(f"{target} would be written outside --out: nothing exported")
    return target


def place(source: Path, target: Path, mode: str) -> None:
    """Put `source` at `target`: a hard link when `mode` is "link" and the file system allows it."""
    if not source.is_file():  # the store names it, the data folder lost it: say so, not a traceback
        raise ExportError(f"the crop file {source} is missing (was the store's data folder moved or cleaned?): "
                          "nothing was exported")
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "link":
        try:
            os.link(source, target)
            return
        except OSError as error:  # another device, or a file system without hard links
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
    shutil.copyfile(source, target)


_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()&,'+-]+")
_SPACES = re.compile(r"\s+")
MAX_NAME_CHARS = 80
# Latin letters that Unicode does not decompose into an ASCII base letter plus accents.
_LETTERS = str.maketrans({"æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ß": "ss", "ð": "d",
                          "Ð": "D", "þ": "th", "Þ": "Th", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i"})


def portable_name(text: str | None, fallback: str) -> str:
    """ASCII a tokenizer and every file system accept: accents folded, the rest replaced by '_'."""
    folded = unicodedata.normalize("NFKD", (text or "").translate(_LETTERS)).encode("ascii", "ignore").decode("ascii")
    cleaned = _SPACES.sub(" ", _UNSAFE.sub("_", folded)).strip(" ._")
    cleaned = re.sub(r"_+", "_", cleaned)[:MAX_NAME_CHARS].rstrip(" ._")
    return cleaned or fallback


class UniqueNames:
    """Resolve collisions case-insensitively (macOS and Windows): 'Name', 'Name (2)', ..."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, folder: str, stem: str, suffix: str) -> str:
        candidate, n = f"{stem}{suffix}", 1
        while f"{folder}/{candidate}".lower() in self._taken:
            n += 1
            candidate = f"{stem} ({n}){suffix}"
        self._taken.add(f"{folder}/{candidate}".lower())
        return candidate
