"""What a person or a program reads: standard JSON, tables without raw control characters."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()

ODD_NUMBERS = ("SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, '-inf'::FLOAT AS c, 1.5 AS d, "
               "['nan'::DOUBLE, 2.0] AS e, {'x': 'infinity'::DOUBLE, 's': 'NaN Infinity'} AS f")


@pytest.fixture(autouse=True)
def fresh_consoles() -> None:
    """The CLI makes its rich consoles once per process, reading COLUMNS then: one per test here."""
    import cli.main

    cli.main.out._console = None
    cli.main.err._console = None


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


def render(db: str, *args: str, columns: int = 80) -> str:
    result = runner.invoke(app, ["--db", db, *args], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_status_is_one_line_per_stage_with_a_short_note_in_80_columns(db: str, tmp_path: Path) -> None:
    from etl.app import registry

    missing_model = ["--set", "stems.model=nowhere", "--set", f"stems.repo={tmp_path}"]
    text = render(db, *missing_model, "status")
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    names = [s.name for s in registry.all_stages()]
    for name in names:  # each stage on exactly one line of the table
        assert sum(1 for line in lines if f" {name} " in f" {line.strip(' │┃')} ") == 1, text
    assert "model nowhere not installed" in text and "etl models" in text
    assert "to install it" not in text  # the long instruction is `etl models`'s
    rows = json.loads(render(db, *missing_model, "status", "--format", "json"))
    stems = next(r for r in rows if r["stage"] == "stems")
    assert stems["note"].startswith("model nowhere not installed") and "to install it" in stems["detail"]
    assert json.loads(render(db, *missing_model, "status", "--json")) == rows
    csv_text = render(db, *missing_model, "status", "--format", "csv")
    import csv
    import io
    parsed = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["stage"] for r in parsed] == names and parsed[0]["pending"] == "0"


def test_failures_table_stays_one_line_per_failure_in_80_columns(db: str, tmp_path: Path) -> None:
    deep = tmp_path / "music" / ("a very long folder name " * 4).strip() / "another long folder"
    deep.mkdir(parents=True)
    (deep / "not really music, a text file with a long name.mp3").write_text("hello " * 50)
    result = runner.invoke(app, ["--db", db, "--set", "run.executor=inline", "run", "--stage", "ingest",
                                 "--source", str(tmp_path / "music")], env={})
    assert result.exit_code == 3, result.output  # its one item failed
    text = render(db, "failures")
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    body = [line for line in lines if ".mp3" in line]
    assert len(body) == 1, text
    assert "…" in body[0] and "long name.mp3" in body[0]  # shortened from the left, the file name kept


def test_a_wide_query_result_reads_as_records_in_80_columns(db: str) -> None:
    sql = ("SELECT 'x' || repeat('long text ', 30) AS description, 1 AS a_number, "
           "'/a/very/long/path/to/some/folder/of/music/track.flac' AS path, 2.5 AS another_number")
    text = render(db, "query", sql)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert any(line.lstrip().startswith("description") for line in lines)
    assert any("track.flac" in line for line in lines)
    assert len(lines) <= 12, text


def test_a_run_says_each_model_stage_it_cannot_run_in_one_line_naming_the_fetch_command(db: str,
                                                                                       tmp_path: Path) -> None:
    """Without models (nothing in the models folder or demucs's caches) a run's stages say so in one
    short line each, with the command that fetches what is missing; the whole text stays in `etl models`
    and `etl status --json`."""
    env = {"ETL_MODELS_DIR": str(tmp_path / "models"), "HF_HUB_CACHE": str(tmp_path / "hf"),
           "TORCH_HOME": str(tmp_path / "torch"), "COLUMNS": "80"}
    model_stages = ("stems", "classify", "aesthetics", "captions")
    result = runner.invoke(app, ["--db", db, "run", *(a for s in model_stages for a in ("--stage", s))], env=env)
    assert result.exit_code == 0, result.output
    lines = {line.split(":", 1)[0]: line for line in result.stderr.splitlines() if ": skipped" in line}
    expected = {
        "stems": "stems: skipped — model not installed: etl models fetch htdemucs",
        "classify": "classify: skipped — discogs-effnet-bs64-1 not installed: etl models fetch discogs-effnet",
        "aesthetics": "aesthetics: skipped — model not installed: etl models fetch audiobox-aesthetics",
        "captions": "captions: skipped — no model: set [captions] model or etl models fetch music-flamingo-q6_k",
    }
    libraries = {"stems": "demucs", "classify": "essentia", "aesthetics": "audiobox_aesthetics",
                 "captions": "llama_cpp"}
    for stage in model_stages:
        assert stage in lines, result.stderr
        if importlib.util.find_spec(libraries[stage]) is not None:  # a library absent here: a line of its own
            assert lines[stage] == expected[stage], result.stderr
    assert "python -c" not in result.stderr and "to install it" not in result.stderr
    assert "warning" not in result.stderr  # ETL_MODELS_DIR is the catalog's variable, not a misspelt setting
    status = json.loads(runner.invoke(app, ["--db", db, "status", "--json"], env=env).stdout)
    stems = next(r for r in status if r["stage"] == "stems")
    assert stems["note"] == "model not installed: etl models fetch htdemucs"
    assert "to install it" in stems["detail"] and str(tmp_path / "models" / "demucs") in stems["detail"]


def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    """Issue 27.8: `etl status | head -1` (here a long query) ended in `unexpected BrokenPipeError`: a
    reader that stops early is not an error to report; the exit status is 141 (128 + SIGPIPE), as for
    other tools killed by it."""
    import shlex
    import subprocess

    from tests.helpers import etl, etl_command

    db = tmp_path / "x.duckdb"
    etl("init", db=db, check=True)
    command = shlex.join(etl_command("query", "SELECT * FROM range(300000)", "--format", "csv", db=db))
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -1"], capture_output=True,
                            text=True, timeout=120)
    assert result.stdout == "range\n"
    assert result.stderr == "", result.stderr
    assert result.returncode == 141
