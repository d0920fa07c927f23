"""Model stages' throughput: each stage against a bare loop of the same library calls with the
models loaded once, and against loading the models for every crop (what loading once saves).

    python bench/models.py [--stage classify] [--graph effnet-b0|tiny] [--crop-seconds 10]
                           [--repeat 3] [--json] [FOLDER ...]

FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. A store of real
crops is built first (ingest, then sequential crops of --crop-seconds; untimed). Then, per stage:

  - the stage as `etl run --stage NAME --workers 1` runs it (the engine: claims, a spawned worker
    that imports the library and loads the models, commits), on a fresh copy of that store each time;
  - a bare loop in a fresh process, timed from before its imports (the stage's worker pays the same
    start-up): load the models once, then per crop the same library calls;
  - the same bare loop loading the models for every crop.
Sides run one after the other, --repeat times, interleaved; medians of wall-clock and of CPU seconds
(this process and its children: they hold on a machine that others load) are reported. Same
environment, so the same library threads, on every side. No real weights exist here: `classify` runs graphs the
bench writes (tests/essentia_models.py) with the real models' node names, metadata and fixed batch
of 64 patches; `--graph effnet-b0` (default) makes the embedding model an EfficientNet-B0 with
random weights (4.5 M parameters, an 18 MB graph, like discogs-effnet-bs64-1.pb), so the compute
cost is the real one; `--graph tiny` (a mean and two projections) shows the overhead alone.

A stage is added by writing its `Bench` (models, settings, bare loop) into STAGES.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from library import REPO, audio_files, default_folders, link_library

sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class Bench:
    """What `main` needs to measure one model stage."""
    stage: str
    write_models: Callable[[Path, str], str]        # (folder, graph kind) -> description of the models
    settings: Callable[[Path], dict[str, str]]      # (models folder) -> the stage's --set settings
    bare: Callable[[dict[str, Any], bool], dict[str, Any]]  # (spec, load per crop) -> figures, timed inside


# --- classify (essentia-tensorflow) ----------------------------------------------------------------

# The four heads the issue names, with the published models' label counts and node names.
CLASSIFY_HEADS = (("genre_discogs400-discogs-effnet-1", 400, "serving_default_model_Placeholder",
                   "PartitionedCall:0", "Sigmoid"),
                  ("mtg_jamendo_moodtheme-discogs-effnet-1", 56, "model/Placeholder", "model/Sigmoid", "Sigmoid"),
                  ("mtg_jamendo_instrument-discogs-effnet-1", 40, "model/Placeholder", "model/Sigmoid", "Sigmoid"),
                  ("voice_instrumental-discogs-effnet-1", 2, "model/Placeholder", "model/Softmax", "Softmax"))


def classify_models(folder: Path, graph: str) -> str:
    from tests import essentia_models as em

    if graph == "effnet-b0":
        parameters = em.write_effnet_b0_model(folder)
        what = f"EfficientNet-B0 embedding model, random weights, {parameters / 1e6:.1f} M parameters"
    else:
        em.write_embedding_model(folder, batch=64)
        what = "tiny embedding model (mean mel bands, two projections)"
    for seed, (name, classes, input_node, output_node, op) in enumerate(CLASSIFY_HEADS, start=1):
        em.write_head(folder, name, [f"{name.split('-')[0]}---{i:03d}" for i in range(classes)], seed=seed,
                      input_node=input_node, output_node=output_node, op=op)
    size_mb = (folder / f"{em.EMBEDDING}.pb").stat().st_size / 1e6
    return f"{what} ({size_mb:.0f} MB graph, fixed batch of 64 patches); heads of 400, 56, 40, 2 labels"


def classify_settings(folder: Path) -> dict[str, str]:
    return {"classify.model_dir": str(folder)}


def classify_bare(spec: dict[str, Any], load_per_crop: bool) -> dict[str, Any]:
    """Timed from before the imports: read each crop at 16 kHz mono (the stage's reader: soundfile +
    resample), the Discogs-EffNet embeddings (`TensorflowPredictEffnetDiscogs`), their mean, every
    head (`TensorflowPredict2D`) and its top 5."""
    started = time.perf_counter()
    import essentia
    import essentia.standard as es
    import numpy as np

    from etl.stages.classify import read_16k_mono

    essentia.log.infoActive = False
    folder = Path(spec["model_dir"])

    def load() -> tuple[Any, list[Any]]:
        embed = es.TensorflowPredictEffnetDiscogs(graphFilename=str(folder / "discogs-effnet-bs64-1.pb"),
                                                  input="serving_default_melspectrogram", output="PartitionedCall:1")
        return embed, [es.TensorflowPredict2D(graphFilename=str(folder / f"{name}.pb"), input=input_node,
                                              output=output_node)
                       for name, _, input_node, output_node, _ in CLASSIFY_HEADS]

    models = None if load_per_crop else load()
    patches = padded = 0
    for path in spec["crops"]:
        embed, heads = load() if load_per_crop else models
        embeddings = embed(np.ascontiguousarray(read_16k_mono(path), dtype=np.float32))
        patches += len(embeddings)
        padded += -(-len(embeddings) // 64) * 64  # what the fixed batch of 64 patches runs
        mean = embeddings.mean(axis=0).astype(np.float32)[None]
        for predict in heads:
            np.argsort(-np.asarray(predict(mean))[0], kind="stable")[:5]
    return {"seconds": time.perf_counter() - started, "patches": patches, "patches_run": padded}


STAGES: dict[str, Bench] = {"classify": Bench("classify", classify_models, classify_settings, classify_bare)}


# --- the measurement, the same for every stage -------------------------------------------------------

def build_store(folders: list[Path], tmp: Path, crop_seconds: float, max_crops: int | None
                ) -> tuple[Path, list[str], float]:
    """A store of real crops (ingest + sequential crops, the first `max_crops` by id kept): its path,
    the crop files, their seconds."""
    import duckdb

    from etl.engine import pipeline
    from etl.engine.runner import RunOptions

    library = link_library(audio_files(folders), tmp / "library")
    db = tmp / "store.duckdb"
    config = pipeline.load_config(None, {"crops.mode": "sequential", "crops.seconds": str(crop_seconds)})
    pipeline.run(db, config, stage_names=["ingest", "crops"], sources=[library], options=RunOptions(run_id="store"))
    with duckdb.connect(str(db)) as con:
        if max_crops:
            con.execute("DELETE FROM crops WHERE crop_id NOT IN (SELECT crop_id FROM crops ORDER BY crop_id LIMIT ?)",
                        [max_crops])
        rows = con.execute("SELECT path, duration_s FROM crops_v ORDER BY crop_id").fetchall()
    return db, [r[0] for r in rows], sum(r[1] for r in rows)


def cpu_s() -> float:
    """CPU seconds of this process and its waited-for children (a bare loop's process, the stage's
    pool workers once joined): a figure that holds on a machine others are loading, where wall-clock
    figures do not."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                    resource.getrusage(resource.RUSAGE_CHILDREN)))


def stage_run(bench: Bench, store: Path, copy: Path, settings: dict[str, str]) -> float:
    """The stage on a fresh copy of the store (beside it: crops are named relative to its folder)."""
    from etl.engine import pipeline
    from etl.engine.runner import RunOptions

    for suffix in ("", ".wal"):
        if Path(f"{store}{suffix}").exists():
            shutil.copyfile(f"{store}{suffix}", f"{copy}{suffix}")
    config = pipeline.load_config(None, settings)
    started = time.perf_counter()
    [report] = pipeline.run(copy, config, stage_names=[bench.stage], options=RunOptions(run_id="bench", workers=1))
    elapsed = time.perf_counter() - started
    assert report.failed == 0 and report.done > 0, report
    copy.unlink()
    return elapsed


def fresh_bare(bench: Bench, spec_file: Path, load_per_crop: bool) -> dict[str, Any]:
    """The bench's bare loop in a new interpreter (nothing imported or loaded, like a stage worker)."""
    command = [sys.executable, __file__, "--bare", str(spec_file), "--stage", bench.stage,
               *(["--load-per-crop"] if load_per_crop else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(bench: Bench, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    models = tmp / "models"
    described = bench.write_models(models, args.graph)
    store, crops, audio_s = build_store(args.folders or default_folders(), tmp, args.crop_seconds, args.max_crops)
    spec_file = tmp / "spec.json"
    spec_file.write_text(json.dumps({"model_dir": str(models), "crops": crops}))
    settings = bench.settings(models)
    # Warm: the page cache holds the library, the models and the crops; figures the loop counts.
    warm = {k: v for k, v in fresh_bare(bench, spec_file, False).items() if k != "seconds"}
    sides = {"bare": lambda: fresh_bare(bench, spec_file, False)["seconds"],
             "stage": lambda: stage_run(bench, store, tmp / "copy.duckdb", settings),
             "per_crop_load": lambda: fresh_bare(bench, spec_file, True)["seconds"]}
    wall: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeat):
        for side, run in sides.items():
            before = cpu_s()
            wall[side].append(run())
            cpu[side].append(cpu_s() - before)
        load.append(os.getloadavg()[0])
    wall_s = {side: statistics.median(times) for side, times in wall.items()}
    cpu_med = {side: statistics.median(times) for side, times in cpu.items()}
    return {"stage": bench.stage, "models": described, "graph": args.graph, "crops": len(crops),
            "crop_seconds": args.crop_seconds, "audio_s": audio_s, "repeat": args.repeat,
            "load_average": load, "runs_s": wall, "runs_cpu_s": cpu, "median_s": wall_s, "median_cpu_s": cpu_med,
            "crops_per_s": {side: len(crops) / s for side, s in wall_s.items()},
            "crops_per_cpu_s": {side: len(crops) / s for side, s in cpu_med.items()},
            "stage_over_bare": wall_s["stage"] / wall_s["bare"],
            "stage_over_bare_cpu": cpu_med["stage"] / cpu_med["bare"],
            "per_crop_load_over_bare": wall_s["per_crop_load"] / wall_s["bare"],
            "per_crop_load_over_bare_cpu": cpu_med["per_crop_load"] / cpu_med["bare"],
            **warm}


def report(result: dict[str, Any]) -> None:
    n = result["crops"]
    print(f"{result['stage']}: {n} crops of up to {result['crop_seconds']:g} s ({result['audio_s'] / 60:.1f} min of "
          f"real music), one worker, medians of {result['repeat']} runs; load average "
          f"{min(result['load_average']):.1f}-{max(result['load_average']):.1f}")
    print(f"  models: {result['models']}")
    labels = {"bare": "bare loop, models loaded once (fresh process)",
              "stage": f"stage (etl run --stage {result['stage']} --workers 1)",
              "per_crop_load": "bare loop, models loaded per crop"}
    for side, label in labels.items():
        seconds, cpu = result["median_s"][side], result["median_cpu_s"][side]
        print(f"  {label:<48} {seconds:7.2f} s  {n / seconds:6.2f} crops/s   CPU {cpu:7.2f} s  "
              f"{n / cpu:6.2f} crops per CPU-s")
    print(f"  stage / bare: {result['stage_over_bare']:.3f}x wall, {result['stage_over_bare_cpu']:.3f}x CPU   "
          f"per-crop load / bare: {result['per_crop_load_over_bare']:.2f}x wall, "
          f"{result['per_crop_load_over_bare_cpu']:.2f}x CPU")
    if "patches" in result:
        print(f"  patches: {result['patches']} with audio, {result['patches_run']} run by the fixed batch of 64 "
              f"({1 - result['patches'] / result['patches_run']:.0%} zero padding)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--stage", choices=sorted(STAGES), action="append")
    parser.add_argument("--graph", choices=("effnet-b0", "tiny"), default="effnet-b0")
    parser.add_argument("--crop-seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-crops", type=int, help="keep only this many crops (the first by id)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON on stdout")
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)  # a spec file: run one bare loop
    parser.add_argument("--load-per-crop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        [name] = args.stage
        print(json.dumps(STAGES[name].bare(json.loads(args.bare.read_text()), args.load_per_crop)))
        return
    results = []
    for name in args.stage or sorted(STAGES):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(measure(STAGES[name], args, Path(tmp)))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            report(result)


if __name__ == "__main__":
    main()
