"""Feature extraction throughput: the features stage against a bare loop of the same calls.

    python bench/features.py [--crops 60] [FOLDER ...]

FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. Ingest,
beats and crops run first (untimed, 8-bar crops). Then, with one worker, the features stage on
the first --crops crops, and a bare loop calling the same extractors on the same crops in this
process, timing each group so the dominant extractor shows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from etl import features, pipeline
from etl.engine import RunOptions
from library import audio_files, default_folders, link_library


def bare_loop(crops: list[tuple[str, float | None]]) -> tuple[float, dict[str, float]]:
    groups = {
        "decode": None,
        "loudness": lambda s, bpm: features.loudness(s),
        "spectral": lambda s, bpm: features.spectral(s),
        "tonal": lambda s, bpm: features.tonal(s),
        "rhythm": lambda s, bpm: features.rhythm(s, bpm),
        "series": lambda s, bpm: features.series(s, 256),  # shares the loudness group's EBU R128 meter
    }
    spent = dict.fromkeys(groups, 0.0)
    started = time.perf_counter()
    for path, bpm in crops:
        mark = time.perf_counter()
        signal = features.read(path)
        spent["decode"] += time.perf_counter() - mark
        for name, extract in groups.items():
            if extract is not None:
                mark = time.perf_counter()
                extract(signal, bpm)
                spent[name] += time.perf_counter() - mark
    return time.perf_counter() - started, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--crops", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        library = link_library(audio_files(args.folders or default_folders()), Path(tmp) / "library")
        db = Path(tmp) / "bench.duckdb"
        config = pipeline.load_config(None)
        pipeline.run(db, config, stage_names=["ingest", "beats", "crops"], sources=[library],
                     options=RunOptions(run_id="prepare"))
        con = duckdb.connect(str(db), read_only=True)
        chosen = con.execute("SELECT c.crop_id, c.path, b.bpm, c.duration_s FROM crops c "
                             "LEFT JOIN beat_grids b USING (track_id) ORDER BY c.crop_id LIMIT ?",
                             [args.crops]).fetchall()
        con.close()
        audio_s = sum(row[3] for row in chosen)
        warm = features.read(chosen[0][1])  # first calls compile librosa's numba code and load essentia
        features.tonal(warm), features.rhythm(warm, None), features.spectral(warm)
        bare_s, spent = bare_loop([(path, bpm) for _, path, bpm, _ in chosen])
        started = time.perf_counter()
        [report] = pipeline.run(db, config, stage_names=["features"],
                                options=RunOptions(run_id="features", workers=1, limit=len(chosen)))
        stage_s = time.perf_counter() - started
    n = len(chosen)
    print(f"features on {n} crops, {audio_s / 60:.1f} min of audio, one worker:")
    print(f"  bare loop (same extractors):  {bare_s:6.1f} s  {n / bare_s:5.2f} crops/s  {audio_s / bare_s:6.1f}x realtime")
    print(f"  features stage (etl run):     {stage_s:6.1f} s  {n / stage_s:5.2f} crops/s  {audio_s / stage_s:6.1f}x realtime"
          f"  ({report.done} done)")
    print(f"  stage / bare: {stage_s / bare_s:.2f}x")
    print("  time per group in the bare loop: " + ", ".join(
        f"{name} {seconds / bare_s:.0%} ({audio_s / seconds:.0f}x realtime)" for name, seconds in
        sorted(spent.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
