"""Is the source file still the one ingest identified? Checked before and after reading it.

A file can be re-tagged, replaced or deleted between ingest and a later stage. Reading whatever is
at the path now and filing it under the old track would corrupt the store silently, so every stage
that opens a source file wraps its reading in `unchanged(item["source"])`: the size, mtime and a
sampled hash (a few dozen KiB, see etl/dsp/identity.py) must match what ingest recorded, before
reading and again after. Otherwise the item fails as transient and the next run's ingest picks the
change up (a new track when the audio changed, new tags when only they did).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from etl.dsp.identity import sample_hash
from etl.engine.errors import TransientError, file_error

CHANGED = "file changed since ingest: re-ingesting (the next run's ingest picks the new content up)"


def check(source: dict[str, Any]) -> str:
    """The path, once its file is found unchanged since ingest; raises an ItemError otherwise."""
    path = source["path"]
    try:
        info = os.stat(path)
        if (info.st_size, info.st_mtime_ns) != (source["size_bytes"], source["mtime_ns"]) \
                or sample_hash(path) != source["sample_hash"]:
            raise TransientError(CHANGED)
    except OSError as error:
        raise file_error(error, path, "reading") from None
    return path


@contextmanager
def unchanged(source: dict[str, Any]) -> Iterator[str]:
    """Yields the path to read; fails the item if the file changed before or while it was read."""
    yield check(source)
    check(source)


def describe(path: str) -> dict[str, Any]:
    """What ingest records of a file for `check` (for callers that run a stage's worker by hand)."""
    info = os.stat(path)
    return {"path": path, "size_bytes": info.st_size, "mtime_ns": info.st_mtime_ns, "sample_hash": sample_hash(path)}
