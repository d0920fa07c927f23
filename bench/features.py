"""Feature extraction throughput: the features stage against a bare loop of the same calls.

    python bench/features.py [--crops 60] [--repeats 3] [FOLDER ...]

FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. Ingest,
beats and crops run first (untimed, 8-bar crops). Then, with one worker, the features stage on
the first --crops crops, and a bare loop calling the same extractors with the same parameters on
the same crops, timing each group so the dominant extractor shows.

Both sides start cold, the same way: the bare loop runs in a fresh one-process spawn pool (as
etl/engine/pool.py starts the stage's worker) and is timed from starting that pool until it has shut
down, so it pays the same interpreter start, library imports (essentia loads TensorFlow) and
first calls as the stage's worker. What the stage pays on top is the coordinator: selecting the
pending crops, handing them to the worker, committing results to DuckDB. Each repeat runs the
bare loop, then the stage on a fresh copy of the prepared database; medians are reported.

Wall time depends on what else the machine runs, so each side's CPU time (this process and its
worker, user + system) is reported too: audio seconds per CPU second is "x realtime per core".
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import duckdb
from library import (
    Timed,
    audio_files,
    default_folders,
    link_library,
    side_by_side,
    summary,
)

from etl.app import pipeline
from etl.engine.runner import RunOptions
from etl.stages.features import Params, init_worker
from etl.stages.features import extractors as features

Crop = tuple[str, float | None]


def bare_worker(crops: list[Crop]) -> dict[str, float]:
    """In the fresh process: the stage worker's imports, then every group on every crop."""
    params = Params()
    groups = {
        "loudness": lambda s, bpm: features.loudness(s),
        "spectral": lambda s, bpm: features.spectral(s, params.n_mfcc),
        "tonal": lambda s, bpm: features.tonal(s),
        "rhythm": lambda s, bpm: features.rhythm(s, bpm, params.bpm_agree_tolerance, params.rhythm_method),
        "series": lambda s, bpm: features.series(s, params.series_steps),  # shares loudness's EBU R128 meter
    }
    spent = dict.fromkeys(["imports", "decode", *groups], 0.0)
    mark = time.perf_counter()
    init_worker(params)  # the stage worker's set-up: imports, one math-library thread
    spent["imports"] = time.perf_counter() - mark
    for path, bpm in crops:
        mark = time.perf_counter()
        signal = features.read(path)
        spent["decode"] += time.perf_counter() - mark
        for name, extract in groups.items():
            mark = time.perf_counter()
            extract(signal, bpm)
            spent[name] += time.perf_counter() - mark
    return spent


def bare_run(crops: list[Crop]) -> tuple[Timed, dict[str, float]]:
    with Timed() as timed, ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        spent = pool.submit(bare_worker, crops).result()
    return timed, spent


def stage_run(prepared: Path, db: Path, count: int, stage: str = "features",
              settings: dict[str, str] | None = None) -> Timed:
    """One worker of `stage` on the first `count` crops of a fresh copy of the prepared database."""
    shutil.copyfile(prepared, db)
    config = pipeline.load_config(None, settings or {})
    with Timed() as timed:
        [report] = pipeline.run(db, config, stage_names=[stage],
                                options=RunOptions(run_id=stage, workers=1, limit=count))
    assert report.done == count, f"{report.done} of {count} crops done"
    return timed


def prepare(folders: list[Path], tmp: Path, count: int) -> tuple[Path, list[Crop], float]:
    """Ingest, beats and crops (untimed); the first `count` crops and their seconds of audio."""
    library = link_library(audio_files(folders), tmp / "library")
    db = tmp / "prepared.duckdb"
    pipeline.run(db, pipeline.load_config(None), stage_names=["ingest", "beats", "crops"], sources=[library],
                 options=RunOptions(run_id="prepare"))
    con = duckdb.connect(str(db), read_only=True)
    chosen = con.execute("SELECT c.path, b.bpm, c.duration_s FROM crops c "
                         "LEFT JOIN beat_grids b USING (track_id) ORDER BY c.crop_id LIMIT ?", [count]).fetchall()
    con.close()
    return db, [(path, bpm) for path, bpm, _ in chosen], sum(row[2] for row in chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--crops", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prepared, crops, audio_s = prepare(args.folders or default_folders(), Path(tmp), args.crops)
        bare, stage, spent = side_by_side(
            args.repeats, lambda: bare_run(crops),
            lambda repeat: stage_run(prepared, Path(tmp) / f"run{repeat}.duckdb", len(crops)))
    summary("features", ("bare loop (same extractors):", "features stage (etl run):"), bare, stage, spent,
            len(crops), audio_s)


if __name__ == "__main__":
    main()
