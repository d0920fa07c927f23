"""Beat tracking throughput: the beats stage against today's stage and against bare madmom.

    python bench/beats.py [--tracks N] [--rounds R] [--long-minutes 60] [--agreement] [FOLDER ...]

FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. Like for
like, side by side in one run:
  - "stage": the beats stage's worker function (`beats.process`: decode, resample, network, DBN,
    summary) as on this branch;
  - "today": the same function before these changes (etl/stages/beats from `git show 05b43ca:`,
    main before issue 19, imported as a separate package; --today-ref picks another commit);
  - "bare madmom": a loop of madmom's own calls (RNNDownBeatProcessor, DBNDownBeatTrackingProcessor)
    over the same 60 s segments with the same 10 s margins on both sides.
Each side runs in its own fresh process with one maths-library thread (OMP_NUM_THREADS=1 and
threadpoolctl), loads its models and decodes a first stretch of audio before the clock starts
(warm: imports, model loading and numba's compile-cache load are outside every timer), then
processes every track once. Rounds alternate the sides (A B C A B C ...) and each side's best
round counts, which evens out a machine shared with other work. CPU seconds of the process are
reported beside wall seconds: on a loaded machine CPU time is the steadier per-core figure.
--agreement compares the beat grids: today's and this branch's, and both against one whole-track
pass (network and DBN over the whole track, no segments: what madmom gives with unbounded memory).
--dbn times the DBN per meter (madmom's Viterbi and the compiled one) on 80 s of real activations.
--long-minutes measures the peak memory (RSS) of one process tracking a track that long (real
tracks concatenated), for this branch and for today's stage, and lists the segments whose beat
counts differ (with each side's tempo and the tracks there); --cause decodes the one that differs
most from this branch's activations and from the segment's audio alone (issue 28.1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from library import (
    SINGLE_THREAD,
    REPO,
    audio_files,
    best_of_rounds,
    default_folders,
    run_side,
    stage_at,
    stage_side,
)

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


TODAY = "05b43ca"  # main before issue 19 (beats at twice the speed): the stage these changes are measured against


def today_package(dest: Path, ref: str = TODAY) -> Path:
    """etl/stages/beats as at commit `ref`, as the package beats_today (bench/library.py)."""
    return stage_at(ref, "beats", dest)


def item_of(path: Path) -> dict:
    import soundfile as sf

    from etl.dsp import sourcefile

    info = sf.info(path)
    return {"item_id": path.name, "path": str(path), "source": sourcefile.describe(str(path)), "duration_s": info.duration,
            "sample_rate": info.samplerate}


def side_stage(module_name: str, paths: list[Path]) -> dict:
    """One stage side in this process: warm, then every track through `process`."""
    items = [item_of(path) for path in paths]
    return stage_side(module_name, items, lambda module, params: module.find_beats(  # warm: first calls, caches
        str(paths[0]), 15.0, items[0]["sample_rate"], params))


def side_madmom(paths: list[Path]) -> dict:
    """Bare madmom over the stage's segments (60 s kept, 10 s margins on both sides)."""
    import numpy as np
    from madmom.audio.signal import Signal
    from madmom.features.downbeats import (
        DBNDownBeatTrackingProcessor,
        RNNDownBeatProcessor,
    )
    from threadpoolctl import threadpool_limits

    from etl.dsp import audio
    from etl.stages.beats import Params, _segments

    threadpool_limits(1)
    params = Params()
    network = RNNDownBeatProcessor()
    tracker = DBNDownBeatTrackingProcessor(beats_per_bar=list(params.meters), min_bpm=params.min_bpm,
                                           max_bpm=params.max_bpm, transition_lambda=params.transition_lambda,
                                           fps=100)

    def track(path: Path, duration_s: float) -> None:
        for keep_start, keep_end in _segments(duration_s, params.segment_s):
            start, end = max(0.0, keep_start - params.margin_s), min(duration_s, keep_end + params.margin_s)
            rate = item_rates[path]
            mono, _ = audio.read_mono(str(path), int(start * rate), int(np.ceil((end - start) * rate)))
            tracker(network(Signal(audio.resample(mono, rate, 44100), sample_rate=44100, num_channels=1)))

    import soundfile as sf

    item_rates = {path: sf.info(path).samplerate for path in paths}
    durations = {path: sf.info(path).duration for path in paths}
    track(paths[0], 15.0)  # warm
    cpu, wall = time.process_time(), time.perf_counter()
    for path in paths:
        track(path, durations[path])
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
            "audio_s": sum(durations.values())}


def agreement(paths: list[Path]) -> None:
    """Beat F-measure (mir_eval, 70 ms) between today's grids, this branch's and a whole-track pass."""
    import beats_today
    import mir_eval
    import numpy as np
    import soundfile as sf

    from etl.dsp import audio
    from etl.stages import beats

    def f(a: list[float], b: list[float]) -> float:
        return mir_eval.beat.f_measure(np.asarray(a), np.asarray(b), f_measure_threshold=0.07)

    print("  beat F-measure (70 ms): today vs this branch | whole-track pass vs today | vs this branch; "
          "same BPM and meter")
    for path in paths:
        info = sf.info(path)
        grids = {}
        for name, module in (("today", beats_today), ("new", beats)):
            params = module.Params()
            grids[name] = module.summarise(module.find_beats(str(path), info.duration, info.samplerate, params),
                                           params)
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        network, tracker = beats.loaded(beats.Params())
        whole = tracker(network(audio.resample(data.mean(axis=1), rate, 44100)))[:, 0].tolist()
        today, new = grids["today"], grids["new"]
        same = today["bpm"] == new["bpm"] and today["meter"] == new["meter"]
        print(f"    {path.parent.name}/{path.name} ({info.duration / 60:.1f} min): "
              f"{f(today['beat_times_s'], new['beat_times_s']):.4f} | {f(whole, today['beat_times_s']):.4f} | "
              f"{f(whole, new['beat_times_s']):.4f}; downbeats {f(today['downbeat_times_s'], new['downbeat_times_s']):.4f}; "
              f"BPM {today['bpm']:.2f} / {new['bpm']:.2f}, meter {today['meter']} / {new['meter']}"
              f"{'' if same else '  (differs)'}")


def long_track_memory(minutes: float, sources: list[Path], today: Path, cause: bool = False) -> None:
    """Peak RSS of one process tracking a `minutes`-long track (real tracks repeated), per side."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.flac"
        placed = []  # (source, start s, length s): which track each stretch of the long one holds
        with sf.SoundFile(path, "w", 44100, 1, format="FLAC") as out:
            written = 0
            while written < minutes * 60 * 44100:
                for source in sources:
                    data, rate = sf.read(source, dtype="float32", always_2d=True)
                    if rate == 44100:
                        out.write(data.mean(axis=1))
                        placed.append((source, written / 44100, len(data) / 44100))
                        written += len(data)
        env = {**os.environ, **SINGLE_THREAD,
               "PYTHONPATH": os.pathsep.join([str(REPO), str(today), os.environ.get("PYTHONPATH", "")])}
        found = {}
        for label, module in (("this branch", "etl.stages.beats"), ("today", "beats_today")):
            saved = Path(tmp) / f"{module}.json"
            code = (
                f"import json, resource, time, importlib; beats = importlib.import_module({module!r}); p = beats.Params()\n"
                "beats.init_worker(p); t = time.process_time()\n"
                f"g = beats.find_beats({str(path)!r}, {written / 44100}, 44100, p)\n"
                f"open({str(saved)!r}, 'w').write(json.dumps(g.beat_times_s))\n"
                "print(len(g.beat_times_s), time.process_time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
            )
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 cwd=REPO, env=env)
            beats_found, seconds, peak_kb = out.stdout.split()[-3:]
            found[label] = json.loads(saved.read_text())
            print(f"  {label}: {minutes:.0f}-minute track, {int(beats_found):,} beats in {float(seconds):.0f} CPU s, "
                  f"peak memory {int(peak_kb) / 1024:,.0f} MB")
        segments_that_differ(found["today"], found["this branch"], placed, written / 44100)
        if cause:
            cause_of_the_first_difference(path, found["today"], found["this branch"], written / 44100)


def segments_that_differ(today: list[float], branch: list[float], placed: list, duration_s: float) -> None:
    """Per kept segment where the two grids' beat counts differ: the counts, each side's tempo
    (60 / median interval) and the tracks the segment holds (issue 28.1: where the beats went)."""
    import numpy as np

    from etl.stages.beats import Params, _segments

    print("  segments whose beat count differs (today / this branch; tempo; tracks):")
    for start, end in _segments(duration_s, Params().segment_s):
        counts, tempi = [], []
        for times in (np.asarray(today), np.asarray(branch)):
            inside = times[(times >= start) & (times < end)]
            counts.append(len(inside))
            tempi.append(60 / np.median(np.diff(inside)) if len(inside) > 2 else 0.0)
        if counts[0] != counts[1]:
            names = sorted({Path(s).name for s, at, length in placed if at < end and at + length > start})
            print(f"    {start:6.0f}-{end:6.0f} s: {counts[0]} / {counts[1]} beats, {tempi[0]:.1f} / {tempi[1]:.1f} BPM; "
                  + ", ".join(names))


def cause_of_the_first_difference(path: Path, today: list[float], branch: list[float], duration_s: float) -> None:
    """The segment whose count differs most, decoded by the same DBN from this branch's
    activations (forward LSTMs carried from the track's start) and from the segment's own audio
    alone (forward LSTMs started cold at the segment's start, as today's stage did)."""
    import numpy as np

    from etl.dsp import audio
    from etl.stages import beats

    params = beats.Params()
    spans = beats._segments(duration_s, params.segment_s)
    worst = max(spans, key=lambda s: abs(sum(s[0] <= t < s[1] for t in today) - sum(s[0] <= t < s[1] for t in branch)))
    network, tracker = beats.loaded(params)
    track = beats._Activations(str(path), duration_s, 44100, params)
    for keep_start, keep_end in spans:
        start, end = max(0.0, keep_start - params.margin_s), min(duration_s, keep_end + params.margin_s)
        first, carried = track.segment(start, keep_start, keep_end, end, keep_end >= duration_s)
        if (keep_start, keep_end) == worst:
            break
    mono, _ = audio.read_mono(str(path), round(start * 44100), round((end - start) * 44100))
    cold = network(mono)[:len(carried)]
    print(f"  segment {worst[0]:.0f}-{worst[1]:.0f} s decoded from {start:.0f}-{end:.0f} s: activations differ by up to "
          f"{np.abs(carried[:len(cold)] - cold).max():.3f} (carried against cold forward state)")
    for label, activations in (("carried (this branch)", carried), ("cold (today)", cold)):
        times = tracker(activations)[:, 0] + first / beats.FPS
        kept = times[(times >= worst[0]) & (times < worst[1])]
        print(f"    {label}: {len(kept)} beats, {60 / np.median(np.diff(kept)):.1f} BPM")


def dbn_cost(path: Path, seconds: float = 80.0) -> None:
    """The DBN per meter on one segment's worth of real activations (80 s: 60 s kept, 10 s margins):
    state-space size, madmom's Viterbi and the compiled one (same path), best of three, CPU s."""
    import numpy as np
    import soundfile as sf
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor
    from threadpoolctl import threadpool_limits

    from etl.dsp import audio
    from etl.stages.beats import Params
    from etl.stages.beats.beatnet import downbeat_processor
    from etl.stages.beats.viterbi import CompiledHMM

    threadpool_limits(1)
    data, rate = sf.read(path, dtype="float32", always_2d=True, frames=int(seconds * sf.info(path).samplerate))
    activations = downbeat_processor()(audio.resample(data.mean(axis=1), rate, 44100))
    params = Params()
    tracker = DBNDownBeatTrackingProcessor(beats_per_bar=list(params.meters), min_bpm=params.min_bpm,
                                           max_bpm=params.max_bpm, transition_lambda=params.transition_lambda,
                                           fps=100)

    def best(decode: object) -> tuple[float, object]:
        times, result = [], None
        for _ in range(3):
            started = time.process_time()
            result = decode(activations)  # type: ignore[operator]
            times.append(time.process_time() - started)
        return min(times), result

    print(f"  DBN on {len(activations) / 100:.0f} s of {path.name}, per meter (CPU s, best of 3):")
    for meter, hmm in zip(params.meters, tracker.hmms):
        model = hmm.transition_model
        madmom_s, (path_madmom, _) = best(hmm.viterbi)
        compiled_s, (path_compiled, _) = best(CompiledHMM(hmm).viterbi)
        print(f"    {meter} beats per bar: {model.num_states:,} states, {len(model.states):,} transitions; madmom "
              f"{madmom_s:.3f} s, compiled {compiled_s:.3f} s ({madmom_s / compiled_s:.1f}x), same path: "
              f"{np.array_equal(path_madmom, path_compiled)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--tracks", type=int, default=0, help="use only the first N tracks (0: all)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of the three sides (best counts)")
    parser.add_argument("--long-minutes", type=float, default=0)
    parser.add_argument("--agreement", action="store_true", help="compare the beat grids (today, branch, whole)")
    parser.add_argument("--cause", action="store_true",
                        help="with --long-minutes: decode the segment that differs most from carried and cold activations")
    parser.add_argument("--dbn", action="store_true", help="time the DBN per meter, madmom's and compiled")
    parser.add_argument("--today-ref", default=TODAY, help="the commit whose beats stage is 'today'")
    parser.add_argument("--side", choices=("stage", "today", "madmom"), help=argparse.SUPPRESS)  # a child
    args = parser.parse_args()
    if args.side:
        if args.side == "madmom":
            result = side_madmom(args.folders)
        else:
            result = side_stage("etl.stages.beats" if args.side == "stage" else "beats_today", args.folders)
        print(json.dumps(result))
        return
    paths = tracks(args.folders or default_folders())[:args.tracks or None]
    with tempfile.TemporaryDirectory() as tmp:
        today = today_package(Path(tmp), args.today_ref)
        sides = {"stage": "beats stage (this branch)", "today": f"beats stage ({args.today_ref}, today)",
                 "madmom": "bare madmom, same segments"}
        best_of_rounds(args.rounds, sides, lambda side: run_side(__file__, side, paths, today),
                       f"beats on {len(paths)} tracks")
        if args.agreement:
            sys.path.insert(0, str(today))
            agreement(paths)
        if args.dbn:
            dbn_cost(paths[-1])
        if args.long_minutes:
            long_track_memory(args.long_minutes, paths, today, args.cause)


if __name__ == "__main__":
    main()
