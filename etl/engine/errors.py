"""The one small error hierarchy.

Item-level errors say whether trying again could help (`retryable`); the engine records that
beside the reason so `etl run` retries transient failures by itself and `--retry-failed` the rest.
User-level errors (`EtlError` and subclasses) become one-line messages in the CLI. `Reason` is
not raised: it is why a whole stage cannot run here (a stage's `unavailable()` returns it).
"""

from __future__ import annotations

import errno
import os
import traceback
from typing import Any


class Reason(str):
    """Why a stage cannot run here: the whole text (what is missing, how to install it: `etl run`'s
    skip line, `etl models`) that also carries a `short` form of one clause for `etl status`."""

    short: str

    def __new__(cls, text: str, short: str | None = None) -> Reason:
        reason = super().__new__(cls, text)
        reason.short = text if short is None else short
        return reason

    def __reduce__(self) -> tuple[Any, ...]:  # pickled to workers, deep-copied by dataclasses.asdict
        return (Reason, (str(self), self.short))


class EtlError(Exception):
    """A problem the user can act on; the CLI prints it as one line (traceback with --debug)."""


class ConfigError(EtlError):
    """Bad configuration file, environment variable or flag."""


class DatabaseError(EtlError):
    """The database is missing, corrupt, locked, or its schema does not match this code."""


class LockedError(DatabaseError):
    """Another `etl run` holds the database."""


class Interrupted(EtlError):
    """The run was stopped (Ctrl-C, SIGTERM, SIGHUP) after committing finished work.

    `signum` is the signal that stopped it; the CLI exits with 128 + signum (130 for Ctrl-C).
    """

    def __init__(self, message: str, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = signum or 2  # SIGINT

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StageFailed(EtlError):
    """One or more stages stopped on an unexpected error; the stages that do not need them ran."""


class StageStopped(EtlError):
    """A stage stopped before its items, which stay pending: the run goes on with the stages that do
    not need it. Not an item's fault, so nothing is failed for it."""


class WorkerStartFailed(StageStopped):
    """The stage's workers could not start (its `init_worker` raised: a model that fails to load)."""


class CrashLoop(StageStopped):
    """The stage's first items each killed their worker and none succeeded: the stage (a library,
    a broken cache), not the items, is at fault."""


class ItemError(Exception):
    """Processing one item failed; the run goes on. Permanent unless `retryable`."""

    retryable: bool = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadInput(ItemError):
    """The input itself is unusable (corrupt, empty, not audio). Retrying will not help."""


class TransientError(ItemError):
    """Worth retrying: permissions, a busy disk, a file being written."""

    retryable = True


class SkipItem(Exception):
    """Not an error: the item has nothing for this stage (silence, not audio). Recorded as skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class QueryError(EtlError):
    """A query was refused (not read-only, several statements) or failed to run."""


class ExportError(EtlError):
    """An export cannot be written (non-empty target without --force, bad split, ...)."""


class ReportError(EtlError):
    """A report cannot be written (a foreign index.html without --force, a missing library, ...)."""


# --- file errors: one reason per cause, whoever meets them -------------------------------------
#
# Every failure to read a source file or write an artifact goes through `file_error`, so the same
# cause reads the same way wherever it happens (a decoder, a tag reader, an encoder, a worker's
# stray OSError via `classify`). All of them are retryable: a vanished file is noticed by the next
# run's scan, a full disk or a permission can be fixed without --retry-failed.

_VANISHED = {errno.ENOENT, errno.ENOTDIR}     # reading: the path no longer leads to a file
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def file_error(error: OSError, path: str | os.PathLike[str] | None = None, action: str | None = None) -> ItemError:
    """The item error for an OSError met on `path` while `action` ("reading" / "writing"; None: unknown).

    `path` defaults to the error's own filename. Raise the result `from None` (the reason says it all).
    """
    where = os.fspath(path) if path is not None else error.filename
    where = os.fsdecode(where) if where is not None else None
    at = f" {where}" if where is not None else ""
    code = error.errno
    if code in _VANISHED and action != "writing":
        return TransientError(f"file no longer exists:{at}" if at else "file no longer exists")
    if code in _NO_SPACE:
        return TransientError(f"no space left on device while writing{at}")
    if code in _DENIED:
        verb = f" {action}" if action else ""
        readonly = " (a read-only file system)" if code == errno.EROFS else ""
        return TransientError(f"permission denied{verb}{at}{readonly}")
    strerror = error.strerror or str(error) or type(error).__name__
    verb = {"reading": "read", "writing": "write"}.get(action or "", "access")
    return TransientError(f"cannot {verb}{at}: {strerror}")


def source_error(path: str | os.PathLike[str]) -> ItemError | None:
    """Why `path` cannot be read, if the file system says so (missing, a directory, permission...).

    For decoders whose errors carry no errno (libsndfile): call it after a failure to tell a
    vanished or unreadable file from bad audio. None when the file opens for reading.
    """
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as error:
        if error.errno == errno.EISDIR:
            return TransientError(f"file no longer exists: {os.fsdecode(path)} (a folder is there now)")
        return file_error(error, path, "reading")
    return None


# --- classifying unexpected exceptions ----------------------------------------------------
#
# A stage raises `BadInput` / `TransientError` / `SkipItem` where it knows what went wrong. Anything
# else reaches `classify`, the one place that decides whether trying the item again could help:
#
# - the item's own bytes or values are at fault (decode, format, value errors): permanent, so no
#   attempts are wasted; `etl run --retry-failed` still retries them after a fix;
# - OSErrors (a vanished file, a full disk, a permission, a flaky disk or share): `file_error`'s
#   reasons, all transient; memory and timeouts: transient too;
# - anything else (TypeError, AttributeError, KeyError, ...) is most likely a bug in a stage:
#   retryable (the fix should not need --retry-failed), with the file and line it came from.
#
# Library errors are matched by module and class name so this module imports none of them.

# (top-level module, class name) of decoder / tag-reader errors that mean "this input is bad".
_BAD_INPUT_LIBRARY_ERRORS = {
    ("soundfile", "SoundFileError"),        # libsndfile: also LibsndfileError, SoundFileRuntimeError
    ("mutagen", "MutagenError"),            # every mutagen format error derives from it
    ("audioread", "DecodeError"),           # also NoBackendError (nothing here can decode it)
    ("librosa", "ParameterError"),          # e.g. audio too short for the requested analysis
}


def _location(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    where = frames[-1]
    return f" (at {os.path.basename(where.filename)}:{where.lineno})"


def _is_library_bad_input(error: BaseException) -> bool:
    for klass in type(error).__mro__:
        root = klass.__module__.split(".", 1)[0]
        if (root, klass.__name__) in _BAD_INPUT_LIBRARY_ERRORS:
            return True
    return False


def _wrapped_os_error(error: BaseException) -> OSError | None:
    """The OSError a library wrapped (mutagen turns IOError into MutagenError), if any."""
    seen = 0
    cause = error.__cause__ or error.__context__
    while cause is not None and seen < 5:
        if isinstance(cause, OSError):
            return cause
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    for arg in getattr(error, "args", ())[:1]:
        if isinstance(arg, OSError):
            return arg
    return None


def classify(error: BaseException) -> tuple[str, bool]:
    """(reason, retryable) for an exception a stage did not classify itself."""
    if isinstance(error, ItemError):
        return error.reason, error.retryable
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, MemoryError):
        return "out of memory", True
    if _is_library_bad_input(error):
        wrapped = _wrapped_os_error(error)
        if wrapped is not None:
            mapped = file_error(wrapped)
            return mapped.reason, mapped.retryable
        return f"bad input: {text}{_location(error)}", False
    if isinstance(error, TimeoutError):
        return f"timed out: {text}", True
    if isinstance(error, OSError):  # a vanished file, a full disk, permissions, I/O, a busy share
        mapped = file_error(error)
        return mapped.reason, mapped.retryable
    if isinstance(error, ValueError):  # UnicodeDecodeError, pyarrow's ArrowInvalid, numpy's value errors
        return f"bad input: {text}{_location(error)}", False
    return f"unexpected {text}{_location(error)}", True

