"""Crop cutting throughput: the crops stage against a bare loop of the same soundfile calls.

    python bench/crops.py [FOLDER ...]

FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. Ingest
and beats run first (untimed). Then, with one worker, the crops stage (8-bar beat-aligned FLAC
crops) and a bare loop that cuts exactly the same spans: open each track once, read span after
span, fade, write FLAC under a temporary name, hash it and rename it after its content (as the
stage's artifacts do), after the same leading-silence scan the stage makes per track. Like the
stage's spawn worker, the bare loop runs in a fresh process timed from before its imports.
Seconds of audio per second are of the source audio covered by crops.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import soundfile as sf
from library import audio_files, default_folders, link_library

from etl.app import pipeline
from etl.engine.runner import RunOptions
from etl.stages.crops import Params, fade, first_sound


def spans_of(db: Path) -> list[tuple[str, str, int, int]]:
    con = duckdb.connect(str(db), read_only=True)
    spans = con.execute("SELECT p.path, c.crop_id, c.start_sample, c.end_sample FROM crops c "
                        "JOIN track_paths_v p USING (track_id) ORDER BY p.path, c.start_sample").fetchall()
    con.close()
    return spans


def bare_loop(spans: list[tuple[str, str, int, int]], out: Path) -> None:
    params = Params()
    handle, current = None, None
    for path, crop_id, start, end in spans:
        if path != current:
            if handle is not None:
                handle.close()
            first_sound(path, params.silence_dbfs)
            handle, current = sf.SoundFile(path), path
        handle.seek(start)
        block = fade(handle.read(end - start, dtype="float32", always_2d=True), handle.samplerate, params.fade_ms)
        temporary = out / f".{crop_id}.flac.tmp-{os.getpid()}"
        sf.write(temporary, block, handle.samplerate, format="FLAC", subtype="PCM_16",
                 compression_level=params.compression_level)
        with open(temporary, "rb") as written:
            digest = hashlib.file_digest(written, "sha256").hexdigest()
        os.replace(temporary, out / f"{crop_id}-{digest[:12]}.flac")
    if handle is not None:
        handle.close()


def fresh_bare_loop(db: Path, out: Path) -> float:
    """`bare_loop` in a new interpreter, timed (by the child) from before its imports."""
    code = ("import time; t = time.perf_counter(); import sys; sys.path.insert(0, 'bench'); import crops; "
            f"crops.bare_loop(crops.spans_of(__import__('pathlib').Path({str(db)!r})), "
            f"__import__('pathlib').Path({str(out)!r})); print(time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        library = link_library(audio_files(args.folders or default_folders()), Path(tmp) / "library")
        db = Path(tmp) / "bench.duckdb"
        config = pipeline.load_config(None)
        pipeline.run(db, config, stage_names=["ingest", "beats"], sources=[library], options=RunOptions(run_id="a"))
        started = time.perf_counter()
        [report] = pipeline.run(db, config, stage_names=["crops"], options=RunOptions(run_id="c", workers=1))
        stage_s = time.perf_counter() - started
        con = duckdb.connect(str(db), read_only=True)
        crops, audio_s = con.execute("SELECT count(*), sum(duration_s) FROM crops").fetchone()
        con.close()
        out = Path(tmp) / "bare"
        out.mkdir()
        bare_s = fresh_bare_loop(db, out)
    print(f"crops: {report.done} tracks -> {crops} crops covering {audio_s / 60:.1f} min of audio, one worker:")
    print(f"  bare loop (fresh process; scan, seek, read, fade, write, hash, rename): {bare_s:6.2f} s  {audio_s / bare_s:7.1f} s of audio/s  "
          f"{crops / bare_s:6.1f} crops/s")
    print(f"  crops stage (etl run --stage crops):      {stage_s:6.2f} s  {audio_s / stage_s:7.1f} s of audio/s  "
          f"{crops / stage_s:6.1f} crops/s")
    print(f"  stage / bare: {stage_s / bare_s:.2f}x")


if __name__ == "__main__":
    main()
