"""The real music the stage benchmarks run on, as a folder of links in a temporary directory."""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIO = {".wav", ".flac", ".ogg", ".mp3"}


def default_folders() -> list[Path]:
    """data/demo-music (fetched by `make demo`) where present, else ../shared/corpus."""
    demo = REPO / "data" / "demo-music"
    return [demo] if demo.is_dir() else [REPO.parent / "shared" / "corpus"]


def audio_files(folders: list[Path]) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*") if p.suffix.lower() in AUDIO)


def link_library(paths: list[Path], dest: Path) -> Path:
    """One flat folder of symlinks (numbered, so names never collide) to the given files."""
    dest.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(paths):
        (dest / f"{index:03d}{path.suffix}").symlink_to(path.resolve())
    return dest


def stage_at(ref: str, stage: str, dest: Path) -> Path:
    """etl/stages/<stage> as at commit `ref`, written to `dest`/<stage>_today (its imports of its own
    package rewritten), so that version runs beside this checkout's with the same engine; returns
    `dest`, the folder to put on the path."""
    package = dest / f"{stage}_today"
    package.mkdir(parents=True, exist_ok=True)
    listed = subprocess.run(["git", "ls-tree", "--name-only", ref, f"etl/stages/{stage}/"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        text = subprocess.run(["git", "show", f"{ref}:{name}"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout
        (package / Path(name).name).write_text(re.sub(rf"\betl\.stages\.{stage}\b", f"{stage}_today", text))
    return dest


# --- sides in fresh processes, one maths thread each, best of alternating rounds (bench/beats.py, chords.py)

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_side(script: str, side: str, paths: list[Path], today: Path | None = None) -> dict:
    """`script --side SIDE PATHS...` in a fresh interpreter with one maths thread (and `today`, the
    folder of a stage_at package, on the path); its figures come back as JSON on its last line."""
    env = {**os.environ, **SINGLE_THREAD,
           "PYTHONPATH": os.pathsep.join([str(REPO), *([str(today)] if today else []), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, script, "--side", side, *map(str, paths)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def stage_side(module_name: str, items: list[dict], warm: Callable[[Any, Any], object]) -> dict:
    """One stage side in this process, one maths thread: the stage's worker model loaded, `warm(module,
    params)` (first calls, caches), then every item through its `process`, timed."""
    import importlib

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    module = importlib.import_module(module_name)
    params = module.Params()
    module.init_worker(params)
    warm(module, params)
    cpu, wall = time.process_time(), time.perf_counter()
    for item in items:
        module.process(item, params)
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
            "audio_s": sum(item["duration_s"] for item in items)}


def best_of_rounds(rounds: int, sides: dict[str, str], run: Callable[[str], dict], title: str) -> dict[str, dict]:
    """Run the sides (name -> label) in alternating rounds (A B C A B C ...), keep each side's round
    with the least CPU time, and print them with their speed relative to each other: the first side is
    this branch, the second today's stage, the third the bare library loop."""
    best: dict[str, dict] = {}
    for _ in range(rounds):
        for side in sides:
            result = run(side)
            if side not in best or result["cpu_s"] < best[side]["cpu_s"]:
                best[side] = result
    (new, new_label), (today, _), (bare, _) = sides.items()
    audio_s = best[new]["audio_s"]
    print(f"{title}, {audio_s / 60:.1f} min of audio, one process and one maths thread per side, warm, best of "
          f"{rounds} alternating round(s):")
    for side, label in sides.items():
        figures = best[side]
        print(f"  {label:30s} {figures['cpu_s']:7.1f} CPU s {audio_s / figures['cpu_s']:7.1f}x realtime per core"
              f"   ({figures['wall_s']:.1f} s wall)")
    cpu = {side: best[side]["cpu_s"] for side in sides}
    print(f"  this branch / today: {cpu[today] / cpu[new]:.2f}x;  this branch / bare: {cpu[bare] / cpu[new]:.2f}x;  "
          f"today / bare: {cpu[bare] / cpu[today]:.2f}x (per core)")
    return best


# --- timing a stage against its bare loop (bench/features.py, bench/transcription.py) ---------------

def cpu_seconds() -> float:
    """User + system time of this process and of its finished (reaped) children."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


class Timed:
    """Wall and CPU seconds of a block (children count once they have exited)."""

    def __enter__(self) -> Timed:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, cpu_seconds() - self.cpu


def line(label: str, runs: list[Timed], audio_s: float, count: int | None = None) -> str:
    """Median wall and CPU seconds of runs over `audio_s` seconds of audio (and `count` crops)."""
    wall, cpu = statistics.median(t.wall for t in runs), statistics.median(t.cpu for t in runs)
    rate = f"{count / wall:5.2f} crops/s  " if count else ""
    return (f"  {label:30s} {wall:6.1f} s  {rate}{audio_s / wall:6.1f}x realtime"
            f"  | CPU {cpu:6.1f} s  {audio_s / cpu:6.1f}x realtime per core")


def ratios(stage: list[Timed], bare: list[Timed], what: str) -> str:
    per_repeat = [getattr(s, what) / getattr(b, what) for s, b in zip(stage, bare)]
    return f"{statistics.median(per_repeat):.2f}x (" + ", ".join(f"{r:.2f}" for r in per_repeat) + ")"


def side_by_side(repeats: int, bare: Callable[[], tuple[Timed, dict[str, float]]],
                 stage: Callable[[int], Timed]) -> tuple[list[Timed], list[Timed], dict[str, float]]:
    """Each repeat runs the bare loop, then the stage (given the repeat's number); both are printed.
    Returns both sides' timings and the last bare loop's time per part."""
    bare_runs, stage_runs, spent = [], [], {}
    for repeat in range(repeats):
        bare_t, spent = bare()
        stage_t = stage(repeat)
        bare_runs.append(bare_t), stage_runs.append(stage_t)
        print(f"  repeat {repeat + 1}: bare {bare_t.wall:.1f} s (CPU {bare_t.cpu:.1f} s), stage "
              f"{stage_t.wall:.1f} s (CPU {stage_t.cpu:.1f} s), load average {os.getloadavg()[0]:.1f}",
              flush=True)
    return bare_runs, stage_runs, spent


def summary(title: str, labels: tuple[str, str], bare: list[Timed], stage: list[Timed], spent: dict[str, float],
            count: int, audio_s: float) -> None:
    """Both sides' medians, their ratio per repeat, and where the last bare loop spent its time."""
    print(f"{title} on {count} crops, {audio_s / 60:.1f} min of audio, one worker, both from a fresh process, "
          f"median of {len(bare)}:")
    print(line(labels[0], bare, audio_s, count))
    print(line(labels[1], stage, audio_s, count))
    print(f"  stage / bare, wall: {ratios(stage, bare, 'wall')}; CPU: {ratios(stage, bare, 'cpu')}")
    print("  time per part in the last bare loop: " + ", ".join(
        f"{name} {seconds / sum(spent.values()):.0%} ("
        + (f"{seconds:.1f} s" if name == "imports" else f"{audio_s / seconds:.1f}x realtime") + ")"
        for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1])))
