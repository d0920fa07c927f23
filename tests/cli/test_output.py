"""What a person or a program reads: standard JSON, tables without raw control characters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()

ODD_NUMBERS = ("SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, '-inf'::FLOAT AS c, 1.5 AS d, "
               "['nan'::DOUBLE, 2.0] AS e, {'x': 'infinity'::DOUBLE, 's': 'NaN Infinity'} AS f")


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "x.duckdb")
    assert runner.invoke(app, ["--db", path, "init"], env={}).exit_code == 0
    return path


def strict(text: str):
    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_query_json_is_standard_json_with_null_for_nan_and_infinity(db: str, tmp_path: Path, fmt: str) -> None:
    result = runner.invoke(app, ["--db", db, "query", ODD_NUMBERS, "--format", fmt], env={})
    assert result.exit_code == 0, result.output
    text = result.stdout
    records = strict(text) if fmt == "json" else [strict(line) for line in text.splitlines() if line.strip()]
    assert records == [{"a": None, "b": None, "c": None, "d": 1.5, "e": [None, 2.0],
                        "f": {"x": None, "s": "NaN Infinity"}}]
    out = tmp_path / f"result.{fmt}"
    assert runner.invoke(app, ["--db", db, "query", ODD_NUMBERS, "--format", fmt, "--out", str(out)],
                         env={}).exit_code == 0
    written = out.read_text()
    assert written == text
    assert not list(tmp_path.glob(".result*"))  # no temporary left beside it


def test_cli_json_output_is_standard_json() -> None:
    import io
    import sys

    from cli.main import _print_json
    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        _print_json({"rate": float("nan"), "items": [float("inf"), -float("inf"), 1.0]})
        text = sys.stdout.getvalue()
    finally:
        sys.stdout = saved
    assert strict(text) == {"rate": None, "items": [None, None, 1.0]}


def test_the_table_view_escapes_control_characters(db: str) -> None:
    sql = "SELECT 'a' || chr(27) || '[31mred' || chr(0) || 'b' || chr(7) AS tag, 'tab' || chr(9) || 'x' AS t"
    result = runner.invoke(app, ["--db", db, "query", sql], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    shown = result.stdout
    assert "\x1b" not in shown and "\x00" not in shown and "\x07" not in shown
    assert "a\\x1b[31mred\\x00b\\x07" in shown
    assert "tab\\tx" in shown
