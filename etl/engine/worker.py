"""What every worker does when it starts, and what is known when one dies, whichever executor
runs it (the local pool, a Ray actor, the coordinator itself for the inline executor).

- It claims a numba cache folder of its own before anything compiles (etl/engine/numba_cache.py).
- It keeps `faulthandler` output in a file the executor reads when the worker dies: a segfault
  then reads "SIGSEGV in librosa.core.pitch.estimate_tuning", not "the worker died".
- It runs the stage's `init_worker` (models load once per worker) and keeps what that raised,
  as one line: a model that fails to load is the stage's error, said once with its real reason,
  not a crash blamed on every item in turn.
"""

from __future__ import annotations

import faulthandler
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from etl.engine import numba_cache
from etl.engine.errors import _location as location

_fault_file: Any = None  # kept open for the process's life: faulthandler writes to its descriptor


def start(init: Callable[[Any], None] | None, params: Any, fault_dir: str | None = None) -> str | None:
    """Prepare this process and run the stage's `init`; the reason it failed, or None."""
    numba_cache.claim()
    if fault_dir is not None:
        keep_faults(fault_dir)
    if init is None:
        return None
    try:
        init(params)
    except Exception as error:  # noqa: BLE001  (reported as the stage's error)
        return one_line(error)
    return None


def one_line(error: BaseException) -> str:
    """`Type: message` on one line, with the file and line the error came from."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}{location(error)}" if text else f"{type(error).__name__}{location(error)}"


def keep_faults(fault_dir: str) -> None:
    """Send this process's fatal-error report (signal, Python stack) to `<fault_dir>/<pid>.txt`."""
    global _fault_file
    _fault_file = open(Path(fault_dir) / f"{os.getpid()}.txt", "w")  # noqa: SIM115  (open for life)
    faulthandler.enable(file=_fault_file, all_threads=True)


# --- after a death ----------------------------------------------------------------------------

_FATAL = re.compile(r"Fatal Python error: (.+)")
_FRAME = re.compile(r'^\s+File "(.+)", line \d+ in (\S+)', re.MULTILINE)
_FAULT_SIGNALS = {"Segmentation fault": "SIGSEGV", "Aborted": "SIGABRT", "Bus error": "SIGBUS",
                  "Floating-point exception": "SIGFPE", "Illegal instruction": "SIGILL"}


def describe_death(fault_text: str, exitcode: int | None) -> str:
    """"SIGSEGV in librosa.core.pitch.estimate_tuning" from a worker's fault report and exit code."""
    what = None
    fatal = _FATAL.search(fault_text)
    if fatal is not None:
        what = _FAULT_SIGNALS.get(fatal.group(1).strip(), fatal.group(1).strip())
    elif exitcode is not None and exitcode < 0:
        try:
            what = signal.Signals(-exitcode).name
        except ValueError:
            what = f"signal {-exitcode}"
        if what == "SIGKILL":
            what = "SIGKILL (killed: out of memory?)"
    elif exitcode:
        what = f"exit code {exitcode}"
    # faulthandler lists the crashing thread first ("Current thread ..."), most recent call first.
    current = fault_text[fault_text.find("Current thread"):] if "Current thread" in fault_text else fault_text
    frame = _FRAME.search(current)
    where = f" in {python_name(frame.group(1), frame.group(2))}" if frame else ""
    return f"{what or 'died'}{where}"


def python_name(path: str, function: str) -> str:
    """`librosa.core.pitch.estimate_tuning` for a frame's file and function."""
    module = None
    for entry in sorted((p for p in sys.path if p), key=len, reverse=True):
        prefix = entry.rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            module = path[len(prefix):]
            break
    if module is None:
        module = os.path.basename(path)
    for suffix in (os.sep + "__init__.py", ".py"):
        if module.endswith(suffix):
            module = module[: -len(suffix)]
            break
    module = module.replace(os.sep, ".")
    return f"{module}.{function}"


def read_faults(fault_dir: str | None, pids: list[int]) -> dict[int, str]:
    """The non-empty fault reports of these worker processes."""
    found = {}
    for pid in pids:
        try:
            text = (Path(fault_dir) / f"{pid}.txt").read_text(errors="replace") if fault_dir else ""
        except OSError:
            continue
        if text.strip():
            found[pid] = text
    return found
