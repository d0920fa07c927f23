"""The feature store from Python: polars frames out of the same sandboxed, read-only SQL as `etl query`.

    from etl import Store
    store = Store("etl.duckdb")
    house = store.crops(where="genre ILIKE '%house%' AND bpm BETWEEN $lo AND $hi", params={"lo": 120, "hi": 128})
    for batch in store.iter_crops(batch_rows=10_000):   # lazily, for sets larger than memory
        ...

Each call opens a read-only connection and closes it before returning, so a running `etl run`
is held up only for the length of the query. `iter_crops` first copies its rows into a temporary
Parquet snapshot and closes the database: a half-read iterator (a notebook cell left waiting)
holds no lock, and the batches come from the snapshot.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.read.readonly import gated_sandbox

if TYPE_CHECKING:
    import polars as pl


def select_from(view: str, where: str | None = None, columns: Sequence[str] | None = None,
                order_by: str | None = None, limit: int | None = None) -> str:
    """SELECT text over a view; the caller runs it through the read-only gate like any user SQL."""
    projection = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    text = f"SELECT {projection} FROM {view}"
    if where:
        text += f"\nWHERE ({where}\n)"  # newline: a trailing `-- comment` in `where` cannot eat the bracket
    if order_by:
        text += f"\nORDER BY {order_by}"
    if limit is not None:
        text += f"\nLIMIT {int(limit)}"
    return text


class Store:
    """A read-only handle on an etl database."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        """Any read-only statement, `$name` parameters bound from `params`."""
        with gated_sandbox(self.path, sql, params or {}) as (con, binds):
            return con.sql(sql, params=binds).pl()

    def crops(self, where: str | None = None, params: dict[str, Any] | None = None,
              columns: Sequence[str] | None = None, limit: int | None = None,
              include_missing: bool = False) -> pl.DataFrame:
        """Rows of crops_v (one per crop: tags, beat grid, features), in crop order. With
        `include_missing`, crops_all_v: also those of tracks whose files are gone (`present` false)."""
        view = "crops_all_v" if include_missing else "crops_v"
        return self.query(select_from(view, where, columns, "track_id, crop_index", limit), params)

    def tracks(self, where: str | None = None, params: dict[str, Any] | None = None,
               columns: Sequence[str] | None = None, limit: int | None = None,
               include_missing: bool = False) -> pl.DataFrame:
        """Rows of tracks_v (one per track: probe facts, tags, path); tracks_all_v with `include_missing`."""
        view = "tracks_all_v" if include_missing else "tracks_v"
        return self.query(select_from(view, where, columns, "track_id", limit), params)

    def stage_status(self) -> pl.DataFrame:
        return self.query("SELECT * FROM stage_status_v ORDER BY stage")

    def iter_crops(self, where: str | None = None, params: dict[str, Any] | None = None,
                   columns: Sequence[str] | None = None, batch_rows: int = 10_000,
                   include_missing: bool = False) -> Iterator[pl.DataFrame]:
        """crops_v in frames of at most `batch_rows` rows, read lazily from a snapshot.

        On the first `next()` the selected rows are copied into a temporary Parquet file (in
        `tempfile`'s folder) and the database is closed; the frames are read from that file, which
        is deleted when the iterator is exhausted, closed or garbage-collected. The database is
        never held between batches.
        """
        import polars as pl
        import pyarrow.parquet as pq

        from etl.read.query import copy_statement

        sql = select_from("crops_all_v" if include_missing else "crops_v", where, columns, "track_id, crop_index")
        folder = Path(tempfile.mkdtemp(prefix="etl-crops-"))
        try:
            snapshot = folder / "crops.parquet"
            with gated_sandbox(self.path, sql, params or {}, writable_files=[snapshot]) as (con, binds):
                con.execute(copy_statement(sql, snapshot, "parquet"), binds)
            with pq.ParquetFile(snapshot) as parquet:
                for batch in parquet.iter_batches(batch_size=batch_rows):
                    yield pl.from_arrow(batch)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
