"""The real music the stage benchmarks run on, as a folder of links in a temporary directory."""

from __future__ import annotations

import resource
import statistics
import time
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
