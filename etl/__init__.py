"""Music training-data ETL: a resumable DuckDB feature store of beat-aligned crops."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Store"]


def __getattr__(name: str) -> Any:
    # Lazily, so worker processes importing etl.* do not pay for duckdb/sqlglot they never use.
    if name == "Store":
        from etl.read.api import Store

        return Store
    raise AttributeError(f"module 'etl' has no attribute {name!r}")
