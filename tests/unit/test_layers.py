"""Layers that only point down (issue 26): a stage imports no other stage, and the shared signal
code (etl/dsp) imports no stage, no engine beyond its errors, no read side and no CLI.

Every import counts, wherever it is written: at the top, inside a function, under TYPE_CHECKING.
`from a.b import c` counts as importing `a.b.c` (c may be a module or a name in a.b: either way
it reaches into a.b). A failure lists each offending module, line and import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO


@dataclass(frozen=True)
class Layer:
    package: str                   # every module under it...
    forbidden: tuple[str, ...]     # ...imports nothing under these...
    allowed: tuple[str, ...] = ()  # ...except what is under these


# One row per layer; a rule for another layer is one more row.
LAYERS = [
    # etl/dsp raises the engine's errors (BadInput, ConfigError...) and returns its `Reason`,
    # both defined in etl/engine/errors.py; nothing else of the engine.
    Layer("etl.dsp", ("etl.stages", "etl.engine", "etl.read", "etl.app", "cli"), allowed=("etl.engine.errors",)),
    # The engine runs stages it is given (etl/app/registry.py finds them): it imports none of them,
    # nor anything above it.
    Layer("etl.engine", ("etl.stages", "etl.app", "etl.read", "cli")),
    # A stage stands on the engine and etl/dsp only (another stage: the rule below).
    Layer("etl.stages", ("etl.app", "etl.read", "cli")),
    # etl/read reads the store the application layer opens; the CLI is above both.
    Layer("etl.read", ("cli",)),
    Layer("etl.app", ("cli",)),
]

STAGES = "etl.stages"


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported name) for every import in a module's source, relative ones resolved."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if alias.name != "*" else base


def modules(package: str) -> Iterator[tuple[str, Path, list[tuple[int, str]]]]:
    """(module name, path, its imports) for every module under a package."""
    for path in sorted((REPO / package.replace(".", "/")).rglob("*.py")):
        name = module_name(path)
        yield name, path, list(imports(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"))


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO)}:{line}"


def test_no_stage_imports_another_stage() -> None:
    offences = []
    for module, path, found in modules(STAGES):
        parts = module.split(".")
        if len(parts) < 3:  # etl/stages/__init__.py: the package, no stage of its own
            continue
        own = f"{STAGES}.{parts[2]}"
        offences += [f"{where(path, line)}: {module} imports {name}" for line, name in found
                     if under(name, STAGES) and not under(name, own)]
    if offences:
        pytest.fail("a stage imports another stage (shared code belongs in etl/dsp):\n" + "\n".join(offences))


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.package)
def test_a_layer_imports_nothing_above_it(layer: Layer) -> None:
    offences = [f"{where(path, line)}: {module} imports {name}"
                for module, path, found in modules(layer.package) for line, name in found
                if any(under(name, p) for p in layer.forbidden) and not any(under(name, a) for a in layer.allowed)]
    if offences:
        allowed = f"; allowed: {', '.join(layer.allowed)}" if layer.allowed else ""
        pytest.fail(f"{layer.package} imports what it may not ({', '.join(layer.forbidden)}{allowed}):\n"
                    + "\n".join(offences))


def test_imports_inside_functions_and_relative_ones_are_seen() -> None:
    source = ("from . import sibling\nfrom ..beats import spectra\n"
              "def f():\n    import etl.read.query\n    from etl.stages.stems import separation\n")
    assert list(imports(source, "etl.stages.chords.convnet", False)) == [
        (1, "etl.stages.chords.sibling"), (2, "etl.stages.beats.spectra"), (4, "etl.read.query"),
        (5, "etl.stages.stems.separation")]
    assert [n for _, n in imports("from .x import y\n", "etl.dsp", True)] == ["etl.dsp.x.y"]
