"""Effective settings: CLI > environment > config file > defaults, each value with its origin.

The file is TOML: `[run]` for global settings and one table per stage holding that stage's
parameters plus the engine keys every stage has (`workers`, `batch_size`, `item_timeout_s`). Environment variables
are `ETL_<TABLE>_<KEY>` (e.g. `ETL_CROPS_SECONDS=10`, `ETL_RUN_WORKERS=2`). Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from etl.engine.errors import ConfigError


@dataclass(frozen=True)
class RunSettings:
    workers: int = max(1, os.cpu_count() or 1)
    batch_size: int = 200            # items per claim / commit transaction
    commit_interval_s: float = 2.0   # commit finished work at least this often
    max_attempts: int = 3            # a failed item is retried until it has failed this often
    data_dir: str = "etl-data"       # artifacts (stems, crops, MIDI); relative to the database's folder
    executor: str = "process"        # process (a spawn pool) | inline (in the coordinator, for debugging)
    item_timeout_s: float = 600.0    # an item still running after this long is failed, its worker killed
    # A file gone from a reachable source folder keeps its track (and crops, stems...) this long, out
    # of the views: moved back, or found elsewhere in the library, nothing is recomputed. `etl gc`
    # then forgets it and removes what hangs off it.
    missing_grace_days: float = 30.0


# Keys every stage table accepts besides its parameters; they change how, not what, is computed,
# so they are not part of the params hash.
ENGINE_KEYS: dict[str, type] = {"workers": int, "batch_size": int, "item_timeout_s": float}


@dataclass(frozen=True)
class Setting:
    value: Any
    origin: str  # "default", "file <path>", "env ETL_X_Y", "cli"


def not_hashed(default: Any, **kwargs: Any) -> Any:
    """A stage parameter that does not change results (so does not invalidate them)."""
    return field(default=default, metadata={"hash": False}, **kwargs)


def params_hash(params: Any) -> str:
    """Stable hash of a stage's result-affecting parameters."""
    hashed = {f.name: getattr(params, f.name) for f in fields(params) if f.metadata.get("hash", True)}
    blob = json.dumps(hashed, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _coerce(text: Any, like: Any, where: str) -> Any:
    """Turn a string (env / CLI) or TOML value into the type of the default `like`."""
    try:
        if isinstance(like, bool):
            if isinstance(text, bool):
                return text
            lowered = str(text).strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(text)
        if isinstance(like, int):
            if isinstance(text, float) or isinstance(text, bool):
                raise ValueError(text)
            return int(text)
        if isinstance(like, float):
            return float(text)
        if isinstance(like, (list, tuple)):
            if isinstance(text, (list, tuple)):
                return tuple(text)
            stripped = str(text).strip()
            if stripped.startswith("["):
                return tuple(json.loads(stripped))
            return tuple(part.strip() for part in stripped.split(",") if part.strip())
        if like is None or isinstance(like, str):
            return str(text)
    except (ValueError, TypeError, json.JSONDecodeError):
        pass
    raise ConfigError(f"{where}: expected {type(like).__name__}, got {text!r}")


class Config:
    """Resolved settings for [run] and every stage table."""

    def __init__(self, tables: dict[str, dict[str, Setting]], params_types: Mapping[str, type]) -> None:
        self._tables = tables
        self._params_types = params_types

    @classmethod
    def load(
        cls,
        params_types: Mapping[str, type],
        config_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        cli: Mapping[str, Any] | None = None,
    ) -> Config:
        """`params_types`: stage name -> its frozen Params dataclass. `cli`: {"table.key": value}."""
        environ = os.environ if environ is None else environ
        defaults: dict[str, dict[str, Any]] = {"run": dataclasses.asdict(RunSettings())}
        for stage, params_type in params_types.items():
            defaults[stage] = {f.name: getattr(params_type(), f.name) for f in fields(params_type)}
        tables: dict[str, dict[str, Setting]] = {
            table: {key: Setting(value, "default") for key, value in values.items()}
            for table, values in defaults.items()
        }

        def like(table: str, key: str, where: str) -> Any:
            if table not in tables:
                raise ConfigError(f"{where}: unknown table [{table}]; known: {', '.join(sorted(tables))}")
            if key in tables[table]:
                return tables[table][key].value
            if table != "run" and key in ENGINE_KEYS:
                return ENGINE_KEYS[key]()  # int() -> 0: only its type matters
            known = sorted(set(tables[table]) | (set(ENGINE_KEYS) if table != "run" else set()))
            raise ConfigError(f"{where}: unknown key {key!r} in [{table}]; known: {', '.join(known)}")

        if config_file is not None:
            try:
                document = tomllib.loads(config_file.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"config file {config_file} does not exist") from None
            except tomllib.TOMLDecodeError as error:
                raise ConfigError(f"config file {config_file}: {error}") from None
            for table, values in document.items():
                if not isinstance(values, dict):
                    raise ConfigError(f"{config_file}: top-level key {table!r} must be a [table]")
                for key, raw in values.items():
                    where = f"{config_file} [{table}] {key}"
                    tables[table][key] = Setting(_coerce(raw, like(table, key, where), where), f"file {config_file}")

        for table in list(tables):
            keys = set(tables[table]) | (set(ENGINE_KEYS) if table != "run" else set())
            for key in keys:
                name = f"ETL_{table.upper()}_{key.upper()}"
                if name in environ:
                    tables[table][key] = Setting(_coerce(environ[name], like(table, key, name), name), f"env {name}")

        for dotted, raw in (cli or {}).items():
            table, _, key = dotted.partition(".")
            where = f"--set {dotted}"
            if not key:
                raise ConfigError(f"{where}: expected TABLE.KEY=VALUE")
            tables[table][key] = Setting(_coerce(raw, like(table, key, where), where), "cli")

        config = cls(tables, params_types)
        config.run  # validate early (e.g. workers >= 1)
        return config

    @property
    def run(self) -> RunSettings:
        values = {key: setting.value for key, setting in self._tables["run"].items()}
        settings = RunSettings(**values)
        if settings.workers < 1 or settings.batch_size < 1 or settings.max_attempts < 1:
            raise ConfigError("[run] workers, batch_size and max_attempts must be at least 1")
        if not settings.item_timeout_s > 0:
            raise ConfigError("[run] item_timeout_s must be more than 0 seconds")
        if settings.executor not in {"process", "inline"}:
            raise ConfigError(f"[run] executor must be 'process' or 'inline', not {settings.executor!r}")
        return settings

    def params(self, stage: str) -> Any:
        params_type = self._params_types[stage]
        names = {f.name for f in fields(params_type)}
        return params_type(**{k: s.value for k, s in self._tables[stage].items() if k in names})

    def engine(self, stage: str, key: str, default: Any) -> Any:
        """An engine key of a stage table (`workers`, `batch_size`, `item_timeout_s`), else `default`."""
        setting = self._tables[stage].get(key)
        value = default if setting is None else setting.value
        if ENGINE_KEYS.get(key) is float:
            if not value > 0:
                raise ConfigError(f"[{stage}] {key} must be more than 0")
        elif value < 1:
            raise ConfigError(f"[{stage}] {key} must be at least 1")
        return value

    def settings(self) -> dict[str, dict[str, Setting]]:
        """Every table's settings with their origin, for `etl config show`."""
        return {table: dict(sorted(values.items())) for table, values in self._tables.items()}
