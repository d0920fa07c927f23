"""Ingest throughput: the stage (scan, pool, commits) against a bare loop of the same calls.

    python bench/ingest.py [--copies 20] [--workers 1] [FOLDER ...]

The library is every audio file under the given folders (default: ../shared/corpus), copied
`--copies` times so that fixed costs (starting worker processes) are amortised as on a real
library. Both sides run in this process, on a warm page cache, with the same number of workers.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from etl.dsp import audio
from etl.engine import pipeline
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
    """Exactly the library calls the ingest worker makes: probe (with decode check) and hash."""
    info = audio.probe(path, 1.0)
    audio.sha256_file(path)
    return info.duration_s


def bare_loop(files: list[Path], workers: int) -> tuple[float, float]:
    started = time.perf_counter()
    if workers == 1:
        audio_s = sum(bare_one(str(f)) for f in files)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            audio_s = sum(pool.map(bare_one, [str(f) for f in files], chunksize=4))
    return time.perf_counter() - started, audio_s


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
        bare_s, audio_s = bare_loop(files, args.workers)
        stage_s = stage_run(library, args.workers, Path(tmp) / "bench.duckdb")
    n = len(files)
    print(f"ingest of {n} files, {size_mb:,.0f} MB, {audio_s / 60:,.1f} min of audio, {args.workers} worker(s):")
    for name, seconds in (("bare loop (probe + sha256)", bare_s), ("ingest stage (etl run)", stage_s)):
        print(f"  {name:<28} {seconds:6.2f} s  {n / seconds:8.1f} files/s  {audio_s / seconds:8.0f} s of audio/s")
    print(f"  stage / bare: {stage_s / bare_s:.2f}x")


if __name__ == "__main__":
    main()
