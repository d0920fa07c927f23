"""ingest (per file): find audio under the source folders, identify it, probe it.

The scan runs in the coordinator (it only lists and stats); hashing and probing run in workers.
A track is one distinct audio (a hash of the audio alone, tags left out: etl/dsp/identity.py): the
same recording in two files is one track with two paths, a moved or renamed file is recognised by
its audio, and a re-tagged file stays the same track (only the metadata stage, whose input is the
file's bytes, runs again). A file whose audio was replaced is a new track; the old one goes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.dsp import audio, identity, multitrack_layouts
from etl.engine.config import not_hashed, params_hash, ranged
from etl.engine.errors import BadInput, SkipItem, TransientError, file_error
from etl.engine.pool import Outcome
from etl.engine.resources import execute, registered
from etl.engine.stage import Stage
from etl.engine.tables import rows_like

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Params:
    # Seconds decoded at the start and at the end of each file to catch truncated or corrupt
    # data; 0 reads headers only.
    verify_s: float = ranged(1.0, 0, 3600)
    include_hidden: bool = not_hashed(False)  # scan dot-files and dot-folders too
    # The user's multitrack layouts ([[ingest.multitrack]] tables: name, mix, stems; see
    # etl/dsp/multitrack_layouts.py), tried before the built-in ones. Not hashed: a file whose part in a group
    # changes is ingested again through its own input (items.sql), no other file is.
    multitrack: tuple[Any, ...] = not_hashed(())

    def __post_init__(self) -> None:
        multitrack_layouts.user_layouts(self.multitrack)  # a bad rule is refused when the config is read


@dataclass(frozen=True)
class ScanEntry:
    path: str
    size_bytes: int | None
    mtime_ns: int | None
    ctime_ns: int | None  # with the inode: changes on any rewrite, even one that puts mtime back
    inode: int | None
    scan_error: str | None


def _printable(path: str) -> tuple[str, str | None]:
    """Paths are stored as UTF-8 text; a name that is not valid UTF-8 is kept visible but failed."""
    try:
        path.encode("utf-8")
        return path, None
    except UnicodeEncodeError:
        text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return text, "the file name is not valid UTF-8; rename the file to process it"


def _entries(folder: str) -> list[os.DirEntry[str]]:
    """The folder's entries by name. OSError when it cannot be listed, or can be listed but not
    entered (read permission without search: its names show, nothing in it can be opened)."""
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    _enterable(entries[0] if entries else None)
    return entries


def _enterable(entry: os.DirEntry[str] | None) -> None:
    """PermissionError when the folder holding `entry` could be listed but cannot be entered."""
    if entry is not None:
        with contextlib.suppress(FileNotFoundError):  # gone since the listing: its own stat says so
            os.lstat(entry.path)


def unreachable(folder: str) -> str | None:
    """Why a source folder cannot be scanned now (not there, not a folder, not listable), or None.
    A folder that cannot be listed is not empty: it is unreachable, like an unmounted drive."""
    try:
        with os.scandir(folder) as listing:
            _enterable(next(listing, None))
    except OSError as error:
        return error.strerror or str(error)
    return None


@dataclass(frozen=True)
class Unlisted:
    """A folder under a source that could not be listed: what is recorded under it is left as it was."""
    folder: str  # spelt as the paths under it are stored
    reason: str


def scan_folder(root: str, include_hidden: bool = False, exclude: tuple[str, ...] = ()
                ) -> Iterator[ScanEntry | Unlisted]:
    """Every non-folder entry under `root`, following folder symlinks without looping; paths in
    `exclude` (the store's own database and data folder) and what is under them are left out.
    A folder that cannot be listed is yielded as `Unlisted` (and said once), never taken for empty."""
    root_stat = os.stat(root)
    stack: list[tuple[str, tuple[tuple[int, int], ...]]] = [(root, ((root_stat.st_dev, root_stat.st_ino),))]
    seen_dirs = {(root_stat.st_dev, root_stat.st_ino)}
    while stack:
        folder, ancestors = stack.pop()
        try:
            entries = _entries(folder)
        except OSError as error:
            reason = error.strerror or str(error)
            shown = _printable(folder)[0]
            log.warning("cannot list %s (%s): the files recorded under it are left as they were", shown, reason)
            yield Unlisted(shown, reason)
            continue
        for entry in entries:
            if not include_hidden and entry.name.startswith("."):
                continue
            if entry.path in exclude:
                continue
            path, name_error = _printable(entry.path)
            try:
                info = entry.stat()  # follows symlinks
            except OSError as error:
                if error.errno == errno.ELOOP:
                    reason = "symlink loop: the link resolves back to itself"
                elif error.errno == errno.ENOENT:
                    reason = "broken symlink: its target does not exist"
                else:
                    reason = f"cannot stat: {error.strerror}"
                yield ScanEntry(path, None, None, None, None, reason)
                continue
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    yield ScanEntry(path, None, None, None, None,
                                    "symlink loop: this folder link points back to one of its parent folders")
                elif key not in seen_dirs:  # a second link to a folder already walked adds nothing
                    seen_dirs.add(key)
                    stack.append((entry.path, (*ancestors, key)))
                continue
            if not stat.S_ISREG(info.st_mode):
                yield ScanEntry(path, None, None, None, None, "not a regular file (a device, socket or pipe)")
                continue
            yield ScanEntry(path, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, name_error)


def discover(params: Params, sources: list[str], store: tuple[str, ...] = ()
             ) -> Callable[[duckdb.DuckDBPyConnection], None]:
    """Walk the source folders (no database held) and return how to record what is on disk.

    `store` names the store's own files and folders (database, lock, data folder): a source that
    holds them is scanned without them, or a run would ingest its own crops.
    """
    import pyarrow as pa

    scans: list[tuple[str, pa.Table, pa.Table]] = []
    for source in sources:
        reason = unreachable(source)
        if reason is not None:
            # An unmounted drive (or a folder this user may not list) must not look like "every file was deleted".
            log.warning("source folder %s is not reachable (%s); its files are left as they were", source, reason)
            continue
        inside = tuple(p for p in store if p.startswith(source.rstrip("/") + "/"))
        if inside:
            log.info("source folder %s holds this store: its database and data folder are not scanned", source)
        entries: list[ScanEntry] = []
        unlisted: list[str] = []
        for found in scan_folder(source, params.include_hidden, inside):
            if isinstance(found, Unlisted):
                unlisted.append(found.folder.rstrip(os.sep) + os.sep)
            else:
                entries.append(found)
        # Multitrack groups by file names alone: nothing is read here.
        members = multitrack_layouts.recognise((e.path for e in entries if e.scan_error is None), params.multitrack)
        member = [members.get(e.path) for e in entries]
        scans.append((source, pa.table({
            "path": pa.array([e.path for e in entries], pa.string()),
            "size_bytes": pa.array([e.size_bytes for e in entries], pa.int64()),
            "mtime_ns": pa.array([e.mtime_ns for e in entries], pa.int64()),
            "ctime_ns": pa.array([e.ctime_ns for e in entries], pa.int64()),
            "inode": pa.array([e.inode for e in entries], pa.int64()),
            "scan_error": pa.array([e.scan_error for e in entries], pa.string()),
            **{f"multitrack_{name}": pa.array([getattr(m, name) if m else None for m in member], pa.string())
               for name in ("group", "role", "stem", "layout")},
        }), pa.table({"prefix": pa.array(unlisted, pa.string())})))

    def record(con: duckdb.DuckDBPyConnection) -> None:
        for source, scanned, unlisted_folders in scans:
            with registered(con, scanned=scanned, unlisted=unlisted_folders):
                execute(con, "stages/ingest/scan.sql", "upsert_files", {"source": source})
                execute(con, "stages/ingest/scan.sql", "mark_missing", {"source": source})

    return record


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    if item["scan_error"]:
        raise BadInput(item["scan_error"])
    path = item["path"]
    try:
        before = os.stat(path)
        if before.st_size == 0:
            raise BadInput("empty file (0 bytes)")
        try:
            info = audio.probe(path, params.verify_s)
        except BadInput as error:
            if error.reason.startswith("not an audio file") and not audio.has_audio_extension(path):
                raise SkipItem(error.reason) from None  # cover.jpg, notes.txt: expected, not a failure
            raise
        found = identity.identify(path)
        after = os.stat(path)
        if (before.st_size, before.st_mtime_ns, before.st_ctime_ns) != \
                (after.st_size, after.st_mtime_ns, after.st_ctime_ns):
            raise TransientError("the file changed while it was read (still being written?)")
    except IsADirectoryError:
        raise BadInput("is a folder, not a file") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise BadInput("symlink loop: the link resolves back to itself") from None
        # Gone since the scan (the next scan marks it missing), permission, I/O: worth retrying.
        raise file_error(error, path, "reading") from None
    size_bytes = after.st_size
    return {
        "track_id": found.audio_sha256,
        "identity": found.method,
        "sha256": found.sha256,
        "sample_hash": found.sample_hash,
        "mtime_ns": after.st_mtime_ns,
        "size_bytes": size_bytes,
        "container": info.container,
        "codec": info.codec,
        "duration_s": info.duration_s,
        "frames": info.frames,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "bit_rate_kbps": size_bytes * 8 / info.duration_s / 1000 if info.duration_s > 0 else None,
        "decode_checked": info.decode_checked,
    }


def write(con: duckdb.DuckDBPyConnection, outcomes: list[Outcome], params: Params) -> None:
    import pyarrow as pa

    done = [o for o in outcomes if o.status == "done"]
    ingested = rows_like(con, "tracks", [o.result for o in done])
    for name, kind in (("path", pa.string()), ("sha256", pa.string()), ("sample_hash", pa.string()),
                       ("mtime_ns", pa.int64())):
        column = [o.item["path"] if name == "path" else o.result[name] for o in done]
        ingested = ingested.append_column(name, pa.array(column, kind))
    # A multitrack group's stems (and NI Stems files) hold no track of their own: the multitrack
    # stage makes the group's track. Their audio hash is kept on the file.
    ingested = ingested.append_column("holds_track", pa.array([not _member(o.item) for o in done], pa.bool_()))
    # The engine clears done and skipped paths; a path found permanently unreadable (corrupt now)
    # no longer holds its track either. A transient failure keeps the link and what hangs off it.
    unusable = pa.table({"item_id": pa.array(
        [o.item_id for o in outcomes if o.status == "failed" and not o.retryable], pa.string())})
    with registered(con, ingested=ingested, cleared=unusable):
        execute(con, "stages/ingest/write.sql", "clear_orphaned_tracks")
        execute(con, "stages/ingest/write.sql", "clear_links")
        execute(con, "stages/ingest/write.sql", "upsert_tracks", {"params_hash": params_hash(params)})
        execute(con, "stages/ingest/write.sql", "link_files")


# What the stages after ingest read of a track: facts of the audio, not of the file that holds it
# (its size, tags and hashes change when it is re-tagged, and are left out).
_TRACK_OUTPUT = ("container", "codec", "duration_s", "frames", "sample_rate", "channels")


def _member(item: dict[str, Any]) -> bool:
    """A file that is part of a multitrack group's track rather than a track of its own."""
    return item.get("multitrack_role") in ("stem", multitrack_layouts.STREAMS)


def outputs(result: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A path's output is its track's audio facts (the same for every path holding the same audio);
    a group member's is under its path (the multitrack stage hashes its members' audio itself)."""
    facts = {name: result[name] for name in _TRACK_OUTPUT}
    if _member(item):
        return {item["item_id"]: {**facts, "audio_sha256": result["track_id"]}}
    return {result["track_id"]: facts}


STAGE = Stage(
    name="ingest",
    description="hash and probe every audio file under the source folders",
    process=process,
    write=write,
    Params=Params,
    discover=discover,
    outputs=outputs,
    shared_keys=True,
    presence=True,
    version=2,  # 2: the track id is a hash of the audio alone (was: of the file's bytes)
    chunk_size=4,
)
