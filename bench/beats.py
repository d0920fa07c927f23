"""Beat tracking throughput: the beats stage against bare loops of the same calls.

    python bench/beats.py [--long-minutes 60] [--tracks N] [FOLDER ...]

FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. Every side
runs in a fresh process with one worker and is timed from before its imports, so loading madmom
and its 8 downbeat networks is inside the timer on both sides (the stage's spawn worker pays it
too). Each decodes each track once with soundfile, downmixes, resamples to 44.1 kHz where needed
and runs a downbeat RNN + DBN (one network pass gives beats and downbeats). Two comparisons:
  - the stage (network = "batched") against a bare loop of the same batched ensemble
    (etl/stages/beats/beatnet.py): what the stage's bookkeeping costs;
  - the batched ensemble against madmom's own RNNDownBeatProcessor, both bare: what batching gains.
The naive pair (separate beat and downbeat networks) is timed too, for reference. With
--long-minutes, the peak memory of tracking one track that long is measured in a fresh process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from library import REPO, audio_files, default_folders, link_library


def tracks(folders: list[Path], min_s: float = 20.0) -> list[Path]:
    import soundfile as sf

    found = []
    for path in audio_files(folders):
        try:
            if sf.info(path).duration >= min_s:
                found.append(path)
        except RuntimeError:
            pass
    return found


def bare_loop(paths: list[Path], network_kind: str = "madmom", naive: bool = False) -> tuple[float, float]:
    """In this process, timed from before the imports: `network_kind` "madmom" (madmom's own
    RNNDownBeatProcessor) or "batched" (the stage's ensemble, etl/stages/beats/beatnet.py)."""
    started = time.perf_counter()
    import soundfile as sf
    from madmom.audio.signal import Signal
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
    from madmom.features.downbeats import (
        DBNDownBeatTrackingProcessor,
        RNNDownBeatProcessor,
    )

    from etl.dsp.audio import resample
    from etl.stages.beats import Params
    from etl.stages.beats.beatnet import downbeat_processor

    params = Params()  # the stage's tracker settings
    network = downbeat_processor() if network_kind == "batched" else RNNDownBeatProcessor()
    tracker = DBNDownBeatTrackingProcessor(beats_per_bar=list(params.meters), min_bpm=params.min_bpm,
                                           max_bpm=params.max_bpm, transition_lambda=params.transition_lambda,
                                           fps=100)
    if naive:
        beat_network, beat_tracker = RNNBeatProcessor(), DBNBeatTrackingProcessor(fps=100)
    audio_s = 0.0
    for path in paths:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        audio_s += len(data) / rate
        signal = Signal(resample(data.mean(axis=1), rate, 44100), sample_rate=44100, num_channels=1)
        tracker(network(signal))
        if naive:
            beat_tracker(beat_network(signal))
    return time.perf_counter() - started, audio_s


def fresh_bare_loop(paths: list[Path], network_kind: str, naive: bool = False) -> tuple[float, float]:
    """`bare_loop` in a new interpreter (nothing imported or loaded yet, like a stage worker)."""
    command = [sys.executable, __file__, "--bare", network_kind, *(["--naive"] if naive else []), *map(str, paths)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    seconds, audio_s = out.stdout.split()[-2:]
    return float(seconds), float(audio_s)


def stage_run(folder: Path, db: Path) -> float:
    from etl.engine import pipeline
    from etl.engine.runner import RunOptions

    config = pipeline.load_config(None, {"beats.network": "batched"})
    pipeline.run(db, config, stage_names=["ingest"], sources=[folder], options=RunOptions(run_id="i"))
    started = time.perf_counter()
    [report] = pipeline.run(db, config, stage_names=["beats"], options=RunOptions(run_id="b", workers=1))
    elapsed = time.perf_counter() - started
    assert report.failed == 0, report
    return elapsed


def long_track_memory(minutes: float, sources: list[Path]) -> None:
    """Peak RSS of one process tracking a `minutes`-long track (made by repeating real tracks)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.flac"
        with sf.SoundFile(path, "w", 44100, 1, format="FLAC") as out:
            written = 0
            while written < minutes * 60 * 44100:
                for source in sources:
                    data, rate = sf.read(source, dtype="float32", always_2d=True)
                    if rate == 44100:
                        out.write(data.mean(axis=1))
                        written += len(data)
        code = (
            "import resource, time; from etl.stages import beats; p = beats.Params(); beats.init_worker(p)\n"
            f"t = time.perf_counter(); g = beats.find_beats({str(path)!r}, {written / 44100}, 44100, p)\n"
            "print(len(g.beat_times_s), time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
        beats_found, seconds, peak_kb = out.stdout.split()
        print(f"  {minutes:.0f}-minute track: {int(beats_found):,} beats in {float(seconds):.0f} s, "
              f"peak memory {int(peak_kb) / 1024:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--long-minutes", type=float, default=0)
    parser.add_argument("--naive", action="store_true", help="also time the separate beat + downbeat networks")
    parser.add_argument("--tracks", type=int, default=0, help="use only the first N tracks (0: all)")
    parser.add_argument("--bare", choices=("madmom", "batched"), help=argparse.SUPPRESS)  # a child's loop
    args = parser.parse_args()
    if args.bare:
        seconds, audio_s = bare_loop(args.folders, args.bare, args.naive)
        print(seconds, audio_s)
        return
    folders = args.folders or default_folders()
    paths = tracks(folders)[:args.tracks or None]
    with tempfile.TemporaryDirectory() as tmp:
        library = link_library(paths, Path(tmp) / "library")
        batched_s, audio_s = fresh_bare_loop(paths, "batched")
        madmom_s, _ = fresh_bare_loop(paths, "madmom")
        stage_s = stage_run(library, Path(tmp) / "bench.duckdb")
    print(f"beats on {len(paths)} tracks, {audio_s / 60:.1f} min of audio, one worker, each side in a fresh "
          "process with imports and model loading inside its timer:")
    print(f"  beats stage (batched ensemble):           {stage_s:7.1f} s  {audio_s / stage_s:6.1f}x realtime")
    print(f"  bare loop, the same batched ensemble:     {batched_s:7.1f} s  {audio_s / batched_s:6.1f}x realtime")
    print(f"  bare loop, madmom's RNNDownBeatProcessor: {madmom_s:7.1f} s  {audio_s / madmom_s:6.1f}x realtime")
    print(f"  stage / bare batched loop: {stage_s / batched_s:.2f}x (the stage's own cost);  "
          f"madmom's processors / batched: {madmom_s / batched_s:.2f}x (what batching gains)")
    if args.naive:
        naive_s, _ = fresh_bare_loop(paths, "madmom", naive=True)
        print(f"  naive pair (beat RNN+DBN, downbeat RNN+DBN): {audio_s / naive_s:.1f}x realtime")
    if args.long_minutes:
        long_track_memory(args.long_minutes, paths)


if __name__ == "__main__":
    main()
