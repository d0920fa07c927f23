"""Stem separation: SDR against reference stems, and the stems stage against bare demucs calls.

    python bench/stems.py [--model NAME --repo DIR] [--seconds 30] [--long-minutes 10] [--skip-throughput]

Without --repo the model is a randomly initialised full-size htdemucs (demucs's own class with the
published hyper-parameters: 41,984,456 parameters), which costs what the real one costs but
separates nothing: its SDR figures are labelled "random weights". With real weights (e.g.
`--model htdemucs --repo DIR` holding htdemucs.yaml and 955717e8-8726e21a.th) the same command
reports the real SDR on ../shared/corpus/stempeg (a 6.1 s MUSDB18 excerpt with its four stems).

Throughput: one track of --seconds (real music, looped) separated by the stage (`etl run --stage
stems`, one worker of one torch thread, FLAC output) against a bare loop of the same library calls
(import torch and demucs, load the model, decode with soundfile, normalise, demucs's `apply_model`
with the same shifts / overlap, write four FLAC files) in a fresh process, also on one thread, so
both pay the same start-up (the warm in-process figure is printed beside it); then two workers on
two tracks. Peak memory:
a --long-minutes track through the stage's separation and through `apply_model` on the whole
track, each in a fresh process.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from library import REPO

sys.path.insert(0, str(REPO))

STEMPEG = REPO.parent / "shared" / "corpus" / "stempeg"


# One thread for every maths library, on both sides: the bare loop's process and the stage's spawn
# workers (which inherit this process's environment) get the same settings, plus torch's own
# set_num_threads(1) (the stage through stems.threads = 1).
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def one_thread_env() -> dict[str, str]:
    import os

    return {**os.environ, **THREADS, "HF_HUB_OFFLINE": "1"}


def make_track(path: Path, seconds: float, source: Path = STEMPEG / "mixture.flac") -> Path:
    """`seconds` of real music: the source looped (44.1 kHz stereo FLAC)."""
    import soundfile as sf

    data, rate = sf.read(source, dtype="float32", always_2d=True)
    frames = int(seconds * rate)
    with sf.SoundFile(path, "w", rate, data.shape[1], "PCM_16", format="FLAC") as out:
        written = 0
        while written < frames:
            block = data[: frames - written]
            out.write(block)
            written += len(block)
    return path


def bare_separate(model, path: Path, out_dir: Path, shifts: int, overlap: float) -> None:
    import soundfile as sf
    import torch
    from demucs.apply import apply_model

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mix = torch.from_numpy(data.T.copy())
    ref = mix.mean(0)
    mean, std = ref.mean(), ref.std() + 1e-8
    sources = apply_model(model, ((mix - mean) / std)[None], shifts=shifts, split=True, overlap=overlap)[0]
    sources = sources * std + mean
    for name, source in zip(model.sources, sources):
        source = source / max(1.01 * float(source.abs().max()), 1.0)  # demucs's "rescale" clip mode
        sf.write(out_dir / f"{name}.flac", source.numpy().T, rate, "PCM_16")


def bare_process(name: str, repo: Path, path: Path, out_dir: Path) -> float:
    """The bare loop as a user's script runs it: a fresh process importing torch and demucs, loading
    the model, separating, writing; timed to its exit (the stage's worker pays the same start-up)."""
    code = ("import torch; torch.set_num_threads(1)\n"
            f"import sys; sys.path.insert(0, {str(REPO / 'bench')!r})\n"
            "from pathlib import Path; from demucs.pretrained import get_model; from stems import bare_separate\n"
            f"m = get_model({name!r}, repo=Path({str(repo)!r}))\n"
            f"bare_separate(m, Path({str(path)!r}), Path({str(out_dir)!r}), 1, 0.25)\n")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env=one_thread_env())
    return time.perf_counter() - started


def stage_run(folder: Path, db: Path, settings: dict[str, str], workers: int) -> tuple[float, int]:
    from etl.app import pipeline
    from etl.engine.runner import RunOptions

    config = pipeline.load_config(None, settings)
    pipeline.run(db, config, stage_names=["ingest"], sources=[folder], options=RunOptions(run_id="i"))
    started = time.perf_counter()
    [report] = pipeline.run(db, config, stage_names=["stems"], options=RunOptions(run_id="s", workers=workers))
    assert report.failed == 0 and report.done, report
    return time.perf_counter() - started, report.done


def sdr_report(name: str, repo: Path, label: str, tmp: Path) -> None:
    import soundfile as sf

    from etl.dsp.sdr import sdr
    from etl.stages import stems

    params = stems.Params(model=name, repo=str(repo), threads=1)
    item = {"item_id": "sdr" + "0" * 61, "path": str(STEMPEG / "mixture.flac"), "artifact_dir": str(tmp / "sdr")}
    result = stems.process(item, params)
    print(f"SDR on stempeg ({label}):")
    for row in result["stems"]:
        reference, _ = sf.read(STEMPEG / f"{row['stem']}.flac", dtype="float32", always_2d=True)
        estimate, _ = sf.read(row["path"], dtype="float32", always_2d=True)
        print(f"  {row['stem']:7s} {sdr(reference, estimate):6.2f} dB")


def peak_memory(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                         env=one_thread_env())
    return out.stdout.strip().splitlines()[-1]


def long_track(minutes: float, name: str, repo: Path, tmp: Path) -> None:
    path = make_track(tmp / "long.flac", minutes * 60)
    stage = peak_memory(
        "import resource, time, torch; torch.set_num_threads(1)\n"
        "from etl.stages import stems\n"
        f"p = stems.Params(model={name!r}, repo={str(repo)!r}, threads=1); stems.init_worker(p)\n"
        "t = time.perf_counter()\n"
        f"stems.process({{'item_id': 'long' + '0' * 60, 'path': {str(path)!r}, 'artifact_dir': {str(tmp / 'long')!r}}}, p)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    seconds, peak_kb = stage.split()
    print(f"  {minutes:.0f}-minute track through the stage's separation: {float(seconds):.0f} s, "
          f"peak memory {int(peak_kb) / 1024:,.0f} MB")
    bare = peak_memory(
        "import resource, sys, time, torch; torch.set_num_threads(1)\n"
        f"sys.path.insert(0, {str(REPO / 'bench')!r})\n"
        "from pathlib import Path; from demucs.pretrained import get_model; from stems import bare_separate\n"
        f"m = get_model({name!r}, repo=Path({str(repo)!r})); t = time.perf_counter()\n"
        f"out = Path({str(tmp / 'bare-long')!r}); out.mkdir(exist_ok=True)\n"
        f"bare_separate(m, Path({str(path)!r}), out, 1, 0.25)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    seconds, peak_kb = bare.split()
    print(f"  {minutes:.0f}-minute track through apply_model on the whole track: {float(seconds):.0f} s, "
          f"peak memory {int(peak_kb) / 1024:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="htdemucs_random")
    parser.add_argument("--repo", type=Path, help="a demucs model repository (default: a random full-size htdemucs)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--long-minutes", type=float, default=0)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    import os

    os.environ.update(one_thread_env())  # before torch loads: the stage's workers inherit it
    import torch
    from demucs.pretrained import get_model

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        repo, label = args.repo, f"{args.model} from {args.repo}"
        if repo is None:
            from etl.stages.stems.testing import FULL, write_random_model

            repo = write_random_model(tmp / "models", args.model, **FULL)
            label = "RANDOM WEIGHTS, full-size htdemucs architecture: not a separation quality figure"
        model = get_model(args.model, repo=repo)
        print(f"model {args.model}: {sum(p.numel() for p in model.parameters()):,} parameters ({label})")
        sdr_report(args.model, repo, label, tmp)
        if not args.skip_throughput:
            for folder in ("one", "two", "bare"):
                (tmp / folder).mkdir()
            one = make_track(tmp / "one" / "a.flac", args.seconds)
            started = time.perf_counter()
            bare_separate(model, one, tmp / "bare", 1, 0.25)
            warm_s = time.perf_counter() - started
            bare_s = bare_process(args.model, repo, one, tmp / "bare")
            settings = {"stems.model": args.model, "stems.repo": str(repo), "stems.threads": "1"}
            stage_s, _ = stage_run(tmp / "one", tmp / "one.duckdb", settings, workers=1)
            print(f"{args.seconds:.0f} s of audio, one torch thread; the stage and the bare loop each from a fresh "
                  "process (imports and model load counted for both):")
            print(f"  bare loop (load, decode, apply_model, 4 FLAC writes): {bare_s:6.1f} s  "
                  f"{args.seconds / bare_s:5.2f} s of audio per second")
            print(f"  stems stage (one worker):                             {stage_s:6.1f} s  "
                  f"{args.seconds / stage_s:5.2f} s of audio per second")
            print(f"  stage / bare: {stage_s / bare_s:.2f}x  (the bare loop in this warm process, model loaded: "
                  f"{warm_s:.1f} s); peak memory of this process "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
            for index in range(2):
                make_track(tmp / "two" / f"{index}.flac", args.seconds)
            two_s, _ = stage_run(tmp / "two", tmp / "two.duckdb", settings, workers=2)
            print(f"  stems stage, two workers of one thread on two tracks: {2 * args.seconds / two_s:5.2f} "
                  "s of audio per second")
        if args.long_minutes:
            long_track(args.long_minutes, args.model, repo, tmp)


if __name__ == "__main__":
    main()
