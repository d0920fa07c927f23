"""Each process compiles into a numba cache folder of its own; a folder a crash left is rebuilt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

CLAIM = "from etl.engine import numba_cache; import os, sys; print(numba_cache.claim()); print(os.environ['NUMBA_CACHE_DIR'])"


def claim_in_child(root: Path, then: str = "", **env: str) -> subprocess.Popen:
    code = CLAIM + "; sys.stdout.flush(); " + (then or "pass")
    environ = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "MUSIC_ETL_NUMBA_CACHE_DIR")}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**environ, "MUSIC_ETL_NUMBA_CACHE_DIR": str(root), **env})


def test_concurrent_processes_get_folders_of_their_own(tmp_path: Path) -> None:
    # each child holds its folder until told to go (it reads stdin)
    children = [claim_in_child(tmp_path, "import time; time.sleep(3)") for _ in range(3)]
    folders = [child.stdout.readline().strip() for child in children]
    caches = [child.stdout.readline().strip() for child in children]
    for child in children:
        child.wait(timeout=30)
    assert len(set(folders)) == 3
    assert all(cache == str(Path(folder) / "cache") for folder, cache in zip(folders, caches))
    assert all(Path(folder).parent.parent == tmp_path for folder in folders)


def test_a_folder_is_reused_after_a_clean_exit_and_emptied_after_a_crash(tmp_path: Path) -> None:
    first = claim_in_child(tmp_path)
    folder = Path(first.stdout.readline().strip())
    first.wait(timeout=30)
    (folder / "cache").mkdir()
    (folder / "cache" / "compiled.nbc").write_text("warm")
    again = claim_in_child(tmp_path, "import os; os.abort()")  # claims it, then crashes
    assert Path(again.stdout.readline().strip()) == folder
    again.wait(timeout=30)
    assert (folder / "cache" / "compiled.nbc").exists()  # a clean exit before: reused, warm
    (folder / "cache" / "suspect.nbc").write_text("written by a process that then crashed")
    after = claim_in_child(tmp_path)
    assert Path(after.stdout.readline().strip()) == folder
    after.wait(timeout=30)
    assert not (folder / "cache").exists()  # not trusted: rebuilt


def test_a_users_numba_cache_dir_is_the_root(tmp_path: Path) -> None:
    child = claim_in_child(tmp_path / "unused", NUMBA_CACHE_DIR=str(tmp_path / "mine"), MUSIC_ETL_NUMBA_CACHE_DIR="")
    folder = Path(child.stdout.readline().strip())
    child.wait(timeout=30)
    assert folder.parent.parent == tmp_path / "mine"


def test_pool_workers_compile_librosa_into_folders_of_their_own() -> None:
    """Not into librosa's own __pycache__, which a race (or another program) may have broken."""
    from etl.engine.pool import ProcessExecutor

    executor = ProcessExecutor(_librosa_cache, None, workers=2)
    try:
        futures = [executor.submit([{"item_id": str(i)}]) for i in range(8)]
        paths = {tuple(o.result) for f in futures for o in f.result(timeout=120)}
    finally:
        executor.shutdown()
    assert len({own for own, _, _ in paths}) == 2  # two workers, two folders
    for own, cache_path, install in paths:
        assert cache_path.startswith(own + os.sep) and not cache_path.startswith(install)


def _librosa_cache(item: dict, params: object) -> tuple[str, str, str]:
    """(this worker's cache folder, where librosa's compiled `__count_unique` is cached, librosa's install)."""
    import time

    import librosa.util.utils

    time.sleep(0.2)  # both workers take items
    return (os.environ["NUMBA_CACHE_DIR"], librosa.util.utils.__count_unique._cache._cache_path,
            os.path.dirname(librosa.__file__))


def test_no_stage_module_imports_numba_before_a_worker_claims_its_folder() -> None:
    """A worker imports its stage's module (unpickling its functions) before it claims a folder:
    a cached function defined then would be cached where the coordinator's is."""
    code = ("import sys; from etl.app import registry; registry.all_stages(); "
            "print(sorted(m for m in ('numba', 'librosa', 'resampy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
