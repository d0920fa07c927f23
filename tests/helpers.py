"""Shared test helpers: the real-music corpus, synthetic audio, running the CLI."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("ETL_TEST_CORPUS", REPO.parent / "shared" / "corpus"))


def skip_unless_ci(reason: str) -> None:
    """Skip on a developer's machine; in CI (CI=true) a missing corpus, model or tool fails the run."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must run this test)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # also from a test module's top (`require`)


def require(module: str) -> Any:
    """Import a module the test (or test module) needs: skipped without it locally, a failure in CI."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        skip_unless_ci(f"{module} is not installed")


def corpus(*parts: str) -> Path:
    """A file of ../shared/corpus, or skip the test with a clear reason where it is absent (fail in CI)."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        skip_unless_ci(f"real-music corpus not found at {path} (set ETL_TEST_CORPUS to its folder)")
    return path


def copy_corpus(dest: Path, *relative: str) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for rel in relative:
        src = corpus(*rel.split("/"))
        target = dest / src.name
        shutil.copyfile(src, target)
        copied.append(target)
    return copied


def write_tone(path: Path, seconds: float = 1.0, freq_hz: float = 440.0, sample_rate: int = 22050,
               channels: int = 1, fmt: str | None = None, subtype: str | None = None) -> Path:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    signal = 0.3 * np.sin(2 * np.pi * freq_hz * t)
    data = np.repeat(signal[:, None], channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sample_rate, format=fmt, subtype=subtype)
    return path


# Root reads any file regardless of its mode; without these capabilities it is refused like a user.
WITHOUT_FILE_OVERRIDES = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                          "--bounding-set=-dac_override,-dac_read_search"]


@contextmanager
def folder_with_mode(folder: Path, mode: int) -> Iterator[Path]:
    """A new folder with this mode (0o555: read-only, 0: not to be entered) for the block, then
    0o755 again (so the test's files can be removed)."""
    folder.mkdir(parents=True)
    folder.chmod(mode)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def refuse_listing(monkeypatch: pytest.MonkeyPatch, *folders: Path | str) -> None:
    """`os.scandir` of these folders fails as it does for a user without read permission (root
    lists any folder whatever its mode)."""
    real = os.scandir
    refused = {os.fspath(f) for f in folders}

    def scandir(path: Any = ".") -> Any:
        if os.fspath(path) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


@contextmanager
def small_disk(folder: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `folder` (a full disk on demand); skipped (failed in CI) where mounting is not
    allowed (not root, no CAP_SYS_ADMIN in a container). Unmounted on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        skip_unless_ci("no `mount` command: cannot make a small disk to fill")
    if mounted.returncode != 0:
        skip_unless_ci(f"cannot mount a {size} tmpfs to fill (needs root / CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def etl_command(*args: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "cli.main", "--db", str(db), *args]


# `etl run`'s exit status when items failed in the run (it went on past them).
ITEMS_FAILED = 3


def etl(*args: str, db: Path, timeout: float = 300, env: dict[str, str] | None = None,
        check: bool = False, prefix: list[str] | None = None, ok: tuple[int, ...] = (0,),
        **kwargs) -> subprocess.CompletedProcess:
    """Run the real `etl` entry point in a subprocess (as a user would); `check`: fail unless it exits
    with one of `ok` (add ITEMS_FAILED where the input holds files that fail)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    result = subprocess.run(
        [*(prefix or []), *etl_command(*args, db=db)],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=kwargs.pop("cwd", REPO), **kwargs,
    )
    if check and result.returncode not in ok:
        raise AssertionError(f"etl {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def run_stages(db: Path, src: Path, stages: list[str], **settings: Any) -> list:
    """Run stages in-process (the inline executor) with `--set`-style settings."""
    from etl.app import pipeline
    from etl.engine.runner import RunOptions

    config = pipeline.load_config(None, {"run.executor": "inline", **settings})
    return pipeline.run(db, config, stage_names=stages, sources=[src],
                        options=RunOptions(run_id=uuid.uuid4().hex[:12], executor="inline"))


def rows(db: Path, sql: str) -> list[dict[str, Any]]:
    """Query results as dicts, over a read-only connection."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        result = con.execute(sql)
        names = [d[0] for d in result.description]
        return [dict(zip(names, r)) for r in result.fetchall()]
    finally:
        con.close()


def source_of(path: Path | str) -> dict[str, Any]:
    """The `path` and `source` of a work item for a worker run by hand (what ingest records)."""
    from etl.dsp import sourcefile

    return {"path": str(path), "source": sourcefile.describe(str(path))}


def crops(db: Path, where: str = "true") -> list[dict[str, Any]]:
    """Rows of crops_v (a read-only look at a store), in crop order."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(f"SELECT * FROM crops_v WHERE {where} ORDER BY track_id, crop_index").pl().to_dicts()
