"""Chords throughput: the chords stage against a bare loop of the same library calls.

    python bench/transcription_chords.py [--crops 6] [--repeats 2] [--chord-model cnn] [FOLDER ...]

`bench_chords()` is meant to be folded into bench/transcription.py beside the midi stage's figures.
FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. Ingest, beats and
crops run first (untimed, 8-bar crops). Then, with one worker, the chords stage on the first --crops
crops, and a bare loop doing the same work with the same calls: decode the crop with soundfile, mix
to mono, resample to 44.1 kHz (scipy, etl.dsp.audio), madmom's chord processors (CNN features + CRF,
or deep chroma + CRF) and its CNN key processor, the processors built once. Both sides start cold the
same way (a fresh one-process spawn pool, timed from its start to its shutdown, so madmom's imports
and network loading count on both). What the stage pays on top: the too-quiet meter, placing the
segments on the beat grid, the coordinator's claims and DuckDB commits. Each repeat runs the bare
loop, then the stage on a fresh copy of the prepared database; medians are reported, as seconds of
audio per second (wall and CPU).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import duckdb
from features import stage_run
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


def bare_worker(paths: list[str], chord_model: str) -> dict[str, float]:
    """In the fresh process: madmom's processors built once, then every crop through them."""
    from etl.dsp import audio

    spent = dict.fromkeys(["imports", "decode", "chords", "key"], 0.0)
    mark = time.perf_counter()
    from madmom.audio.signal import Signal
    from madmom.features.key import CNNKeyRecognitionProcessor

    if chord_model == "cnn":
        from madmom.features.chords import (
            CNNChordFeatureProcessor,
            CRFChordRecognitionProcessor,
        )

        features, decode = CNNChordFeatureProcessor(), CRFChordRecognitionProcessor()
    else:
        from madmom.audio.chroma import DeepChromaProcessor
        from madmom.features.chords import DeepChromaChordRecognitionProcessor

        features, decode = DeepChromaProcessor(), DeepChromaChordRecognitionProcessor()
    key = CNNKeyRecognitionProcessor()
    spent["imports"] = time.perf_counter() - mark
    for path in paths:
        mark = time.perf_counter()
        with audio.open_audio(path) as handle:
            block, rate = audio.read_block(handle), handle.samplerate
        signal = Signal(audio.resample(block.mean(axis=1), rate, 44100), sample_rate=44100, num_channels=1)
        spent["decode"] += time.perf_counter() - mark
        mark = time.perf_counter()
        decode(features(signal))
        spent["chords"] += time.perf_counter() - mark
        mark = time.perf_counter()
        key(signal)
        spent["key"] += time.perf_counter() - mark
    return spent


def bare_run(paths: list[str], chord_model: str) -> tuple[Timed, dict[str, float]]:
    with Timed() as timed, ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        spent = pool.submit(bare_worker, paths, chord_model).result()
    return timed, spent


def prepare(folders: list[Path], tmp: Path, count: int) -> tuple[Path, list[str], float]:
    """Ingest, beats and crops (untimed); the first `count` crops, in the order the stage takes them
    (by crop id), and their seconds of audio."""
    library = link_library(audio_files(folders), tmp / "library")
    db = tmp / "prepared.duckdb"
    pipeline.run(db, pipeline.load_config(None), stage_names=["ingest", "beats", "crops"], sources=[library],
                 options=RunOptions(run_id="prepare"))
    with duckdb.connect(str(db), read_only=True) as con:
        chosen = con.execute("SELECT artifact_path(path), duration_s FROM crops ORDER BY crop_id LIMIT ?",
                             [count]).fetchall()
    return db, [path for path, _ in chosen], sum(seconds for _, seconds in chosen)


def bench_chords(folders: list[Path], crops: int = 6, repeats: int = 2, chord_model: str = "cnn") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prepared, paths, audio_s = prepare(folders, Path(tmp), crops)
        bare, stage, spent = side_by_side(
            repeats, lambda: bare_run(paths, chord_model),
            lambda repeat: stage_run(prepared, Path(tmp) / f"run{repeat}.duckdb", len(paths), "chords",
                                     {"chords.chord_model": chord_model}))
    summary(f"chords ({chord_model})", ("bare loop (same madmom calls):", "chords stage (etl run):"), bare, stage,
            spent, len(paths), audio_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--crops", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chord-model", default="cnn", choices=["cnn", "deepchroma"])
    args = parser.parse_args()
    bench_chords(args.folders or default_folders(), args.crops, args.repeats, args.chord_model)


if __name__ == "__main__":
    main()
