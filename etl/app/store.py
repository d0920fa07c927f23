"""The engine's store (etl/engine/store.py), opened on the schema the stages make up (schema.py).

Everything above the engine (the CLI, etl/read, tests, benchmarks) opens stores through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from etl.app.schema import migrations, schema
from etl.engine import store
from etl.engine.store import READER_TIMEOUT_S, RunLock, Writer

__all__ = ["RunLock", "Writer", "open_reader", "open_writer"]


def open_writer(db_path: Path, *, create: bool, on_wait: Callable[[str | None], None] | None = None,
                stop: Any = None) -> Writer:
    return store.open_writer(db_path, create=create, schema=schema(), on_wait=on_wait, stop=stop)


@contextmanager
def open_reader(db_path: Path, timeout_s: float = READER_TIMEOUT_S,
                setup: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
                ) -> Iterator[duckdb.DuckDBPyConnection]:
    # A reader only checks the migrations: the views are the writer's to make.
    with store.open_reader(db_path, schema=migrations(), timeout_s=timeout_s, setup=setup) as con:
        yield con
