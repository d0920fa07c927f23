"""`etl models`: every model-backed stage, the model it is configured to use, and whether it is here.

A stage declares `models=` (params -> one dict per model); this module only collects them, so
the classification, aesthetics, captions and MIDI stages join the list by declaring theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etl.app import registry
from etl.engine.config import Config
from etl.engine.stage import unreadable


def list_models(config: Config, checksums: bool = True) -> list[dict[str, Any]]:
    rows = []
    for stage in registry.all_stages():
        if stage.models is None:
            continue
        params = config.params(stage.name)
        reason = stage.why_unavailable(params)
        try:
            models = stage.models(params, checksums)
        except OSError as error:  # a model folder this user may not read: said, as a model not found is
            models = [{"model": "its model", "library": "cannot be read", "found": False,
                       "where": error.filename, "files": [], "licence": "", "problem": str(unreadable(error)),
                       "install": ""}]
        rows.extend({"stage": stage.name, **model, "stage_skipped_because": reason} for model in models)
    return rows


def catalog_files() -> list[Path]:
    """Every stage's part of the model catalog (its folder's models.toml), in registry order."""
    return [folder / "models.toml" for _name, folder in registry.folders() if (folder / "models.toml").is_file()]
