"""The read-only gate and the sandboxed connection of `etl query` / `etl export` / `Store`."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from etl.engine.errors import QueryError
from etl.app.store import open_writer
from etl.read.readonly import (
    bind,
    check_condition,
    check_read_only,
    open_sandbox,
    parse_params,
)

REFUSED = [
    "INSERT INTO crops VALUES (1)",
    "UPDATE crops SET path = 'x'",
    "DELETE FROM crops",
    "CREATE TABLE x AS SELECT 1",
    "CREATE TEMP VIEW v AS SELECT 1",
    "DROP TABLE crops",
    "ALTER TABLE crops ADD COLUMN x INT",
    "COPY crops TO '/tmp/x.csv'",
    "ATTACH '/tmp/other.duckdb' AS other",
    "DETACH other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA version",
    "SET threads = 1",
    "EXPORT DATABASE '/tmp/dump'",
    "CALL pragma_version()",
    "CHECKPOINT",
    "VACUUM",
    "USE memory",
    "BEGIN TRANSACTION",
    "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE crops",
    "WITH gone AS (DELETE FROM crops RETURNING *) SELECT * FROM gone",
    "SELECT * FROM crops WHERE crop_id = ?",
    "",
    "SELEC 1",
]
ALLOWED = [
    "SELECT 1",
    "select count(*) from crops_v;",
    "WITH a AS (SELECT 1 AS x) SELECT * FROM a",
    "SELECT 1 UNION ALL SELECT 2",
    "FROM crops_v",
    "DESCRIBE crops_v",
    "SHOW TABLES",
    "VALUES (1), (2)",
    "SELECT 1 -- a comment; DROP TABLE crops",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_anything_but_one_query_is_refused(sql: str) -> None:
    with pytest.raises(QueryError):
        check_read_only(sql)


@pytest.mark.parametrize("sql", ALLOWED)
def test_queries_pass(sql: str) -> None:
    check_read_only(sql)


def test_parameters_are_found_and_bound_by_name() -> None:
    names = check_read_only("SELECT * FROM crops_v WHERE genre ILIKE $genre AND bpm BETWEEN $lo AND $hi")
    assert names == ["genre", "hi", "lo"]
    params = parse_params(["genre=%house%", "lo=120", "hi=128.5"])
    assert bind(names, params) == {"genre": "%house%", "lo": 120, "hi": 128.5}
    with pytest.raises(QueryError, match="--param hi=VALUE"):
        bind(names, {"genre": "x", "lo": 1})
    with pytest.raises(QueryError, match="does not use parameter"):
        bind(names, {**params, "extra": 1})


def test_param_values_read_as_json_scalars_or_text() -> None:
    assert parse_params(['a=120', 'b="120"', 'c=F# minor', 'd=true', 'e=null', 'f=[1,2]', 'g=']) == {
        "a": 120, "b": "120", "c": "F# minor", "d": True, "e": None, "f": "[1,2]", "g": ""}
    with pytest.raises(QueryError):
        parse_params(["novalue"])


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "etl.duckdb"
    writer = open_writer(db, create=True)
    writer.close()
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    return db


def test_sandbox_reads_the_database_and_nothing_else(store: Path, tmp_path: Path) -> None:
    allowed = tmp_path / "out.csv"
    with open_sandbox(store, writable_files=[allowed]) as con:
        assert con.execute("SELECT count(*) FROM crops_v").fetchone() == (0,)
        for sql in (f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')",
                    "SELECT * FROM read_text('/etc/passwd')",
                    f"COPY (SELECT 1) TO '{tmp_path / 'elsewhere.csv'}'",
                    f"ATTACH '{tmp_path / 'other.duckdb'}'",
                    "SET enable_external_access = true",
                    "INSERT INTO sources (path) VALUES ('x')"):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        con.execute(f"COPY (SELECT 1 AS one) TO '{allowed}' (FORMAT csv)")
    assert allowed.read_text().splitlines() == ["one", "1"]
    assert not (tmp_path / "elsewhere.csv").exists()


@pytest.mark.parametrize("condition", [
    "false) UNION ALL SELECT * FROM crops_v WHERE (true",
    "false\n) UNION ALL SELECT * FROM crops_v WHERE (true",
    "SELECT 1",
    "true; DROP TABLE crops",
    "crop_id IN (SELECT crop_id FROM query('SELECT * FROM crops'))",
])
def test_a_condition_stays_one_condition(condition: str) -> None:
    with pytest.raises(QueryError):
        check_condition(condition, "crops_v AS c")


def test_a_condition_keeps_its_parameters_and_comments() -> None:
    assert check_condition("genre ILIKE $g AND bpm > 120 -- house", "crops_v AS c") == ["g"]
    assert check_condition("crop_id IN (SELECT crop_id FROM crops_v WHERE bpm > $b)", "crops_v AS c") == ["b"]


@pytest.mark.parametrize("sql", ["SELECT * FROM query('DELETE FROM crops')", "SELECT * FROM QUERY_TABLE('crops')",
                                 "SELECT (SELECT count(*) FROM query_table(['crops', 'tracks']))"])
def test_sql_from_a_string_is_refused(sql: str) -> None:
    with pytest.raises(QueryError, match="runs SQL from a string"):
        check_read_only(sql)
