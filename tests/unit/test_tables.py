"""Declared writes (etl/engine/tables.py): what a stage's `Write` names is what the engine stores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from etl.engine.config import Config, params_hash
from etl.engine.errors import BadInput
from etl.engine.runner import RunOptions, StageRunner
from etl.engine.stage import Stage
from etl.app.store import open_writer
from etl.engine.tables import Rows, Write, update_from
from etl.stages import features


@dataclass(frozen=True)
class ToyParams:
    factor: int = 3
    label: str = "toy"


def times(item: dict[str, Any], params: ToyParams) -> dict[str, Any]:
    if item["value"] == 4:
        raise BadInput("four is not written")
    return {"product": item["value"] * params.factor, "digits": [int(d) for d in str(item["value"])]}


WRITE = Write(rows=(Rows("new_products", "products",
                         lambda o, params: [{"item_id": o.item_id, "product": o.result["product"]}]),
                    Rows("new_digits", "digits", lambda o, params: [
                        {"item_id": o.item_id, "position": i, "digit": d} for i, d in enumerate(o.result["digits"])])),
              statements=("INSERT INTO products BY NAME SELECT *, $params_hash AS params_hash FROM new_products",
                          "INSERT INTO digits BY NAME SELECT *, $label AS model FROM new_digits"),
              binds=lambda params: {"label": params.label})
TOY = Stage(name="toy", description="multiplies numbers", process=times, write=WRITE, Params=ToyParams,
            items_sql="SELECT id AS item_id, CAST(value AS VARCHAR) AS input_fp, value FROM toy_items",
            clear_sql="DELETE FROM products WHERE item_id IN (SELECT item_id FROM cleared)")


@pytest.fixture
def writer(db: Path):
    w = open_writer(db, create=True)
    w.con.execute("CREATE TABLE toy_items (id VARCHAR PRIMARY KEY, value INTEGER)")
    w.con.execute("CREATE TABLE products (item_id VARCHAR PRIMARY KEY, product BIGINT, params_hash VARCHAR NOT NULL,"
                  " created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
    w.con.execute("CREATE TABLE digits (item_id VARCHAR, position INTEGER, digit TINYINT, model VARCHAR)")
    w.con.execute("INSERT INTO toy_items VALUES ('a', 12), ('b', 4), ('c', 7)")
    yield w
    w.close()


def test_the_engine_writes_the_declared_rows_with_the_declared_statements(writer) -> None:
    config = Config.load({"toy": ToyParams}, environ={}, cli={"run.executor": "inline", "run.batch_size": 2})
    report = StageRunner(writer, TOY, config, RunOptions(run_id="r1", executor="inline")).run()
    assert (report.done, report.failed) == (2, 1)
    hashed = params_hash(ToyParams())
    assert writer.con.execute("SELECT item_id, product, params_hash FROM products ORDER BY item_id").fetchall() \
        == [("a", 36, hashed), ("c", 21, hashed)]  # each done outcome's row, typed like the table
    assert writer.con.execute("SELECT * FROM digits ORDER BY item_id, position").fetchall() \
        == [("a", 0, 1, "toy"), ("a", 1, 2, "toy"), ("c", 0, 7, "toy")]  # several rows of one outcome
    assert TOY.write.sql == "stages/toy/write.sql"  # by default, the stage folder's


def test_update_from_sets_only_the_batch_columns(writer) -> None:
    writer.con.execute("INSERT INTO products VALUES ('a', 1, 'h', DEFAULT), ('b', 2, 'h', DEFAULT)")
    update_from(writer.con, "products", "item_id", pa.table({"item_id": ["b"], "product": [20]}))
    assert writer.con.execute("SELECT item_id, product, params_hash FROM products ORDER BY 1").fetchall() \
        == [("a", 1, "h"), ("b", 20, "h")]


def test_every_crop_features_column_belongs_to_one_group(db: Path) -> None:
    """The migrations make the table; features.GROUP_COLUMNS only says which group owns a column."""
    w = open_writer(db, create=True)
    try:
        columns = [row[0] for row in w.con.execute("DESCRIBE crop_features").fetchall()]
    finally:
        w.close()
    grouped = [c for group in features.GROUP_COLUMNS.values() for c in group]
    hashes = [f"{group}_hash" for group in features.GROUP_COLUMNS]
    assert sorted(grouped) == sorted(set(grouped))
    assert sorted(["crop_id", "track_id", *hashes, *grouped]) == sorted(columns)
