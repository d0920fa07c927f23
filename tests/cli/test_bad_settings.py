"""Bad settings and unusable files are refused up front, in one line that says what is allowed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import WITHOUT_FILE_OVERRIDES, etl, folder_with_mode, write_tone

# Root reads and writes whatever the mode: these runs drop that privilege to meet the modes as a user.
AS_USER = WITHOUT_FILE_OVERRIDES if os.geteuid() == 0 else None


def one_line_error(result, *expected: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unexpected" not in lines[0] and "Traceback" not in result.stderr, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_a_config_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x80")
    one_line_error(etl("--config", str(binary), "status", db=db), f"cannot read config file {binary}")
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    one_line_error(etl("--config", str(folder), "status", db=db), f"cannot read config file {folder}", "folder")
    locked = tmp_path / "locked.toml"
    locked.write_text("[run]\nworkers = 1\n")
    locked.chmod(0)
    one_line_error(etl("--config", str(locked), "config", "show", db=db, prefix=AS_USER),
                   f"cannot read config file {locked}", "Permission denied")


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Issue 27.8: a UTF-8 BOM (Windows editors write one) gave `Invalid statement (at line 1, column 1)`."""
    config = tmp_path / "bom.toml"
    config.write_bytes("\ufeff[run]\nworkers = 1\n".encode("utf-8"))
    result = etl("--config", str(config), "config", "show", "--json", db=tmp_path / "x.duckdb")
    assert result.returncode == 0, result.stderr
    assert '"workers"' in result.stdout


def test_a_config_that_never_ends_is_refused(tmp_path: Path) -> None:
    """Issue 27.8: `--config /dev/zero` read until the OOM killer; settings files are small."""
    one_line_error(etl("--config", "/dev/zero", "status", db=tmp_path / "x.duckdb", timeout=60),
                   "cannot read config file /dev/zero", "larger than")


def test_a_folder_named_etl_toml_is_not_ignored(tmp_path: Path) -> None:
    """Issue 27.8: a folder ./etl.toml was silently skipped, so its settings were not what the user meant."""
    (tmp_path / "etl.toml").mkdir()
    one_line_error(etl("--db", str(tmp_path / "x.duckdb"), "status", db=tmp_path / "x.duckdb", cwd=tmp_path),
                   "etl.toml", "folder")


def test_a_database_folder_that_is_not_writable_is_one_line(tmp_path: Path) -> None:
    src = tmp_path / "music"
    write_tone(src / "a.wav")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        for args in (["init"], ["run", "--source", str(src)]):
            one_line_error(etl(*args, db=folder / "x.duckdb", prefix=AS_USER),
                           f"the database folder {folder} is not writable")
        # A database made before the folder became read-only: reading works, writing is refused.
        folder.chmod(0o755)
        assert etl("init", db=folder / "y.duckdb").returncode == 0
        folder.chmod(0o555)
        assert etl("status", db=folder / "y.duckdb", prefix=AS_USER).returncode == 0
        one_line_error(etl("run", "--source", str(src), db=folder / "y.duckdb", prefix=AS_USER),
                       f"the database folder {folder} is not writable")
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize(("setting", "allowed"), [
    ("crops.sample_rate=1", "8000 to 384000, or 0"),
    ("crops.compression_level=99", "0 to 1"),
    ("crops.fade_ms=-10", "0 to"),
    ("ingest.verify_s=-1", "0 to"),
])
def test_out_of_range_settings_are_refused_before_any_work(tmp_path: Path, setting: str, allowed: str) -> None:
    src = tmp_path / "music"
    write_tone(src / "a.wav")
    db = tmp_path / "x.duckdb"
    result = etl("--set", setting, "run", "--source", str(src), db=db)
    key, _, value = setting.partition("=")
    one_line_error(result, f"{key} = {value}", f"allowed: {allowed}")
    assert not db.exists()


@pytest.mark.parametrize(("setting", "expected"), [
    ("beats.meters=[]", "at least 1 value"),        # every beats worker died at start: "Number of processes..."
    ("beats.meters=", "at least 1 value"),
    ("beats.meters=3,x", "expected int, got 'x'"),  # was "unexpected TypeError" (a string compared with 2)
    ("beats.meters=[3.5]", "expected int, got 3.5"),
])
def test_a_list_setting_is_refused_when_empty_or_of_the_wrong_kind(tmp_path: Path, setting: str,
                                                                   expected: str) -> None:
    src = tmp_path / "music"
    write_tone(src / "a.wav")
    db = tmp_path / "x.duckdb"
    result = etl("--set", setting, "run", "--source", str(src), "--stage", "ingest", "--stage", "beats", db=db)
    one_line_error(result, "beats.meters", expected)
    assert not db.exists()


def test_a_list_setting_reads_its_elements_as_the_default_s(tmp_path: Path) -> None:
    import json

    for args, env in ((["--set", "beats.meters=3,4"], None), ([], {"ETL_BEATS_METERS": "4"}),
                      (["--set", "beats.meters=[2, 3]"], None)):
        shown = etl(*args, "config", "show", "--json", db=tmp_path / "x.duckdb", env=env, check=True)
        meters = json.loads(shown.stdout)["beats"]["meters"]["value"]
        assert meters and all(isinstance(m, int) for m in meters), meters


def test_a_misspelled_environment_variable_warns_naming_the_setting(tmp_path: Path) -> None:
    result = etl("config", "show", "--json", db=tmp_path / "x.duckdb", env={"ETL_CROPS_SECOND": "10"})
    assert result.returncode == 0
    assert "warning" in result.stderr and "ETL_CROPS_SECOND is not" in result.stderr and "ETL_CROPS_SECONDS" in result.stderr


@pytest.mark.parametrize("size", ["-5G", "0", "-1"])
def test_a_shard_size_must_be_positive(tmp_path: Path, size: str) -> None:
    result = etl("export", "--format", "webdataset", "--out", str(tmp_path / "out"), "--shard-size", size,
                 db=tmp_path / "x.duckdb")
    one_line_error(result, "--shard-size", size)


@pytest.mark.parametrize("data_dir", [".", "..", "../.."])
def test_a_data_folder_holding_the_database_is_refused(tmp_path: Path, data_dir: str) -> None:
    """Issue 27 (the sweep): `[run] data_dir = "."` made `etl gc` take the database, its lock and the
    user's files beside it for orphaned artifacts."""
    box = tmp_path / "a" / "b" / "box"
    box.mkdir(parents=True)
    (box / "notes.txt").write_text("mine")
    music = tmp_path / "music"
    write_tone(music / "tone.wav", seconds=2.0)
    db = box / "etl.duckdb"
    for command in (("run", "--source", str(music), "--stage", "ingest"), ("gc",)):
        one_line_error(etl("--set", f"run.data_dir={data_dir}", *command, db=db), "data_dir", "holds the database")
    assert (box / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("command", [("run", "--stage", "ingest"), ("gc",), ("status",), ("query", "select 1")])
def test_a_db_that_is_not_a_database_is_refused_leaving_nothing_beside_it(tmp_path: Path, command: tuple) -> None:
    """Issue 27 (the sweep): `--db notes.txt run` refused the file but left `notes.txt.lock` beside it."""
    folder = tmp_path / "docs"
    folder.mkdir()
    notes = folder / "notes.txt"
    notes.write_text("hello")
    one_line_error(etl(*command, db=notes), "notes.txt", "not a")
    assert notes.read_text() == "hello" and sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


# Issue 27.8: an --out (or --dir) that cannot be made or written gave "unexpected FileExistsError",
# "NotADirectoryError" or "PermissionError" (and query's a DuckDB message naming its temporary file).
# (command, --out relative to a file in the way / a read-only folder, what the line names)
OUTPUTS = [
    (["export", "--format", "jsonl"], "{file}/new", "{file} is not a folder"),
    (["export", "--format", "jsonl"], "{ro}/new", "{ro}: Permission denied"),
    (["export", "--format", "jsonl"], "{ro}/new/deeper", "{ro}/new: Permission denied"),
    (["report"], "{file}", "{file} is not a folder"),
    (["report"], "{file}/x", "{file} is not a folder"),
    (["report"], "{ro}", "{ro}: Permission denied"),
    (["report"], "{ro}/new", "{ro}/new: Permission denied"),
    (["query", "SELECT 1", "--format", "csv"], "{file}/x.csv", "{file} is not a folder"),
    (["query", "SELECT 1", "--format", "csv"], "{ro}/x.csv", "{ro}: Permission denied"),
    (["query", "SELECT 1", "--format", "csv"], "{ro}/new/x.csv", "{ro}/new: Permission denied"),
]


@pytest.mark.parametrize(("command", "out", "expected"), OUTPUTS)
def test_an_out_that_cannot_be_made_or_written_is_one_line(tmp_path: Path, command: list[str], out: str,
                                                           expected: str) -> None:
    db = tmp_path / "x.duckdb"
    assert etl("init", db=db).returncode == 0
    places = {"file": tmp_path / "a-file", "ro": tmp_path / "read-only"}
    places["file"].write_text("not a folder")
    with folder_with_mode(places["ro"], 0o555):
        result = etl(*command, "--out", out.format(**places), db=db, prefix=AS_USER)
        one_line_error(result, expected.format(**places))
    assert places["file"].read_text() == "not a folder" and list(places["ro"].iterdir()) == []


def test_a_model_catalog_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    """Issue 27.8: `--catalog FOLDER` gave `unexpected IsADirectoryError`."""
    for args in (["models"], ["models", "fetch", "htdemucs", "--yes"]):
        one_line_error(etl(*args, "--catalog", str(tmp_path), db=tmp_path / "x.duckdb"),
                       f"cannot read model catalog {tmp_path}")


@pytest.mark.parametrize(("args", "expected"), [
    (["query", "SELECT 1", "--format", "csv", "--out", "{locked}/x.csv"], "cannot write into the folder {locked}"),
    (["export", "--format", "jsonl", "--out", "{locked}/x"], "cannot write into the folder {locked}"),
    (["--config", "{locked}/etl.toml", "status"], "cannot read config file {locked}/etl.toml"),
    (["--db", "{locked}/x.duckdb", "status"], "cannot reach the database {locked}/x.duckdb"),
    (["--db", "{locked}/x.duckdb", "sources", "list"], "cannot reach the database {locked}/x.duckdb"),
    (["--db", "{locked}/x.duckdb", "run", "--stage", "ingest"], "cannot reach the database {locked}/x.duckdb"),
    (["--db", "{locked}/x.duckdb", "gc"], "cannot reach the database {locked}/x.duckdb"),
])
def test_a_path_in_a_folder_this_user_may_not_enter_is_one_line(tmp_path: Path, args: list[str],
                                                                 expected: str) -> None:
    """Issue 27.8: `Path.exists()` of a path there raises PermissionError: it was `unexpected PermissionError`."""
    db = tmp_path / "x.duckdb"
    assert etl("init", db=db).returncode == 0
    with folder_with_mode(tmp_path / "locked", 0) as locked:
        result = etl(*(a.format(locked=locked) for a in args), db=db, prefix=AS_USER)
        one_line_error(result, expected.format(locked=locked), "Permission denied")


@pytest.mark.parametrize(("stage", "setting", "value"), [
    ("stems", "repo", "{locked}"),
    ("classify", "model_dir", "{locked}"),
    ("aesthetics", "checkpoint", "{locked}/checkpoint.pt"),
    ("captions", "model", "{locked}/model.gguf"),
])
def test_a_model_in_a_folder_this_user_may_not_enter_is_a_reason_not_a_crash(
        tmp_path: Path, stage: str, setting: str, value: str) -> None:
    """Issue 27.8 (sweep): `Path.is_file()` of a model there raises PermissionError: `etl status`,
    `etl models` and `etl run` ended in `unexpected PermissionError`. The stage is unavailable, and says why."""
    import json

    db = tmp_path / "x.duckdb"
    assert etl("init", db=db).returncode == 0
    with folder_with_mode(tmp_path / "locked", 0) as locked:
        setting_args = ["--set", f"{stage}.{setting}={value.format(locked=locked)}"]
        status = etl(*setting_args, "status", "--json", db=db, prefix=AS_USER)
        assert status.returncode == 0, status.stderr
        [row] = [r for r in json.loads(status.stdout) if r["stage"] == stage]
        assert f"cannot read {locked}/" in row["note"] and "Permission denied" in row["note"], row
        models = etl(*setting_args, "models", "--json", db=db, prefix=AS_USER)
        assert models.returncode == 0, models.stderr
        rows = [r for r in json.loads(models.stdout)["configured"] if r["stage"] == stage]
        assert rows and all("Permission denied" in str(r["stage_skipped_because"]) for r in rows), rows
        run = etl(*setting_args, "run", "--stage", stage, db=db, prefix=AS_USER)
        assert run.returncode == 0 and "unexpected" not in run.stderr, run.stderr
        assert f"{stage} (cannot read {locked}/" in run.stderr, run.stderr
