"""Transcription throughput: each symbolic stage against a bare loop of the same library calls.

    python bench/transcription.py [--stage midi ...] [--crops 20] [--repeats 3] [FOLDER ...]

FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. Ingest, beats
and crops run first (untimed, 8-bar crops, no stems: each crop is one item, its mix). Then, per
stage asked (a function per stage in STAGES), with one worker: the stage on the first --crops crops
(`etl run --stage NAME`, from a fresh copy of the prepared database), and a bare loop calling the
library the way its documentation does on the same crop files, with the model loaded once.

Both sides start cold, the same way: the bare loop runs in a fresh one-process spawn pool (as the
stage's pool starts its worker) and is timed from starting that pool until it has shut down, so it
pays the same interpreter start, imports and model load; both use one onnxruntime thread. CPU time
(this process and its children) is reported beside wall time: audio seconds per CPU second is
"x realtime per core", the figure that survives a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import duckdb
from library import Timed, audio_files, default_folders, line, link_library, ratios

from etl.app import pipeline
from etl.engine.runner import RunOptions

# --- midi: basic-pitch -----------------------------------------------------------------------------

def midi_bare(paths: list[str]) -> int:
    """basic-pitch's documented batch use: the model loaded once, `predict` per file with its
    defaults, the MIDI it returns written to a file. One onnxruntime thread, as the stage's worker."""
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # basic-pitch warns per absent backend on import
    import contextlib
    import io

    import onnxruntime as ort
    from basic_pitch import ICASSP_2022_MODEL_PATH
    from basic_pitch.inference import Model, predict

    model = Model(ICASSP_2022_MODEL_PATH)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    model.model = ort.InferenceSession(str(ICASSP_2022_MODEL_PATH), options, providers=["CPUExecutionProvider"])
    notes = 0
    with tempfile.TemporaryDirectory() as out:
        for index, path in enumerate(paths):
            with contextlib.redirect_stdout(io.StringIO()):  # predict prints a line per file
                _, midi_data, events = predict(path, model)
            midi_data.write(os.path.join(out, f"{index}.mid"))
            notes += len(events)
    return notes


def midi(prepared: Path, tmp: Path, paths: list[str], count: int) -> tuple[Timed, Timed]:
    with Timed() as bare, ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        pool.submit(midi_bare, paths).result()
    db = tmp / "midi.duckdb"
    shutil.copyfile(prepared, db)
    with Timed() as stage:
        [report] = pipeline.run(db, pipeline.load_config(None), stage_names=["midi"],
                                options=RunOptions(run_id="midi", workers=1, limit=count))
    assert report.done == count, f"{report.done} of {count} items done ({report.failed} failed)"
    with duckdb.connect(str(db)) as con:  # the same crops as the bare loop's
        done = {path for (path,) in con.execute("SELECT artifact_path(c.path) FROM crop_midi JOIN crops AS c "
                                                "USING (crop_id)").fetchall()}
    assert done == set(paths), "the stage transcribed other crops than the bare loop"
    return bare, stage


STAGES: dict[str, Callable[[Path, Path, list[str], int], tuple[Timed, Timed]]] = {"midi": midi}


# --- shared ----------------------------------------------------------------------------------------

def prepare(folders: list[Path], tmp: Path, count: int) -> tuple[Path, list[str], float]:
    """Ingest, beats and crops (untimed); the crop files the stages' first `count` items read, in
    their order (the runner claims items by id), and their seconds of audio."""
    library = link_library(audio_files(folders), tmp / "library")
    db = tmp / "prepared.duckdb"
    pipeline.run(db, pipeline.load_config(None), stage_names=["ingest", "beats", "crops"], sources=[library],
                 options=RunOptions(run_id="prepare"))
    with duckdb.connect(str(db)) as con:
        chosen = con.execute("SELECT artifact_path(path), duration_s FROM crops ORDER BY crop_id LIMIT ?",
                             [count]).fetchall()
    return db, [path for path, _ in chosen], sum(seconds for _, seconds in chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--stage", action="append", choices=sorted(STAGES), help="default: every stage")
    parser.add_argument("--crops", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prepared, paths, audio_s = prepare(args.folders or default_folders(), Path(tmp), args.crops)
        for name in args.stage or sorted(STAGES):
            bare, stage = [], []
            for repeat in range(args.repeats):
                b, s = STAGES[name](prepared, Path(tmp), paths, len(paths))
                bare.append(b), stage.append(s)
                print(f"  {name} repeat {repeat + 1}: bare {b.wall:.1f} s (CPU {b.cpu:.1f} s), stage {s.wall:.1f} s "
                      f"(CPU {s.cpu:.1f} s), load average {os.getloadavg()[0]:.1f}", flush=True)
            print(f"{name} on {len(paths)} crops, {audio_s / 60:.1f} min of audio, one worker, both from a fresh "
                  f"process, median of {args.repeats}:")
            print(line("bare loop (same library):", bare, audio_s))
            print(line(f"{name} stage (etl run):", stage, audio_s))
            print(f"  stage / bare, wall: {ratios(stage, bare, 'wall')}; CPU: {ratios(stage, bare, 'cpu')}")


if __name__ == "__main__":
    main()
