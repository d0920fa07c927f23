"""The command line as users and scripts see it: names, flags, JSON on stdout, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.helpers import write_tone
from tests import snapshots

runner = CliRunner()


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env or {}, catch_exceptions=False)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    src = tmp_path / "music"
    write_tone(src / "a.wav")
    write_tone(src / "b.flac", freq_hz=330, fmt="FLAC")
    (src / "bad.mp3").write_text("not audio")
    return src


def test_help_explains_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("init", "run", "status", "failures", "config", "models", "query", "export", "report"):
        assert command in result.output
    run_help = invoke("run", "--help").output
    for flag in ("--source", "--stage", "--workers", "--retry-failed", "--limit", "--dry-run"):
        assert flag in run_help
    report_help = invoke("report", "--help").output
    for flag in ("--out", "--where", "--param", "--x", "--y", "--embed-audio", "--samples", "--force", "--json"):
        assert flag in report_help


def test_init_run_status_failures(tmp_path: Path, library: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    assert invoke("--db", db, "init").exit_code == 0
    result = invoke("--db", db, "--set", "run.executor=inline", "run", "--source", str(library), "--json")
    assert result.exit_code == 3, result.output  # an item failed: the run went on, and says so
    reports = {r["stage"]: r for r in json.loads(result.stdout)}
    assert (reports["ingest"]["done"], reports["ingest"]["failed"]) == (2, 1)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ran: ingest 2, ") and last.endswith("failed: 1 item(s) (`etl failures` lists them)")
    assert "skipped or stopped: " in last and "captions (no model: set [captions] model or etl models fetch" in last
    status = json.loads(invoke("--db", db, "status", "--json").stdout)
    assert [row["stage"] for row in status] == snapshots.stored()["stages"]  # every stage, in the registry's order
    assert set(status[0]) >= {"stage", "pending", "running", "done", "failed", "skipped"}
    failures = json.loads(invoke("--db", db, "failures", "--json").stdout)
    assert [Path(f["path"]).name for f in failures] == ["bad.mp3"]
    assert failures[0]["reason"].startswith("not an audio file")
    assert json.loads(invoke("--db", db, "failures", "--stage", "metadata", "--json").stdout) == []
    table = invoke("--db", db, "status").stdout
    assert "ingest" in table and "metadata" in table


def test_status_names_a_source_that_is_not_reachable(tmp_path: Path, library: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    assert invoke("--db", db, "--set", "run.executor=inline", "run", "--stage", "ingest", "--source",
                  str(library)).exit_code == 3  # the library's bad.mp3 fails
    assert "not reachable" not in invoke("--db", db, "status").stderr
    library.rename(tmp_path / "elsewhere")
    result = invoke("--db", db, "status")
    assert result.exit_code == 0
    assert f"source {library} is not reachable" in result.stderr and "etl sources move" in result.stderr


def test_env_db_and_dry_run_and_limit(tmp_path: Path, library: Path) -> None:
    env = {"ETL_DB": str(tmp_path / "env.duckdb"), "ETL_RUN_EXECUTOR": "inline"}
    result = invoke("run", "--source", str(library), "--dry-run", "--json", env=env)
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["pending"] == 3
    status = {r["stage"]: r for r in json.loads(invoke("status", "--json", env=env).stdout)}
    assert status["ingest"]["done"] == 0
    result = invoke("run", "--limit", "1", "--stage", "ingest", "--json", env=env)
    assert json.loads(result.stdout)[0]["done"] + json.loads(result.stdout)[0]["failed"] == 1
    assert [r["stage"] for r in json.loads(result.stdout)] == ["ingest"]


def test_retry_failed(tmp_path: Path, library: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    invoke("--db", db, "--set", "run.executor=inline", "run", "--source", str(library))
    again = json.loads(invoke("--db", db, "--set", "run.executor=inline", "run", "--json").stdout)
    assert again[0]["pending"] == 0
    retried = json.loads(invoke("--db", db, "--set", "run.executor=inline", "run", "--retry-failed", "--json").stdout)
    assert retried[0]["pending"] == 1 and retried[0]["failed"] == 1
    failures = json.loads(invoke("--db", db, "failures", "--json").stdout)
    assert failures[0]["attempts"] == 2


def test_config_show_reports_origins(tmp_path: Path) -> None:
    config = tmp_path / "etl.toml"
    config.write_text("[ingest]\nverify_s = 2.5\nworkers = 3\n")
    result = invoke("--config", str(config), "--set", "run.batch_size=10", "config", "show", "--json",
                    env={"ETL_METADATA_VARIOUS_ARTISTS_ALIASES": "VA"})
    settings = json.loads(result.stdout)
    assert settings["ingest"]["verify_s"] == {"value": 2.5, "origin": f"file {config}"}
    assert settings["ingest"]["workers"]["value"] == 3
    assert settings["run"]["batch_size"] == {"value": 10, "origin": "cli"}
    assert settings["metadata"]["various_artists_aliases"]["origin"] == "env ETL_METADATA_VARIOUS_ARTISTS_ALIASES"
    assert settings["run"]["max_attempts"]["origin"] == "default"
    assert "ingest.verify_s" in invoke("--config", str(config), "config", "show").stdout


@pytest.mark.parametrize("args, message", [
    (["--config", "/nonexistent/etl.toml", "config", "show"], "does not exist"),
    (["--set", "ingest.nope=1", "config", "show"], "unknown key 'nope'"),
    (["run", "--stage", "nope"], "unknown stage nope"),
    (["run", "--source", "/nonexistent/music"], "is not a folder"),
    (["failures", "--stage", "nope"], "unknown stage nope"),
])
def test_errors_are_one_line_without_traceback(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["--db", str(tmp_path / "x.duckdb"), *args], env={})
    assert result.exit_code == 1, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_paths_and_reasons_print_as_written_not_as_markup(tmp_path: Path, library: Path) -> None:
    (library / "bad.mp3").rename(library / "[red]bad[stems].mp3")
    db = ["--db", str(tmp_path / "x.duckdb")]
    runner.invoke(app, [*db, "run", "--source", str(library), "--stage", "ingest"], env={})
    wide = {"COLUMNS": "500"}  # no wrapping inside the path
    table = runner.invoke(app, [*db, "failures"], env=wide).stdout
    assert "[red]bad[stems].mp3" in table  # rich would have eaten both bracketed words
    shown = runner.invoke(app, [*db, "query", "SELECT path FROM failures_v"], env=wide).stdout
    assert "[red]bad[stems].mp3" in shown


def test_run_without_sources_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--db", str(tmp_path / "x.duckdb"), "run"], env={})
    assert result.exit_code == 1 and "pass --source DIR" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--db", str(tmp_path / "absent.duckdb"), "--debug", "status"], env={})
    assert result.exit_code == 1 and "no database at" in str(result.exception)


@pytest.mark.parametrize("command", [["status"], ["query", "SELECT count(*) FROM crops_v", "--format", "csv"],
                                     ["query", "--list"]])
def test_query_side_commands_do_not_import_audio_or_model_libraries(tmp_path: Path, command: list[str]) -> None:
    import subprocess
    import sys

    from etl.app.pipeline import init_database

    db = tmp_path / "etl.duckdb"
    init_database(db)
    code = ("import sys; from cli.main import app; sys.argv=['etl','--db',%r,*%r]\n"
            "try: app()\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('soundfile','mutagen','pyarrow','torch','madmom','essentia','librosa','polars',"
            "'demucs','scipy') if m in sys.modules]\n"
            "print(heavy)") % (str(db), command)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip().splitlines()[-1] == "[]", out


@pytest.mark.parametrize("signame, fmt", [("SIGINT", "table"), ("SIGTERM", "csv")])
def test_query_stops_a_long_statement_at_a_signal(tmp_path: Path, signame: str, fmt: str) -> None:
    import signal
    import subprocess
    import time

    from etl.app.pipeline import init_database
    from tests.helpers import REPO, etl_command

    db = tmp_path / "etl.duckdb"
    init_database(db)
    endless = "SELECT count(*) FROM range(100000000) a, range(100000000) b"
    process = subprocess.Popen(etl_command("query", endless, "--format", fmt, db=db), cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    signum = getattr(signal, signame)
    process.send_signal(signum)
    sent = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"etl query still running 10 s after {signame}")
    assert time.monotonic() - sent < 5
    assert process.returncode == 128 + signum, stderr
    assert stderr.startswith("stopped") and signame in stderr and "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


def test_skip_runs_every_stage_but_the_one_named(tmp_path: Path, library: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    result = invoke("--db", db, "--set", "run.executor=inline", "run", "--source", str(library), "--skip", "beats",
                    "--skip", "metadata", "--json", "--dry-run")
    stages = [r["stage"] for r in json.loads(result.stdout)]
    assert "beats" not in stages and "metadata" not in stages and "ingest" in stages and "features" in stages
    wrong = invoke("--db", db, "run", "--skip", "beat")
    assert wrong.exit_code == 1 and "unknown stage beat" in wrong.stderr
