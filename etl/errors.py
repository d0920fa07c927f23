"""The one small error hierarchy.

Item-level errors say whether trying again could help (`retryable`); the engine records that
beside the reason so `etl run` retries transient failures by itself and `--retry-failed` the rest.
User-level errors (`EtlError` and subclasses) become one-line messages in the CLI.
"""

from __future__ import annotations


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
