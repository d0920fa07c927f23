"""Ingest throughput: the stage (scan, pool, commits) against a bare loop of the same calls.

    python bench/ingest.py [--copies 20] [--workers 1] [FOLDER ...]

It also sets the two ways of naming a file side by side over the same library: today's whole-file
sha256 (`audio.sha256_file`) and `identity.identify` (audio-only digest + whole-file digest + sample
hash, one streaming read), each alone and each beside the probe as the ingest worker would call it,
in wall-clock and in CPU seconds (which hold on a machine that others are loading).

The library is every audio file under the given folders (default: ../shared/corpus), copied
`--copies` times so that fixed costs (starting worker processes) are amortised as on a real
library. Both sides run in this process, on a warm page cache, with the same number of workers.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from etl.dsp import audio, identity
from etl.app import pipeline
from etl.engine.runner import RunOptions

REPO = Path(__file__).resolve().parents[1]
AUDIO = {".wav", ".flac", ".ogg", ".mp3"}


def build_library(folders: list[Path], copies: int, dest: Path) -> list[Path]:
    originals = sorted(p for folder in folders for p in folder.rglob("*") if p.suffix.lower() in AUDIO)
    files = []
    for copy in range(copies):
        for i, original in enumerate(originals):
            target = dest / f"copy{copy:02d}" / f"{i:03d}{original.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, target)
            files.append(target)
    return files


def bare_one(path: str) -> float:
    """Exactly the library calls the ingest worker makes: probe (with decode check) and identify."""
    info = audio.probe(path, 1.0)
    identity.identify(path)
    return info.duration_s


def bare_one_sha256(path: str) -> float:
    """The same with a whole-file sha256 in place of `identify` (what ingest did before issue 11)."""
    info = audio.probe(path, 1.0)
    audio.sha256_file(path)
    return info.duration_s


def hash_one(path: str) -> float:
    audio.sha256_file(path)
    return 0.0


def identify_one(path: str) -> float:
    identity.identify(path)
    return 0.0


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (pool workers once joined): a figure
    that holds on a machine others are loading, where wall-clock figures do not."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                    resource.getrusage(resource.RUSAGE_CHILDREN)))


def bare_loop(files: list[Path], workers: int, one: Callable[[str], float] = bare_one) -> tuple[float, float]:
    started = time.perf_counter()
    if workers == 1:
        audio_s = sum(one(str(f)) for f in files)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            audio_s = sum(pool.map(one, [str(f) for f in files], chunksize=4))
    return time.perf_counter() - started, audio_s


def hash_loop(files: list[Path], workers: int, one: Callable[[str], float]) -> tuple[float, float]:
    """(wall s, CPU s) of one pass."""
    cpu = cpu_s()
    wall, _ = bare_loop(files, workers, one)
    return wall, cpu_s() - cpu


def methods(files: list[Path]) -> str:
    counts = Counter(identity.identify(str(f)).method for f in files)
    return ", ".join(f"{method} {count}" for method, count in counts.most_common())


def stage_run(library: Path, workers: int, db: Path) -> float:
    config = pipeline.load_config(None)
    started = time.perf_counter()
    [report] = pipeline.run(db, config, stage_names=["ingest"], sources=[library],
                            options=RunOptions(run_id="bench", workers=workers))
    elapsed = time.perf_counter() - started
    assert report.failed == 0, report
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[REPO.parent / "shared" / "corpus"])
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "library"
        files = build_library(args.folders, args.copies, library)
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        bare_loop(files[: len(files) // args.copies], 1)  # warm the page cache and the decoders
        timings = {name: hash_loop(files, args.workers, one) for name, one in (
            ("whole-file sha256", hash_one), ("identity.identify", identify_one),
            ("probe + sha256", bare_one_sha256), ("probe + identify", bare_one))}
        bare_s, audio_s = bare_loop(files, args.workers)
        cpu = cpu_s()
        stage_s = stage_run(library, args.workers, Path(tmp) / "bench.duckdb")
        stage_cpu = cpu_s() - cpu
        used = methods(files[: len(files) // args.copies])
    n = len(files)
    print(f"ingest of {n} files, {size_mb:,.0f} MB, {audio_s / 60:,.1f} min of audio, {args.workers} worker(s):")
    for name, seconds in (("bare loop (probe + identify)", bare_s), ("ingest stage (etl run)", stage_s)):
        print(f"  {name:<28} {seconds:6.2f} s  {n / seconds:8.1f} files/s  {audio_s / seconds:8.0f} s of audio/s")
    print(f"  stage / bare: {stage_s / bare_s:.2f}x")
    print(f"naming a file, warm cache, same library ({used} per copy):")
    for name, (wall, cpu) in timings.items():
        print(f"  {name:<28} {wall:6.2f} s  {n / wall:8.1f} files/s  {size_mb / wall:6.0f} MB/s"
              f"   CPU {cpu:6.2f} s  {n / cpu:8.1f} files per CPU-s")
    (sha_wall, sha_cpu), (id_wall, id_cpu) = timings["whole-file sha256"], timings["identity.identify"]
    print(f"  identify / sha256: {id_wall / sha_wall:.2f}x wall, {id_cpu / sha_cpu:.2f}x CPU")
    # The stage's own overhead (scan, pool, commits) is the same whichever digest its worker takes:
    # add what identify costs beyond sha256 in the bare loop.
    extra_wall = timings["probe + identify"][0] - timings["probe + sha256"][0]
    extra_cpu = timings["probe + identify"][1] - timings["probe + sha256"][1]
    print(f"  ingest stage with identify, projected: {n / (stage_s + extra_wall):.1f} files/s wall; "
          f"{n / (stage_cpu + extra_cpu) * args.workers:.1f} files/s on {args.workers} idle core(s) "
          f"(stage CPU {stage_cpu:.2f} s + {extra_cpu:.2f} s)")

if __name__ == "__main__":
    main()
