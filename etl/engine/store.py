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
import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from etl.engine import migrations
from etl.engine.errors import DatabaseError, Interrupted, LockedError

READER_TIMEOUT_S = 10.0
WRITER_NOTICE_S = 1.0   # a writer kept out longer than this says which readers it waits for
WRITER_STOP_WAIT_S = 5.0  # after a stop signal, how long the writer still waits for readers to commit
_RETRY_SLEEP_S = 0.02


def _is_lock_error(error: Exception) -> bool:
    return "lock" in str(error).lower() and "could not set lock" in str(error).lower()


def _explain_open_error(db_path: Path, error: Exception) -> DatabaseError:
    text = str(error)
    if "not a valid DuckDB database" in text or "corrupt" in text.lower() or "Invalid Input Error" in text:
        return DatabaseError(f"{db_path} is not a usable DuckDB database ({text.splitlines()[0]})")
    if _is_lock_error(error):
        return DatabaseError(f"{db_path} is locked by another process: {text.splitlines()[0]}")
    for reason in ("Permission denied", "Read-only file system"):
        if reason in text:  # DuckDB could not create its .wal (or write the file) beside the database
            if ".wal" in text or ".tmp" in text:
                return not_writable(db_path.parent, reason)
            return DatabaseError(f"the database file {db_path} is not writable ({reason})")
    return DatabaseError(f"cannot open {db_path}: {text.splitlines()[0]}")


def _connect(db_path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    # External access stays on for the writer (it reads nothing outside the file anyway);
    # query-time sandboxing of user SQL belongs to `etl query`.
    return duckdb.connect(str(db_path), read_only=read_only)


def refresh_views(con: duckdb.DuckDBPyConnection, schema: migrations.Schema) -> None:
    """(Re)create the views and macros so they always match the code that writes the tables."""
    for statement in schema.views:
        con.execute(statement)


def not_writable(folder: Path, error: OSError | str) -> DatabaseError:
    """A one-line error for a database folder the process cannot write (read-only mount, mode, owner)."""
    shown = folder if str(folder) else Path(".")
    reason = error if isinstance(error, str) else error.strerror or str(error)
    return DatabaseError(f"the database folder {shown} is not writable ({reason}): "
                         "give --db a path in a folder you can write, or fix its permissions")


def _absent(db_path: Path) -> bool:
    """No file at `db_path`; a folder on the way this user may not enter is one line, not a traceback."""
    try:
        return not db_path.exists()
    except OSError as error:
        raise DatabaseError(f"cannot reach the database {db_path}: {error.strerror or error}") from None


_DUCKDB_MAGIC = (8, b"DUCK")  # where a DuckDB file says what it is (after its 8-byte checksum)


def check_database_file(db_path: Path) -> None:
    """Refuse a --db that exists but is no DuckDB file before anything is written beside it (a lock)."""
    if not _absent(db_path) and db_path.is_dir():
        raise DatabaseError(f"{db_path} is a folder, not a DuckDB database: give --db a file path")
    try:
        with open(db_path, "rb") as handle:
            head = handle.read(_DUCKDB_MAGIC[0] + len(_DUCKDB_MAGIC[1]))
    except FileNotFoundError:
        return  # a new store
    except OSError as error:
        raise DatabaseError(f"cannot read {db_path}: {error.strerror}") from None
    if head and head[_DUCKDB_MAGIC[0]:] != _DUCKDB_MAGIC[1]:
        raise DatabaseError(f"{db_path} is not a DuckDB database (not an etl store): give --db another path; "
                            "nothing was written")


class RunLock:
    """An exclusive, kill-safe lock naming its holder (pid, host, start time)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = Path(str(db_path) + ".lock")
        self._fd: int | None = None
        self.holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def acquire(self) -> None:
        check_database_file(self.db_path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise not_writable(self.path.parent, error) from None
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


def _process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: when the process started (clock ticks since boot); None off Linux."""
    try:
        text = Path(f"/proc/{pid}/stat").read_bytes().decode(errors="replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name (field 2) may hold spaces and ')'
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _process_command(pid: int, limit: int = 160) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    command = " ".join(" ".join(part.decode(errors="replace").split()) for part in raw.split(b"\0") if part)
    command = command or "?"
    return command if len(command) <= limit else command[:limit - 1] + "…"


def _new_request(db_path: Path) -> Path:
    """A reader's request file: `<pid>.<start time>.<token>` (start time `x` where unknown)."""
    pid = os.getpid()
    start = _process_start_time(pid)
    request = _readers_dir(db_path) / f"{pid}.{'x' if start is None else start}.{uuid.uuid4().hex[:8]}"
    request.parent.mkdir(exist_ok=True)
    request.touch()
    return request


def _request_pid(name: str) -> int | None:
    """The pid of the live reader that wrote a request file, or None when the request is stale:
    its pid is dead, or now belongs to a process that started at another time (pid reused)."""
    parts = name.split(".")
    if not parts[0].isdigit():
        return None
    pid = int(parts[0])
    if not _pid_alive(pid):
        return None
    if len(parts) >= 3 and parts[1].isdigit():
        start = _process_start_time(pid)
        if start is not None and start != int(parts[1]):
            return None
    return pid


def _live_requests(db_path: Path) -> dict[Path, int]:
    """Request files of readers that are still alive, with their pids (stale ones are removed)."""
    directory = _readers_dir(db_path)
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    alive = {}
    for entry in entries:
        pid = _request_pid(entry.name)
        if pid is not None:
            alive[Path(entry.path)] = pid
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    return alive


def _waiting_readers(db_path: Path) -> list[Path]:
    """Request files of readers that are still alive (stale ones are removed)."""
    return list(_live_requests(db_path))


def _lock_holders(db_path: Path) -> set[int]:
    """Processes holding a lock on the database file, from /proc/locks (empty where there is none)."""
    try:
        st = os.stat(db_path)
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return set()
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = set()
    for line in lines:
        fields = line.split()
        # "1: POSIX  ADVISORY  READ 3567 fe:00:2146769 0 EOF" (blocked waiters are marked "->")
        if len(fields) >= 6 and fields[1] != "->" and fields[5] == device and fields[4].isdigit():
            holders.add(int(fields[4]))
    holders.discard(os.getpid())
    return holders


_DUCKDB_HOLDER = re.compile(r"\(PID (\d+)\)")


def describe_readers(db_path: Path, error: Exception | None = None) -> str:
    """Who keeps the writer out: "pid N (command line)" for each process holding the file."""
    pids = _lock_holders(db_path)
    if error is not None:
        pids.update(int(pid) for pid in _DUCKDB_HOLDER.findall(str(error)) if int(pid) != os.getpid())
    if not pids:
        pids = set(_live_requests(db_path).values())
    if not pids:
        return "readers"
    return ", ".join(f"pid {pid} ({_process_command(pid)})" for pid in sorted(pids))


class _WaitNotice:
    """Tells `on_wait` (or stderr) which readers a writer waits for, once it has waited a while."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.started = time.monotonic()
        self._next = self.started + WRITER_NOTICE_S
        self.shown: str | None = None

    def update(self, error: Exception | None = None) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 1.0
        message = f"waiting for {describe_readers(self.writer.db_path, error)} to close {self.writer.db_path.name}"
        if message != self.shown:
            self.shown = message
            self.writer._notify(message)

    def done(self) -> None:
        if self.shown is not None:
            self.shown = None
            self.writer._notify(None)


class Writer:
    """The coordinator's read-write connection, opened lazily and released when readers ask."""

    def __init__(self, db_path: Path, reader_wait_s: float = 5.0,
                 on_wait: Callable[[str | None], None] | None = None, stop: Any = None) -> None:
        self.db_path = db_path
        self.reader_wait_s = reader_wait_s
        # Called with "waiting for pid N (command) to close ..." while readers keep the writer out,
        # and with None when the wait is over; without it, the message goes to stderr.
        self.on_wait = on_wait
        # The run's stop request (`requested`, `signum`): after a stop signal the writer waits at most
        # WRITER_STOP_WAIT_S for readers, then gives up with `Interrupted`.
        self.stop = stop
        self._stop_wait_started: float | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self.releases = 0  # how often readers were let in (reported by benchmarks)
        self.applied_migrations: list[str] = []

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = self._open()
        return self._con

    def _notify(self, message: str | None) -> None:
        if self.on_wait is not None:
            self.on_wait(message)
        elif message is not None:
            print(f"etl: {message}", file=sys.stderr, flush=True)

    def _check_stop(self, notice: _WaitNotice, error: Exception | None) -> None:
        stop = self.stop
        if stop is None or not getattr(stop, "requested", False):
            return
        if self._stop_wait_started is None:
            self._stop_wait_started = time.monotonic()
        if time.monotonic() - self._stop_wait_started >= WRITER_STOP_WAIT_S:
            notice.done()
            signum = getattr(stop, "signum", None)
            name = signal.Signals(signum).name if signum else "interrupted"
            raise Interrupted(
                f"{name} while {describe_readers(self.db_path, error)} kept {self.db_path.name} open: "
                "work since the last commit was not saved; run again to redo it", signum)

    def _open(self, notice: _WaitNotice | None = None) -> duckdb.DuckDBPyConnection:
        """Connect, waiting as long as readers hold the file (a lock error never ends the wait)."""
        notice = notice or _WaitNotice(self)
        try:
            while True:
                try:
                    return _connect(self.db_path, read_only=False)
                except duckdb.Error as error:
                    if not _is_lock_error(error):
                        raise _explain_open_error(self.db_path, error) from error
                    notice.update(error)
                    self._check_stop(notice, error)
                    time.sleep(_RETRY_SLEEP_S)
        finally:
            notice.done()

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
        notice = _WaitNotice(self)
        deadline = time.monotonic() + self.reader_wait_s
        while _waiting_readers(self.db_path) and time.monotonic() < deadline:
            if self.stop is not None and getattr(self.stop, "requested", False):
                break
            notice.update()
            time.sleep(_RETRY_SLEEP_S)
        self._con = self._open(notice)  # waits while readers still hold the file
        return True

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def open_writer(db_path: Path, *, create: bool, schema: migrations.Schema,
                on_wait: Callable[[str | None], None] | None = None, stop: Any = None) -> Writer:
    """A writer on an up-to-date schema (migrations applied when `create`, else checked).

    The schema comes from the application layer (etl/app/store.py opens stores with it)."""
    if not create and _absent(db_path):
        raise DatabaseError(f"no database at {db_path}: run `etl init` (or `etl run --source DIR`) first")
    if create:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    writer = Writer(db_path, on_wait=on_wait, stop=stop)
    con = writer.con
    try:
        if create:
            applied = migrations.apply_pending(con, schema.migrations)
            writer.applied_migrations = [f"{m.version:03d}_{m.name}" for m in applied]
            refresh_views(con, schema)
        elif migrations.check(con, schema.migrations):
            raise DatabaseError(f"{db_path} needs a schema upgrade: run `etl init`")
    except duckdb.Error as error:
        writer.close()
        raise _explain_open_error(db_path, error) from error
    except BaseException:
        writer.close()
        raise
    return writer


@contextlib.contextmanager
def open_reader(db_path: Path, *, schema: migrations.Schema, timeout_s: float = READER_TIMEOUT_S,
                setup: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
                ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, waiting (and asking a running writer to step aside) if locked.

    `setup` runs on the fresh connection before anything else (the query sandbox's settings).
    """
    if _absent(db_path):
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
                    request = _new_request(db_path)
                time.sleep(_RETRY_SLEEP_S)
        try:
            try:
                if setup is not None:
                    setup(con)
                if migrations.check(con, schema.migrations):
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
