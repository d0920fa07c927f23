"""Effective settings: CLI > environment > config file > defaults, each value with its origin.

The file is TOML: `[run]` for global settings and one table per stage holding that stage's
parameters plus the engine keys every stage has (`workers`, `batch_size`, `item_timeout_s`). Environment variables
are `ETL_<TABLE>_<KEY>` (e.g. `ETL_CROPS_SECONDS=10`, `ETL_RUN_WORKERS=2`). Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from etl.engine.errors import ConfigError


def ranged(default: Any, low: float | None, high: float | None, *, also: tuple[Any, ...] = (),
           hashed: bool = True, min_items: int = 0) -> Any:
    """A numeric setting with its allowed range `low`..`high` (inclusive; None: unbounded), plus
    special values `also` (e.g. 0 = "the source's rate"). Checked when the configuration is read
    (`check_range`), so a bad value is refused before any work with the range in the message. For a
    tuple setting the range applies to each element, and it needs `min_items` of them (an empty list
    of choices would otherwise reach the workers)."""
    return field(default=default, metadata={"hash": hashed, "range": (low, high), "also": tuple(also),
                                            "min_items": min_items})


def not_hashed(default: Any, **kwargs: Any) -> Any:
    """A stage parameter that does not change results (so does not invalidate them)."""
    return field(default=default, metadata={"hash": False}, **kwargs)


def added_later(default: Any) -> Any:
    """A stage parameter added after stores were filled: hashed only when set to another value than
    `default`, so adding it to the code re-queues nothing, and setting it re-queues what it changes."""
    return field(default=default, metadata={"hash": "unless_default"})


def allowed_range(spec: dataclasses.Field) -> str | None:
    """'8000 to 384000, or 0' for a field declared with `ranged`; None for one without a range."""
    if "range" not in spec.metadata:
        return None
    low, high = spec.metadata["range"]
    if low is None and high is None:
        text = "any number"
    elif high is None:
        text = f"{low:g} or more"
    elif low is None:
        text = f"{high:g} or less"
    else:
        text = f"{low:g} to {high:g}"
    also = spec.metadata.get("also", ())
    return text + (f", or {' or '.join(f'{v:g}' for v in also)}" if also else "")


def check_range(spec: dataclasses.Field, value: Any, where: str) -> None:
    """Raise ConfigError naming `where` (e.g. "crops.sample_rate = 1 (file etl.toml)") and the allowed
    range when `value` (or an element of a tuple value) lies outside the field's declared range."""
    if "range" not in spec.metadata:
        return
    low, high = spec.metadata["range"]
    also = spec.metadata.get("also", ())
    needed = spec.metadata.get("min_items", 0)
    if isinstance(value, (list, tuple)) and len(value) < needed:
        raise ConfigError(f"{where}: needs at least {needed} value{'s' if needed > 1 else ''}; "
                          f"allowed: {allowed_range(spec)} each")
    for element in value if isinstance(value, (list, tuple)) else (value,):
        if element in also:
            continue
        if element != element or (low is not None and element < low) or (high is not None and element > high):
            raise ConfigError(f"{where}: out of range; allowed: {allowed_range(spec)}")


@dataclass(frozen=True)
class RunSettings:
    workers: int = ranged(max(1, os.cpu_count() or 1), 1, 4096)
    batch_size: int = ranged(200, 1, 1_000_000)        # items per claim / commit transaction
    commit_interval_s: float = ranged(2.0, 0, 86400)   # commit finished work at least this often
    max_attempts: int = ranged(3, 1, 1000)             # a failed item is retried until it has failed this often
    data_dir: str = "etl-data"       # artifacts (stems, crops, MIDI); relative to the database's folder
    executor: str = "process"        # process (a spawn pool) | inline (in the coordinator, for debugging) | ray
    ray_address: str = ""            # a Ray cluster's address; "": $RAY_ADDRESS, else a local cluster
    # An item still running after this long is failed, its worker killed.
    item_timeout_s: float = ranged(600.0, 0.001, 7 * 86400)
    # A file gone from a reachable source folder keeps its track (and crops, stems...) this long, out
    # of the views: moved back, or found elsewhere in the library, nothing is recomputed. `etl gc`
    # then forgets it and removes what hangs off it.
    missing_grace_days: float = ranged(30.0, 0, 36500)


# Keys every stage table accepts besides its parameters; they change how, not what, is computed,
# so they are not part of the params hash.
ENGINE_KEYS: dict[str, type] = {"workers": int, "batch_size": int, "item_timeout_s": float, "executor": str,
                                # per actor on Ray (see etl/engine/ray_pool.py); 0 GPUs / 0 MB: none asked
                                "ray_num_cpus": float, "ray_num_gpus": float, "ray_memory_mb": float}
EXECUTORS = ("process", "inline", "ray")


@dataclass(frozen=True)
class Setting:
    value: Any
    origin: str  # "default", "file <path>", "env ETL_X_Y", "cli"


def params_hash(params: Any) -> str:
    """Stable hash of a stage's result-affecting parameters."""
    hashed = {f.name: getattr(params, f.name) for f in fields(params) if f.metadata.get("hash", True)
              and not (f.metadata.get("hash") == "unless_default" and getattr(params, f.name) == f.default)}
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
                items = tuple(text)
            elif str(text).strip().startswith("["):
                items = tuple(json.loads(str(text).strip()))
            else:
                items = tuple(part.strip() for part in str(text).split(",") if part.strip())
            # Elements of the default's kind ("3,4" from the command line are the numbers 3 and 4);
            # a default with none (an empty list) says nothing of its elements: kept as given.
            return tuple(_coerce(item, like[0], where) for item in items) if like else items
        if like is None or isinstance(like, str):
            return str(text)
    except (ValueError, TypeError, json.JSONDecodeError):
        pass
    raise ConfigError(f"{where}: expected {type(like).__name__}, got {text!r}")


# ETL_* variables that are not settings: the CLI's own, the model catalog's and the test suite's.
OTHER_ENV = frozenset({"ETL_DB", "ETL_CONFIG", "ETL_TEST_CORPUS", "ETL_TEST_MARK",
                       "ETL_MODELS_DIR", "ETL_MODEL_CATALOG"})  # etl/engine/catalog.py


# A settings file is a few kilobytes: more than this is not one (`--config /dev/zero` read forever).
MAX_CONFIG_BYTES = 1 << 20


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or a one-line ConfigError naming it and what is wrong."""
    try:
        if path.is_dir():
            raise ConfigError(f"cannot read config file {path}: it is a folder")
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"cannot read config file {path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; "
                              "is it a TOML settings file?")
        text = data.decode("utf-8-sig")  # a byte order mark (some Windows editors write one) is not TOML
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"cannot read config file {path}: not UTF-8 text (byte {error.start}); "
                          "is it a TOML file?") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: {error}") from None


def _unknown_environment(environ: Mapping[str, str], known: set[str]) -> list[str]:
    """A warning for each ETL_* variable that names no setting, with the closest one."""
    warnings = []
    for name in sorted(environ):
        if not name.startswith("ETL_") or name in known or name in OTHER_ENV:
            continue
        close = difflib.get_close_matches(name, sorted(known | OTHER_ENV), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else " (settings are ETL_<TABLE>_<KEY>, e.g. ETL_CROPS_SECONDS)"
        warnings.append(f"environment variable {name} is not a setting and is ignored{hint}")
    return warnings


def _origin_text(origin: str) -> str:
    return "--set" if origin == "cli" else origin


class Config:
    """Resolved settings for [run] and every stage table."""

    def __init__(self, tables: dict[str, dict[str, Setting]], params_types: Mapping[str, type],
                 warnings: list[str] | None = None) -> None:
        self._tables = tables
        self._params_types = params_types
        # Things worth telling the user that do not stop a run (a misspelled ETL_* variable).
        self.warnings: list[str] = warnings or []

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
            document = _read_toml(config_file)
            for table, values in document.items():
                if not isinstance(values, dict):
                    raise ConfigError(f"{config_file}: top-level key {table!r} must be a [table]")
                for key, raw in values.items():
                    where = f"{config_file} [{table}] {key}"
                    tables[table][key] = Setting(_coerce(raw, like(table, key, where), where), f"file {config_file}")

        known_env: set[str] = set()
        for table in list(tables):
            keys = set(tables[table]) | (set(ENGINE_KEYS) if table != "run" else set())
            for key in keys:
                name = f"ETL_{table.upper()}_{key.upper()}"
                known_env.add(name)
                if name in environ:
                    tables[table][key] = Setting(_coerce(environ[name], like(table, key, name), name), f"env {name}")
        warnings = _unknown_environment(environ, known_env)

        for dotted, raw in (cli or {}).items():
            table, _, key = dotted.partition(".")
            where = f"--set {dotted}"
            if not key:
                raise ConfigError(f"{where}: expected TABLE.KEY=VALUE")
            tables[table][key] = Setting(_coerce(raw, like(table, key, where), where), "cli")

        config = cls(tables, params_types, warnings)
        config._check()
        return config

    def _check(self) -> None:
        """Every setting within its declared range, every stage's Params constructible (their own
        checks: formats, modes, pairs of settings): a bad value is refused now, not at run time."""
        for table, params_type in (("run", RunSettings), *self._params_types.items()):
            for spec in fields(params_type):
                setting = self._tables[table].get(spec.name)
                if setting is not None:
                    where = f"{table}.{spec.name} = {json.dumps(setting.value)} ({_origin_text(setting.origin)})"
                    check_range(spec, setting.value, where)
        self.run  # noqa: B018  (its cross-checks: executor)
        for stage in self._params_types:
            self.params(stage)

    @property
    def run(self) -> RunSettings:
        values = {key: setting.value for key, setting in self._tables["run"].items()}
        settings = RunSettings(**values)
        if settings.workers < 1 or settings.batch_size < 1 or settings.max_attempts < 1:
            raise ConfigError("[run] workers, batch_size and max_attempts must be at least 1")
        if not settings.item_timeout_s > 0:
            raise ConfigError("[run] item_timeout_s must be more than 0 seconds")
        if settings.executor not in EXECUTORS:
            raise ConfigError(f"[run] executor must be one of {', '.join(EXECUTORS)}, not {settings.executor!r}")
        return settings

    def params(self, stage: str) -> Any:
        params_type = self._params_types[stage]
        names = {f.name for f in fields(params_type)}
        return params_type(**{k: s.value for k, s in self._tables[stage].items() if k in names})

    def engine(self, stage: str, key: str, default: Any) -> Any:
        """An engine key of a stage table (`workers`, `executor`, ...: ENGINE_KEYS), else `default`."""
        setting = self._tables[stage].get(key)
        value = default if setting is None else setting.value
        if key == "executor":
            if value not in EXECUTORS:
                raise ConfigError(f"[{stage}] executor must be one of {', '.join(EXECUTORS)}, not {value!r}")
        elif key.startswith("ray_"):
            if not value >= 0:
                raise ConfigError(f"[{stage}] {key} must be 0 or more")
        elif ENGINE_KEYS.get(key) is float:
            if not value > 0:
                raise ConfigError(f"[{stage}] {key} must be more than 0")
        elif value < 1:
            raise ConfigError(f"[{stage}] {key} must be at least 1")
        return value

    def settings(self) -> dict[str, dict[str, Setting]]:
        """Every table's settings with their origin, for `etl config show`."""
        return {table: dict(sorted(values.items())) for table, values in self._tables.items()}
