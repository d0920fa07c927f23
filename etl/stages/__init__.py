"""Stage registry: every module in this package that defines `STAGE` is a stage.

Order comes from the `needs` declarations (a topological sort), not from a central list.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from etl.engine.errors import ConfigError
from etl.engine.stage import Stage


@cache
def all_stages() -> tuple[Stage, ...]:
    found: dict[str, Stage] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        stage = getattr(module, "STAGE", None)
        if isinstance(stage, Stage):
            found[stage.name] = stage
    return tuple(order_stages(found))


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
