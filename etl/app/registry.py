"""Stage registry: every subpackage of etl/stages that defines `STAGE` is a stage, and so is every
subpackage of the packages named in `$MUSIC_ETL_STAGE_PACKAGES` (comma-separated dotted names: a
stage kept in a package of its own, see docs/adding-a-stage.md).

Order comes from the stages' `needs` and `reads` (a topological sort, ties by name), not from a
central list; everything assembled from the stages' folders (the views, the report's sections,
the model catalog) follows this order.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import pkgutil
from functools import cache
from pathlib import Path

from etl.engine.errors import ConfigError
from etl.engine.stage import Stage

STAGE_PACKAGES_ENV = "MUSIC_ETL_STAGE_PACKAGES"


def stage_packages() -> list[str]:
    """The packages whose subpackages are searched for stages: etl.stages, then the environment's."""
    extra = [name.strip() for name in os.environ.get(STAGE_PACKAGES_ENV, "").split(",") if name.strip()]
    return ["etl.stages", *extra]


@cache
def all_stages() -> tuple[Stage, ...]:
    found: dict[str, Stage] = {}
    for package_name in stage_packages():
        try:
            package = importlib.import_module(package_name)
        except ImportError as error:
            raise ConfigError(f"{STAGE_PACKAGES_ENV}: cannot import {package_name}: {error}") from None
        for module_info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package_name}.{module_info.name}")
            stage = getattr(module, "STAGE", None)
            if not isinstance(stage, Stage):
                continue
            if stage.name in found:
                raise ConfigError(f"two stages are named {stage.name!r} ({package_name}.{module_info.name} and another)")
            folder = Path(module.__file__).resolve().parent
            if stage.folder is not None and Path(stage.folder).resolve() != folder:
                raise ConfigError(f"stage {stage.name!r} is declared in {folder} but its folder is {stage.folder}: "
                                  f"pass folder=Path(__file__).parent to Stage(...)")
            found[stage.name] = stage
    return tuple(_resolve_reads(order_stages(found)))


def _resolve_reads(stages: list[Stage]) -> list[Stage]:
    """Tell each `Read` whether its upstream stage's items may share keys (the join it needs)."""
    shared = {s.name: s.shared_keys for s in stages}
    return [dataclasses.replace(s, reads=tuple(dataclasses.replace(r, shared=shared.get(r.stage)) for r in s.reads))
            if s.reads else s for s in stages]


def order_stages(stages: dict[str, Stage]) -> list[Stage]:
    """Dependencies first; stages with no order between them by name, so the order is stable."""
    ordered: list[Stage] = []
    placed: set[str] = set()
    remaining = dict(stages)
    while remaining:
        ready = sorted(name for name, s in remaining.items() if all(n in placed or n not in stages for n in s.upstream))
        if not ready:
            raise RuntimeError(f"stage dependency cycle among {sorted(remaining)}")
        for name in ready:
            ordered.append(remaining.pop(name))
            placed.add(name)
    return ordered


def stage_names() -> list[str]:
    return [s.name for s in all_stages()]


def stage(name: str) -> Stage:
    """The registered stage of that name (as the pipeline runs it: its reads resolved)."""
    return select([name])[0]


def select(names: list[str] | None) -> list[Stage]:
    stages = all_stages()
    if not names:
        return list(stages)
    known = {s.name for s in stages}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown stage {', '.join(unknown)}; stages are: {', '.join(s.name for s in stages)}")
    return [s for s in stages if s.name in names]


def params_types() -> dict[str, type]:
    return {s.name: s.Params for s in all_stages()}


def folders() -> list[tuple[str, Path]]:
    """(stage name, its folder), in registry order."""
    return [(s.name, Path(s.folder)) for s in all_stages()]


def stage_folders() -> list[Path]:
    """Every stage package's folder, found without importing any stage (sorted by path): what the
    readers' schema check needs, kept cheap so that `etl query` starts fast."""
    folders = []
    for package_name in stage_packages():
        spec = importlib.util.find_spec(package_name)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"{STAGE_PACKAGES_ENV}: cannot import {package_name}")
        for location in spec.submodule_search_locations:
            folders += [Path(location) / info.name for info in pkgutil.iter_modules([location]) if info.ispkg]
    return sorted(folders)
