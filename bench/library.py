"""The real music the stage benchmarks run on, as a folder of links in a temporary directory."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable
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
