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
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from etl.engine.errors import file_error

log = logging.getLogger(__name__)

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


# --- writing audio --------------------------------------------------------------------------------
#
# libsndfile opening a path itself reports a full disk as "System error." or an encoder error, with
# no errno. Here it writes through Python file I/O (soundfile's virtual I/O): the OSError of the
# failing write (ENOSPC, EDQUOT, EIO, ...) is kept and raised, mapped by `file_error`, in place of
# whatever libsndfile makes of the short write. Files stream block by block (memory stays bounded),
# byte for byte what libsndfile writes to a path.


class _File:
    """An unbuffered file for libsndfile's callbacks that keeps the first OSError instead of raising
    it into C (where cffi would print and drop it)."""

    def __init__(self, path: Path) -> None:
        self.raw = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed by AudioWriter
        self.error: OSError | None = None

    def _guard(self, call: Any, *args: Any, failed: Any = 0) -> Any:
        if self.error is not None:
            return failed
        try:
            return call(*args)
        except OSError as error:
            self.error = error
            return failed

    def _write_all(self, data: Any) -> int:
        view = memoryview(data)
        while view:  # a raw write may be short (the disk filling up); the next one gives the errno
            view = view[self.raw.write(view):]
        return len(data)

    def write(self, data: Any) -> int:
        return self._guard(self._write_all, data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._guard(self.raw.seek, offset, whence, failed=-1)

    def tell(self) -> int:
        return self._guard(self.raw.tell, failed=-1)

    def readinto(self, buffer: Any) -> int:
        return self._guard(self.raw.readinto, buffer)

    def read(self, size: int = -1) -> bytes:
        return self._guard(self.raw.read, size, failed=b"")


class AudioWriter:
    """An audio file written at `path` (soundfile.SoundFile's arguments), whose I/O errors come back
    as `file_error(..., "writing")` naming `shown_as` (default: `path`); on any failure the partial
    file is removed. A context manager."""

    def __init__(self, path: Path, rate: int, channels: int, format: str, subtype: str | None = None, *,
                 shown_as: Path | None = None, **options: Any) -> None:
        import soundfile as sf

        self.path, self.shown_as = path, shown_as or path
        try:
            self._file = _File(path)
        except OSError as error:
            raise file_error(error, self.shown_as, "writing") from None
        try:
            self._sound = sf.SoundFile(self._file, "w", rate, channels, subtype, format=format, **options)
        except Exception as error:
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        """Remove the partial file and raise the OS reason if there was one, else `error` itself."""
        cause = self._file.error
        sound = getattr(self, "_sound", None)
        for close in ((sound.close,) if sound is not None else ()) + (self._file.raw.close,):
            try:
                close()
            except Exception as late:  # noqa: BLE001 - the first failure is the one reported
                cause = cause or (late if isinstance(late, OSError) else None)
        self.path.unlink(missing_ok=True)
        if cause is None and isinstance(error, OSError):
            cause = error
        if cause is not None:
            raise file_error(cause, self.shown_as, "writing") from None
        raise error

    def write(self, block: Any) -> None:
        try:
            self._sound.write(block)
        except Exception as error:
            self._fail(error)
        if self._file.error is not None:
            self._fail(self._file.error)

    def close(self) -> None:
        """Finish the file (headers, the encoder's last frames); raises like `write`."""
        if self._file.raw.closed:
            return
        try:
            self._sound.close()
        except Exception as error:
            self._fail(error)
        if self._file.error is not None:
            self._fail(self._file.error)
        try:
            self._file.raw.close()
        except OSError as error:
            self._fail(error)

    def abandon(self) -> None:
        """Close and remove the file without reporting anything (another error is on its way)."""
        if not self._file.raw.closed:
            try:
                self._fail(RuntimeError("abandoned"))
            except Exception:  # noqa: BLE001, S110
                pass
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()


def write_audio(folder: Path, name: str, blocks: Any, rate: int, format: str, subtype: str | None = None, *,
                suffix: str | None = None, channels: int | None = None, **options: Any) -> tuple[Path, str]:
    """Write an artifact's audio: `blocks` (one array, frames x channels, or an iterable of them, then
    with `channels`) under a temporary name in `folder`, then `publish` it as
    `<name>-<sha12>.<suffix>` (suffix: the format in lower case); (path, sha256).

    A full disk, a quota or a permission fails with its `file_error` reason ("no space left on device
    while writing <folder>/<name>.<suffix>"), and no temporary file is left behind.
    """
    suffix = suffix or format.lower()
    single = hasattr(blocks, "shape")
    if single:
        channels = 1 if blocks.ndim == 1 else blocks.shape[1]
        blocks = (blocks,)
    if channels is None:
        raise TypeError("write_audio needs `channels` when the audio comes as an iterable of blocks")
    temporary, shown = temporary_name(folder, f"{name}.{suffix}"), folder / f"{name}.{suffix}"
    writer = AudioWriter(temporary, rate, channels, format, subtype, shown_as=shown, **options)
    try:
        with writer:
            for block in blocks:
                writer.write(block)
        return publish(temporary, name, suffix)
    except OSError as error:  # hashing or renaming the finished file
        raise file_error(error, shown, "writing") from None
    finally:
        temporary.unlink(missing_ok=True)


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


def walk(folder: Path, data_dir: Path | None = None) -> Iterator[str]:
    """Every file under `folder` (none when it is absent), relative to the data folder (`folder` itself
    unless a stage's folder in `data_dir` is walked). A folder that cannot be listed is said (its
    files go unchecked), not taken for empty."""
    def unlisted(error: OSError) -> None:
        if not isinstance(error, FileNotFoundError):  # absent (a stage that wrote nothing) is empty
            log.warning("cannot list %s (%s): the files under it were not checked", error.filename,
                        error.strerror or error)

    for root, _, names in os.walk(folder, onerror=unlisted):
        for name in names:
            yield os.path.relpath(os.path.join(root, name), data_dir or folder)
