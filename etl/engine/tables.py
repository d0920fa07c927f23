"""Arrow batches shaped like the store's tables: the DDL in schema/ is the one declaration.

A stage's write builds its batch with `rows_like(con, "crops", rows)`: the Arrow schema is read
from the table itself (cached per process), so the Python side never repeats column types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

_schemas: dict[str, pa.Schema] = {}

# Columns the database fills itself or the write SQL binds (never in a worker's rows).
DATABASE_COLUMNS = frozenset({"params_hash", "created_at", "read_at", "ingested_at", "model"})


def table_schema(con: duckdb.DuckDBPyConnection, table: str) -> pa.Schema:
    if table not in _schemas:
        _schemas[table] = con.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema
    return _schemas[table]


def rows_like(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]],
              omit: frozenset[str] = DATABASE_COLUMNS) -> pa.Table:
    """`rows` (dicts) as an Arrow table with the columns and types of `table`, minus `omit`."""
    import pyarrow as pa

    schema = table_schema(con, table)
    fields = [f for f in schema if f.name not in omit]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))
