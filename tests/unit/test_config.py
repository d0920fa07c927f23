from __future__ import annotations

from pathlib import Path

import pytest

from etl.app import registry
from etl.engine.config import Config, params_hash
from etl.engine.errors import ConfigError


def load(tmp_path: Path, toml: str | None = None, env: dict | None = None, cli: dict | None = None) -> Config:
    file = None
    if toml is not None:
        file = tmp_path / "etl.toml"
        file.write_text(toml)
    return Config.load(registry.params_types(), file, environ=env or {}, cli=cli)


def test_precedence_cli_over_env_over_file_over_default(tmp_path: Path) -> None:
    toml = "[ingest]\nverify_s = 2.0\nworkers = 4\n[run]\nbatch_size = 50\n"
    config = load(tmp_path, toml)
    assert config.params("ingest").verify_s == 2.0 and config.run.batch_size == 50
    assert config.settings()["ingest"]["verify_s"].origin.startswith("file")
    config = load(tmp_path, toml, env={"ETL_INGEST_VERIFY_S": "3", "ETL_RUN_BATCH_SIZE": "60"})
    assert config.params("ingest").verify_s == 3.0 and config.run.batch_size == 60
    assert config.settings()["ingest"]["verify_s"].origin == "env ETL_INGEST_VERIFY_S"
    config = load(tmp_path, toml, env={"ETL_INGEST_VERIFY_S": "3"}, cli={"ingest.verify_s": "0.5"})
    assert config.params("ingest").verify_s == 0.5
    assert config.settings()["ingest"]["verify_s"].origin == "cli"
    assert config.engine("ingest", "workers", 1) == 4
    assert config.settings()["metadata"]["various_artists_aliases"].origin == "default"


def test_unknown_keys_and_tables_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'colour' in \\[ingest\\]"):
        load(tmp_path, "[ingest]\ncolour = 'red'\n")
    with pytest.raises(ConfigError, match="unknown table \\[nope\\]"):
        load(tmp_path, "[nope]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load(tmp_path, cli={"run.nope": "1"})


def test_types_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected int"):
        load(tmp_path, "[run]\nworkers = 'many'\n")
    with pytest.raises(ConfigError, match="expected bool"):
        load(tmp_path, env={"ETL_INGEST_INCLUDE_HIDDEN": "perhaps"})
    with pytest.raises(ConfigError, match=r"run.workers = 0 \(--set\): out of range; allowed: 1 to"):
        load(tmp_path, cli={"run.workers": "0"})
    with pytest.raises(ConfigError, match="line"):
        load(tmp_path, "[run\n")
    config = load(tmp_path, env={"ETL_METADATA_VARIOUS_ARTISTS_ALIASES": "VA, Sampler"})
    assert config.params("metadata").various_artists_aliases == ("VA", "Sampler")


def test_params_hash_ignores_settings_that_do_not_change_results(tmp_path: Path) -> None:
    base = load(tmp_path).params("ingest")
    assert params_hash(base) == params_hash(load(tmp_path, cli={"ingest.include_hidden": "true"}).params("ingest"))
    assert params_hash(base) != params_hash(load(tmp_path, cli={"ingest.verify_s": "2"}).params("ingest"))


def test_item_timeout_defaults_to_600_s_and_is_overridable_per_stage(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.run.item_timeout_s == 600
    assert config.engine("beats", "item_timeout_s", config.run.item_timeout_s) == 600
    config = load(tmp_path, "[run]\nitem_timeout_s = 30\n[stems]\nitem_timeout_s = 3600\n",
                  env={"ETL_BEATS_ITEM_TIMEOUT_S": "1.5"})
    assert config.run.item_timeout_s == 30
    assert config.engine("stems", "item_timeout_s", config.run.item_timeout_s) == 3600
    assert config.engine("beats", "item_timeout_s", config.run.item_timeout_s) == 1.5
    assert config.engine("ingest", "item_timeout_s", config.run.item_timeout_s) == 30
    with pytest.raises(ConfigError, match="item_timeout_s"):
        load(tmp_path, cli={"run.item_timeout_s": "-1"})
    with pytest.raises(ConfigError, match="item_timeout_s"):
        load(tmp_path, cli={"crops.item_timeout_s": "0"}).engine("crops", "item_timeout_s", 600.0)


@pytest.mark.parametrize(("toml", "named", "allowed"), [
    ("[crops]\nsample_rate = 1\n", "crops.sample_rate = 1", "8000 to 384000"),
    ("[crops]\ncompression_level = 99\n", "crops.compression_level = 99", "0 to 1"),
    ("[crops]\nfade_ms = -5\n", "crops.fade_ms = -5", "0 to"),
    ("[ingest]\nverify_s = -1\n", "ingest.verify_s = -1", "0 to"),
    ("[stems]\nsample_rate = 100\n", "stems.sample_rate = 100", "8000 to 384000"),
    ("[beats]\nmin_bpm = -10\n", "beats.min_bpm = -10", "to"),
    ("[features]\nn_mfcc = 0\n", "features.n_mfcc = 0", "1 to"),
])
def test_out_of_range_settings_are_refused_when_read_with_the_allowed_range(
        tmp_path: Path, toml: str, named: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, toml)
    message = str(caught.value)
    assert named in message and allowed in message and "etl.toml" in message, message
    with pytest.raises(ConfigError, match="crops.sample_rate = 1 "):
        load(tmp_path, env={"ETL_CROPS_SAMPLE_RATE": "1"})
    with pytest.raises(ConfigError, match="--set|cli"):
        load(tmp_path, cli={"crops.fade_ms": "-1"})
    # 0 means the source's rate, and the edges of the range are allowed.
    assert load(tmp_path, "[crops]\nsample_rate = 0\n").params("crops").sample_rate == 0
    assert load(tmp_path, "[crops]\nsample_rate = 8000\ncompression_level = 1\n").params("crops").sample_rate == 8000


def test_every_numeric_stage_parameter_declares_its_range() -> None:
    from dataclasses import fields

    for stage, params_type in registry.params_types().items():
        for f in fields(params_type):
            default = f.default
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                continue
            assert "range" in f.metadata, f"{stage}.{f.name} declares no allowed range"
            low, high = f.metadata["range"]
            assert (low is None or low <= default or default in f.metadata.get("also", ())) and \
                (high is None or default <= high), f"{stage}.{f.name}: default {default} outside {low}..{high}"


def test_a_misspelled_environment_variable_warns_naming_the_closest_setting(tmp_path: Path) -> None:
    config = load(tmp_path, env={"ETL_CROPS_SECOND": "10", "ETL_DB": "x.duckdb", "ETL_CONFIG": "etl.toml",
                                 "ETL_TEST_CORPUS": "/c"})
    assert len(config.warnings) == 1, config.warnings
    assert "ETL_CROPS_SECOND" in config.warnings[0] and "ETL_CROPS_SECONDS" in config.warnings[0]
    assert load(tmp_path, env={"ETL_CROPS_SECONDS": "10"}).warnings == []


def test_unreadable_config_files_are_one_line_errors(tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage\x80")
    with pytest.raises(ConfigError, match=f"cannot read config file {binary}: .*UTF-8"):
        Config.load(registry.params_types(), binary, environ={})
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match=f"cannot read config file {folder}: it is a folder"):
        Config.load(registry.params_types(), folder, environ={})
