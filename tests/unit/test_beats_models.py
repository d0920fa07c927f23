"""The beats stage finds madmom's models without importing madmom (so `etl status` starts fast)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

import pytest

from etl.stages import beats
from tests.helpers import skip_unless_ci


def test_unavailable_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "madmom" else real_find_spec(name, *a))
    assert "pip install ./shims/madmom" in beats.unavailable(beats.Params())
    assert beats.models(beats.Params(), checksums=False)[0]["found"] is False


def test_found_models_without_importing_madmom(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("madmom") is None:
        skip_unless_ci("madmom is installed by `make test` (shims/madmom)")
    monkeypatch.delitem(sys.modules, "madmom", raising=False)
    assert beats.unavailable(beats.Params()) is None
    assert len(beats.downbeat_model_files()) == 8
    assert "madmom" not in sys.modules

    def no_shim(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", no_shim)
    assert "shim" in beats.unavailable(beats.Params())
