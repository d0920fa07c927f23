"""numba's on-disk cache, one folder per process: no two processes ever write the same cache.

librosa (and the beats stage's compiled Viterbi) compile with `cache=True`. By default numba
writes that cache into the library's own `__pycache__`, shared by every process of the install,
and two processes compiling the same function at once can mix their files (numba issue 10128,
librosa issue 1998): from then on every process that loads them segfaults, on every store, until
the files are deleted. So every process of ours that may compile (each pool worker, a Ray actor,
the coordinator running the inline executor, the test process) first claims a cache folder of
its own and points `NUMBA_CACHE_DIR` at it:

- folders `<root>/p0`, `p1`, ... are claimed with a non-blocking `flock` held for the process's
  life (the kernel releases it when the process dies, however it dies), so a folder has one
  writer at a time, also across concurrent runs and programs of ours on the machine; the next
  process to claim it reuses what was compiled (a warm cache costs milliseconds);
- a folder is marked in use while claimed and unmarked when its process exits cleanly. A folder
  found marked was left by a process that crashed or was killed: its contents are not trusted
  (a crash may have come from them) and are removed, so the cache is rebuilt;
- the root is `$MUSIC_ETL_NUMBA_CACHE_DIR`, else `$NUMBA_CACHE_DIR` (a user's choice of place), else
  `~/.cache/music-etl/numba`; a subfolder per numba and Python version keeps builds apart. The
  library's `__pycache__` is never read, so a cache broken there by an earlier version or by
  another program cannot crash a run.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import sys
from pathlib import Path

_IN_USE = ".in-use"  # present while a process holds the folder; left behind by a crash
_LOCK = ".lock"
_claimed: Path | None = None
_lock_fd: int | None = None


def root() -> Path:
    explicit = os.environ.get("MUSIC_ETL_NUMBA_CACHE_DIR") or os.environ.get("NUMBA_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path("~/.cache/music-etl/numba").expanduser()


def _versioned(base: Path) -> Path:
    try:
        from importlib.metadata import version

        numba = version("numba")
    except Exception:  # noqa: BLE001  (numba absent: nothing will compile, the folder stays empty)
        numba = "none"
    return base / f"numba-{numba}-py{sys.version_info[0]}{sys.version_info[1]}"


def claimed() -> Path | None:
    """The folder this process claimed, if any."""
    return _claimed


def claim() -> Path:
    """Claim a cache folder for this process (once; later calls return the same folder) and point
    numba at it. Call before anything compiles; a numba imported earlier is re-configured."""
    global _claimed, _lock_fd
    if _claimed is not None:
        return _claimed
    # Children (pool workers) inherit the root, not this process's own folder.
    os.environ["MUSIC_ETL_NUMBA_CACHE_DIR"] = str(root())
    base = _versioned(root())
    base.mkdir(parents=True, exist_ok=True)
    index = 0
    while True:
        folder = base / f"p{index}"
        folder.mkdir(exist_ok=True)
        fd = os.open(folder / _LOCK, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            index += 1
            continue
        break
    if (folder / _IN_USE).exists():
        _empty(folder)  # its last process died holding it: rebuilt, not trusted
    (folder / _IN_USE).write_text(str(os.getpid()))
    _claimed, _lock_fd = folder, fd
    cache = folder / "cache"
    os.environ["NUMBA_CACHE_DIR"] = str(cache)
    _reconfigure_numba()
    atexit.register(release)
    return folder


def release() -> None:
    """A clean exit: the folder's contents are sound. (Pool workers call it from their own exit
    path, which skips atexit.)"""
    global _claimed, _lock_fd
    if _claimed is None or _lock_fd is None:
        return
    try:
        (_claimed / _IN_USE).unlink(missing_ok=True)
    finally:
        os.close(_lock_fd)
        _claimed, _lock_fd = None, None


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.name == _LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _reconfigure_numba() -> None:
    """numba reads NUMBA_CACHE_DIR when it is imported and each cached function picks its cache
    folder when it is defined: re-read the variable for functions defined from now on."""
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.reload_config()
