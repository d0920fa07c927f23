"""Opening the DuckDB file: the run lock, the writer that lets readers in, and readers that wait.

DuckDB allows one read-write process or many read-only ones, never both. A run must not make
`etl status` fail, so the writer keeps its connection between commits but steps aside when a
reader asks: a reader that finds the file locked drops a request file in `<db>.readers/`, the
writer sees it after its next commit (or within `poll_s` while idle), closes, waits for the
readers to finish, and reopens. Runs exclude each other with an flock on `<db>.lock`, which the
kernel releases even when a run is killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from etl import migrations
from etl.errors import DatabaseError, LockedError
from etl.resources import sql_dir

READER_TIMEOUT_S = 10.0
WRITER_OPEN_TIMEOUT_S = 60.0
_RETRY_SLEEP_S = 0.02


def _is_lock_error(error: Exception) -> bool:
    return "lock" in str(error).lower() and "could not set lock" in str(error).lower()


def _explain_open_error(db_path: Path, error: Exception) -> DatabaseError:
    text = str(error)
    if "not a valid DuckDB database" in text or "corrupt" in text.lower() or "Invalid Input Error" in text:
        return DatabaseError(f"{db_path} is not a usable DuckDB database ({text.splitlines()[0]})")
    if _is_lock_error(error):
        return DatabaseError(f"{db_path} is locked by another process: {text.splitlines()[0]}")
    return DatabaseError(f"cannot open {db_path}: {text.splitlines()[0]}")


def _connect(db_path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    # External access stays on for the writer (it reads nothing outside the file anyway);
    # query-time sandboxing of user SQL belongs to `etl query`.
    return duckdb.connect(str(db_path), read_only=read_only)


def refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the views in sql/views/ so they always match the code that writes the tables."""
    for path in sorted((sql_dir() / "views").glob("*.sql")):
        con.execute(path.read_text(encoding="utf-8"))


class RunLock:
    """An exclusive, kill-safe lock naming its holder (pid, host, start time)."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(str(db_path) + ".lock")
        self._fd: int | None = None
        self.holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise LockedError(
                f"another etl run is using {self.path.with_suffix('')}: pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, started {holder.get('started_at', '?')}; "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(self.holder).encode(), 0)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int) -> dict:
        try:
            return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (ValueError, OSError):
            return {}

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _readers_dir(db_path: Path) -> Path:
    return Path(str(db_path) + ".readers")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _waiting_readers(db_path: Path) -> list[Path]:
    """Request files of readers that are still alive (stale ones from killed readers are removed)."""
    directory = _readers_dir(db_path)
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    alive = []
    for entry in entries:
        pid_text = entry.name.split(".", 1)[0]
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            alive.append(Path(entry.path))
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    return alive


class Writer:
    """The coordinator's read-write connection, opened lazily and released when readers ask."""

    def __init__(self, db_path: Path, reader_wait_s: float = 5.0) -> None:
        self.db_path = db_path
        self.reader_wait_s = reader_wait_s
        self._con: duckdb.DuckDBPyConnection | None = None
        self.releases = 0  # how often readers were let in (reported by benchmarks)
        self.applied_migrations: list[str] = []

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = self._open()
        return self._con

    def _open(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + WRITER_OPEN_TIMEOUT_S
        while True:
            try:
                return _connect(self.db_path, read_only=False)
            except duckdb.Error as error:
                if not _is_lock_error(error) or time.monotonic() > deadline:
                    raise _explain_open_error(self.db_path, error) from error
                time.sleep(_RETRY_SLEEP_S)

    @contextlib.contextmanager
    def transaction(self, rollback: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction; `rollback=True` discards it at the end (dry runs)."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("ROLLBACK" if rollback else "COMMIT")

    def let_readers_in(self) -> bool:
        """Between transactions: if readers are waiting, close, wait for them, and return True."""
        if not _waiting_readers(self.db_path):
            return False
        self.close()
        self.releases += 1
        deadline = time.monotonic() + self.reader_wait_s
        while _waiting_readers(self.db_path) and time.monotonic() < deadline:
            time.sleep(_RETRY_SLEEP_S)
        return True

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def open_writer(db_path: Path, *, create: bool) -> Writer:
    """A writer on an up-to-date schema (migrations applied when `create`, else checked)."""
    if not db_path.exists() and not create:
        raise DatabaseError(f"no database at {db_path}: run `etl init` (or `etl run --source DIR`) first")
    if create:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    writer = Writer(db_path)
    con = writer.con
    try:
        if create:
            applied = migrations.apply_pending(con)
            writer.applied_migrations = [f"{m.version:03d}_{m.name}" for m in applied]
            refresh_views(con)
        elif migrations.check(con):
            raise DatabaseError(f"{db_path} needs a schema upgrade: run `etl init`")
    except duckdb.Error as error:
        writer.close()
        raise _explain_open_error(db_path, error) from error
    except BaseException:
        writer.close()
        raise
    return writer


@contextlib.contextmanager
def open_reader(db_path: Path, timeout_s: float = READER_TIMEOUT_S,
                setup: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
                ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, waiting (and asking a running writer to step aside) if locked.

    `setup` runs on the fresh connection before anything else (the query sandbox's settings).
    """
    if not db_path.exists():
        raise DatabaseError(f"no database at {db_path}: run `etl init` (or `etl run --source DIR`) first")
    request: Path | None = None
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                con = _connect(db_path, read_only=True)
                break
            except duckdb.Error as error:
                if not _is_lock_error(error) or time.monotonic() > deadline:
                    raise _explain_open_error(db_path, error) from error
                if request is None:
                    request = _readers_dir(db_path) / f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
                    request.parent.mkdir(exist_ok=True)
                    request.touch()
                time.sleep(_RETRY_SLEEP_S)
        try:
            try:
                if setup is not None:
                    setup(con)
                if migrations.check(con):
                    raise DatabaseError(f"{db_path} needs a schema upgrade: run `etl init`")
            except duckdb.Error as error:
                raise _explain_open_error(db_path, error) from error
            yield con
        finally:
            con.close()
    finally:
        if request is not None:
            with contextlib.suppress(FileNotFoundError):
                request.unlink()
