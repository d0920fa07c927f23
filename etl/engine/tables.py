"""Batches shaped like the store's tables, and writes declared rather than written out: the DDL in
schema/ is the one declaration of a table's columns.

A stage's write builds its batch with `rows_like(con, "crops", rows)`: the Arrow schema is read
from the table itself (cached per process), so the Python side never repeats column types. Most
stages do no more than that: they declare `write=Write(rows=(Rows(...), ...), statements=(...))`
and the engine builds, registers and inserts (`Write.__call__`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.engine.config import params_hash
from etl.engine.resources import registered, sql, used_binds

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from etl.engine.pool import Outcome

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


def update_from(con: duckdb.DuckDBPyConnection, table: str, key: str, batch: pa.Table) -> None:
    """Set, in the rows of `table` whose `key` the batch holds, every other column the batch has."""
    columns = ", ".join(f"{name} = batch.{name}" for name in batch.column_names if name != key)
    with registered(con, batch=batch):
        con.execute(f"UPDATE {table} SET {columns} FROM batch WHERE {table}.{key} = batch.{key}")


@dataclass(frozen=True)
class Rows:
    """One batch of a declared write: the rows `rows` makes of each done outcome (with the stage's
    params), shaped like `table` (less `omit`), registered under the name `view`."""

    view: str
    table: str
    rows: Callable[[Outcome, Any], Iterable[dict[str, Any]]]
    omit: frozenset[str] = DATABASE_COLUMNS


@dataclass(frozen=True)
class Write:
    """A stage's write as a declaration: every `Rows` batch of the done outcomes registered at
    once, then `statements` (names in the stage's write.sql; tests may give a statement itself) run
    in order, each binding those of `params_hash` and `binds(params)` it uses. Called like a write
    function: (con, outcomes, params)."""

    rows: tuple[Rows, ...]
    statements: tuple[str, ...]
    binds: Callable[[Any], dict[str, Any]] | None = None
    sql: str = ""  # default (set by `Stage`): the stage folder's write.sql

    def __call__(self, con: duckdb.DuckDBPyConnection, outcomes: list[Outcome], params: Any) -> None:
        done = [o for o in outcomes if o.status == "done"]
        batches = {r.view: rows_like(con, r.table, [row for o in done for row in r.rows(o, params)], r.omit)
                   for r in self.rows}
        binds = {"params_hash": params_hash(params), **(self.binds(params) if self.binds else {})}
        with registered(con, **batches):
            for statement in self.statements:
                text = statement if " " in statement else sql(self.sql, statement)
                con.execute(text, used_binds(text, binds))
