"""Model stages' throughput: each stage against a bare loop of the same library calls and against
the stage as it was at a baseline commit, warm and end to end.

    python bench/models.py [--stage classify] [--graph effnet-b0|tiny] [--crop-seconds 10]
                           [--max-crops 64] [--repeat 3] [--threads 1] [--baseline REV] [--engine]
                           [--per-crop-load] [--json] [FOLDER ...]

FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. A store of real
crops is built first (ingest, then sequential crops of --crop-seconds; untimed). The whole benchmark
runs on --threads CPUs (default 1: its affinity, which every process it starts inherits, so
TensorFlow runs one thread), and reports CPU seconds beside wall-clock: they hold on a machine that
others load, where wall-clock does not. Per stage, one after the other, --repeat times, interleaved:

  - warm (the figure to compare): each side in a fresh process loads its models, runs the first
    crops once untimed, then times its loop over every crop (CPU seconds of that process, all its
    threads): a bare loop of the library calls the stage made at the baseline, the stage's code at
    --baseline (default 8802204, extracted with `git archive`; its `process` per crop), and this
    checkout's stage (`process_batch` on the chunks the engine hands a worker);
  - with --engine, end to end: `etl run --stage NAME --workers 1` (claims, a spawned worker that
    imports the library and loads the models, commits) of the baseline's code and of this
    checkout's, each on a fresh copy of the store, and the bare loop in a fresh process timed from
    before its imports; with --per-crop-load also the bare loop loading the models for every crop.
Medians are reported. No real weights exist here: `classify` runs graphs the bench writes
(etl/stages/classify/testing.py) with the real models' node names, metadata and fixed batch of 64 patches;
`--graph effnet-b0` (default) makes the embedding model an EfficientNet-B0 with random weights
(4.5 M parameters, an 18 MB graph, like discogs-effnet-bs64-1.pb), so the compute cost is the real
one; `--graph tiny` (a mean and two projections) shows the overhead alone.

A stage is added by writing its `Bench` (models, settings, bare loop, warm sides) into STAGES.
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


BASELINE = "8802204"  # main before the classify stage shared model runs between crops


@dataclass(frozen=True)
class Bench:
    """What `main` needs to measure one model stage."""
    stage: str
    write_models: Callable[[Path, str], str]        # (folder, graph kind) -> description of the models
    settings: Callable[[Path], dict[str, str]]      # (models folder) -> the stage's --set settings
    bare: Callable[[dict[str, Any], bool], dict[str, Any]]  # (spec, load per crop) -> figures, timed inside
    # (spec, side) -> figures of one warm side, timed inside; `warm_sides` names them, in report order
    warm: Callable[[dict[str, Any], str], dict[str, Any]]
    warm_sides: dict[str, str]


# --- classify (essentia-tensorflow) ----------------------------------------------------------------

# The four heads the issue names, with the published models' label counts and node names.
CLASSIFY_HEADS = (("genre_discogs400-discogs-effnet-1", 400, "serving_default_model_Placeholder",
                   "PartitionedCall:0", "Sigmoid"),
                  ("mtg_jamendo_moodtheme-discogs-effnet-1", 56, "model/Placeholder", "model/Sigmoid", "Sigmoid"),
                  ("mtg_jamendo_instrument-discogs-effnet-1", 40, "model/Placeholder", "model/Sigmoid", "Sigmoid"),
                  ("voice_instrumental-discogs-effnet-1", 2, "model/Placeholder", "model/Softmax", "Softmax"))


def classify_models(folder: Path, graph: str) -> str:
    from etl.stages.classify import testing as em

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


def _classify_library(folder: Path) -> tuple[Any, list[Any]]:
    """The calls the stage made at the baseline: `TensorflowPredictEffnetDiscogs` (padding each crop
    to 64 patches, a new TensorFlow session per call) and one `TensorflowPredict2D` per head."""
    import essentia.standard as es

    embed = es.TensorflowPredictEffnetDiscogs(graphFilename=str(folder / "discogs-effnet-bs64-1.pb"),
                                              input="serving_default_melspectrogram", output="PartitionedCall:1")
    return embed, [es.TensorflowPredict2D(graphFilename=str(folder / f"{name}.pb"), input=input_node,
                                          output=output_node)
                   for name, _, input_node, output_node, _ in CLASSIFY_HEADS]


def classify_bare(spec: dict[str, Any], load_per_crop: bool) -> dict[str, Any]:
    """Timed from before the imports: read each crop at 16 kHz mono (the stage's reader: soundfile +
    resample), the Discogs-EffNet embeddings (`TensorflowPredictEffnetDiscogs`), their mean, every
    head (`TensorflowPredict2D`) and its top 5."""
    started = time.perf_counter()
    import essentia
    import numpy as np

    from etl.stages.classify import read_16k_mono

    essentia.log.infoActive = False
    folder = Path(spec["model_dir"])
    models = None if load_per_crop else _classify_library(folder)
    patches = padded = 0
    for path in spec["crops"]:
        embed, heads = _classify_library(folder) if load_per_crop else models
        embeddings = embed(np.ascontiguousarray(read_16k_mono(path), dtype=np.float32))
        patches += len(embeddings)
        padded += -(-len(embeddings) // 64) * 64  # what the fixed batch of 64 patches runs
        mean = embeddings.mean(axis=0).astype(np.float32)[None]
        for predict in heads:
            np.argsort(-np.asarray(predict(mean))[0], kind="stable")[:5]
    return {"seconds": time.perf_counter() - started, "patches": patches, "patches_run": padded}


CLASSIFY_SIDES = {"library": "bare loop: TensorflowPredictEffnetDiscogs per crop",
                  "baseline": "today's stage ({baseline}: process per crop)",
                  "stage": "batched stage (process_batch, {crops_per_batch} crops a task)"}


def classify_warm(spec: dict[str, Any], side: str) -> dict[str, Any]:
    """One warm side in this (fresh) process: models loaded, the first crops run once, then the loop
    over every crop timed (CPU seconds of this process, every thread). Returns the figures and each
    crop's scores (heads in order, labels in order; None where the crop failed)."""
    if side == "baseline":
        sys.path.insert(0, spec["baseline_tree"])  # its etl package, not this checkout's
    import essentia
    import numpy as np

    essentia.log.infoActive = False
    from etl.stages import classify
    from etl.stages.classify import read_16k_mono

    items = [{"item_id": str(i), "track_id": "t", "path": path} for i, path in enumerate(spec["crops"])]
    counted = {"patches": 0, "patches_run": 0}
    if side == "library":
        embed, heads = _classify_library(Path(spec["model_dir"]))

        def run(chunk: list[dict[str, Any]]) -> list[Any]:
            out: list[Any] = []
            for item in chunk:
                embeddings = embed(np.ascontiguousarray(read_16k_mono(item["path"]), dtype=np.float32))
                if len(embeddings) == 0:
                    out.append(None)
                    continue
                counted["patches"] += len(embeddings)
                counted["patches_run"] += -(-len(embeddings) // 64) * 64
                mean = embeddings.mean(axis=0).astype(np.float32)[None]
                out.append([np.asarray(predict(mean))[0].tolist() for predict in heads])
            return out
    else:
        expected = Path(spec["baseline_tree"] if side == "baseline" else REPO).resolve()
        assert Path(classify.__file__).resolve().is_relative_to(expected), classify.__file__
        if side == "baseline":
            params = classify.Params(model_dir=spec["model_dir"])
            process = lambda chunk: [classify.process(item, params) for item in chunk]  # noqa: E731
            per_task = 1
        else:
            params = classify.Params(model_dir=spec["model_dir"], crops_per_batch=spec["crops_per_batch"])
            process = lambda chunk: classify.process_batch(chunk, params)  # noqa: E731
            per_task = params.crops_per_batch
        classify.init_worker(params)

        def run(chunk: list[dict[str, Any]]) -> list[Any]:
            out: list[Any] = []
            for start in range(0, len(chunk), per_task):  # the engine's pool tasks
                try:
                    results = process(chunk[start:start + per_task])
                except Exception:  # the baseline's process raises for a crop too short for a patch
                    results = [None]
                out += [[row["scores"] for row in r["classes"]] if isinstance(r, dict) else None for r in results]
            return out

    run(items[:spec["warmup"]])
    counted.update(patches=0, patches_run=0)  # the timed loop's alone
    if side == "stage":
        embed_model = classify.classifier(params).embed
        embed_model.patches_run = 0
    cpu, wall = time.process_time(), time.perf_counter()
    scores = run(items)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if side == "stage":
        counted["patches_run"] = embed_model.patches_run
        counted["patches"] = sum(classify.effnet.patch_count(len(read_16k_mono(i["path"])))
                                 for i, s in zip(items, scores) if s is not None)
    return {"cpu_s": cpu, "wall_s": wall, "done": sum(s is not None for s in scores), **counted, "scores": scores}


STAGES: dict[str, Bench] = {"classify": Bench("classify", classify_models, classify_settings, classify_bare,
                                              classify_warm, CLASSIFY_SIDES)}


# --- the measurement, the same for every stage -------------------------------------------------------

def build_store(folders: list[Path], tmp: Path, crop_seconds: float, max_crops: int | None
                ) -> tuple[Path, list[str], float]:
    """A store of real crops (ingest + sequential crops, the first `max_crops` by id kept): its path,
    the crop files, their seconds."""
    import duckdb

    from etl.app import pipeline
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


def baseline_tree(rev: str, dest: Path) -> Path:
    """The baseline's etl package with its SQL (`git archive`), to import instead of this checkout's."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "etl", "schema", "sql"], cwd=REPO, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def cpu_s() -> float:
    """CPU seconds of this process and its waited-for children (a bare loop's process, the stage's
    pool workers once joined): a figure that holds on a machine others are loading, where wall-clock
    figures do not."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                    resource.getrusage(resource.RUSAGE_CHILDREN)))


def stage_run(bench: Bench, store: Path, copy: Path, settings: dict[str, str], tree: Path | None) -> float:
    """`etl run --stage NAME --workers 1` in a fresh process (this checkout's code, or the tree's) on
    a fresh copy of the store (beside it: crops are named relative to its folder); its wall seconds."""
    for suffix in ("", ".wal"):
        if Path(f"{store}{suffix}").exists():
            shutil.copyfile(f"{store}{suffix}", f"{copy}{suffix}")
    job = json.dumps({"db": str(copy), "settings": settings, "stage": bench.stage, "tree": str(tree or REPO)})
    done = subprocess.run([sys.executable, __file__, "--engine-run", job], capture_output=True, text=True,
                          check=True, cwd=REPO)
    copy.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def engine_run(job: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, job["tree"])
    started = time.perf_counter()
    from etl.app import pipeline
    from etl.engine.runner import RunOptions

    config = pipeline.load_config(None, job["settings"])
    [report] = pipeline.run(Path(job["db"]), config, stage_names=[job["stage"]],
                            options=RunOptions(run_id="bench", workers=1))
    assert report.done > 0, report
    return {"seconds": time.perf_counter() - started, "done": report.done, "failed": report.failed}


def fresh(args: list[str]) -> dict[str, Any]:
    """This script in a new interpreter (nothing imported or loaded, like a stage worker): its JSON."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(bench: Bench, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    models = tmp / "models"
    described = bench.write_models(models, args.graph)
    store, crops, audio_s = build_store(args.folders or default_folders(), tmp, args.crop_seconds, args.max_crops)
    tree = baseline_tree(args.baseline, tmp / "baseline")
    spec_file = tmp / "spec.json"
    spec_file.write_text(json.dumps({"model_dir": str(models), "crops": crops, "baseline_tree": str(tree),
                                     "crops_per_batch": args.crops_per_batch, "warmup": args.warmup}))
    settings = {**bench.settings(models), f"{bench.stage}.crops_per_batch": str(args.crops_per_batch)}
    baseline_settings = bench.settings(models)
    def warm_side(side: str) -> Callable[[], Any]:
        return lambda: fresh(["--warm", str(spec_file), "--side", side, "--stage", bench.stage])

    sides: dict[str, Callable[[], Any]] = {f"warm:{side}": warm_side(side) for side in bench.warm_sides}
    if args.engine:
        sides |= {"run:bare": lambda: fresh(["--bare", str(spec_file), "--stage", bench.stage])["seconds"],
                  "run:baseline": lambda: stage_run(bench, store, tmp / "copy.duckdb", baseline_settings, tree),
                  "run:stage": lambda: stage_run(bench, store, tmp / "copy.duckdb", settings, None)}
    if args.per_crop_load:
        sides["run:per_crop_load"] = lambda: fresh(["--bare", str(spec_file), "--stage", bench.stage,
                                                    "--load-per-crop"])["seconds"]
    wall: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    figures: dict[str, dict[str, Any]] = {}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeat):
        for side, run in sides.items():
            before = cpu_s()
            answer = run()
            if side.startswith("warm:"):  # timed inside: the loop alone
                wall[side].append(answer["wall_s"])
                cpu[side].append(answer["cpu_s"])
                figures[side] = answer
            else:
                wall[side].append(answer)
                cpu[side].append(cpu_s() - before)
        load.append(os.getloadavg()[0])
    wall_s = {side: statistics.median(times) for side, times in wall.items()}
    cpu_med = {side: statistics.median(times) for side, times in cpu.items()}
    scores = {side: figures[side].pop("scores") for side in figures}
    return {"stage": bench.stage, "models": described, "graph": args.graph, "crops": len(crops),
            "crop_seconds": args.crop_seconds, "audio_s": audio_s, "repeat": args.repeat, "threads": args.threads,
            "baseline": args.baseline, "crops_per_batch": args.crops_per_batch, "warmup": args.warmup,
            "load_average": load, "runs_s": wall, "runs_cpu_s": cpu, "median_s": wall_s, "median_cpu_s": cpu_med,
            "crops_per_cpu_s": {side: len(crops) / s for side, s in cpu_med.items()},
            "warm": {side.removeprefix("warm:"): f for side, f in figures.items()},
            "scores_vs_baseline": compare_scores(scores.get("warm:baseline"), scores.get("warm:stage"))}


def compare_scores(baseline: list[Any] | None, stage: list[Any] | None) -> dict[str, Any] | None:
    """The largest difference between two sides' scores, crop by crop, and whether every crop's best
    label per head is the same."""
    if baseline is None or stage is None:
        return None
    import numpy as np

    worst, same_best, crops = 0.0, True, 0
    for old, new in zip(baseline, stage, strict=True):
        assert (old is None) == (new is None), "one side failed a crop the other did not"
        if old is None:
            continue
        crops += 1
        for a, b in zip(old, new, strict=True):
            worst = max(worst, float(np.max(np.abs(np.asarray(a) - np.asarray(b)))))
            same_best &= int(np.argmax(a)) == int(np.argmax(b))
    return {"crops": crops, "max_abs_diff": worst, "same_best_label": same_best}


def report(result: dict[str, Any], bench: Bench) -> None:
    n = result["crops"]
    print(f"{result['stage']}: {n} crops of up to {result['crop_seconds']:g} s ({result['audio_s'] / 60:.1f} min of "
          f"real music), {result['threads']} thread(s), medians of {result['repeat']} runs; load average "
          f"{min(result['load_average']):.1f}-{max(result['load_average']):.1f}")
    print(f"  models: {result['models']}")
    names = {side: label.format(**result) for side, label in bench.warm_sides.items()}
    names |= {"run:bare": "bare loop (fresh process, from its imports)",
              "run:baseline": f"today's stage ({result['baseline']}): etl run --workers 1",
              "run:stage": "batched stage: etl run --workers 1",
              "run:per_crop_load": "bare loop, models loaded per crop"}
    cpu, wall = result["median_cpu_s"], result["median_s"]
    print(f"  warm ({result['warmup']} crops run first, then the loop over all {n} timed):")
    for side in cpu:
        if side == next((s for s in cpu if s.startswith("run:")), None):
            print("  end to end (fresh processes, timed from their start: imports, model loading, the engine):")
        label = names[side.removeprefix("warm:")] if side.startswith("warm:") else names[side]
        versus = ""
        base = "warm:baseline" if side.startswith("warm:") else "run:baseline"
        if base in cpu and side != base:
            versus = f"  {cpu[base] / cpu[side]:5.2f}x today's"
        print(f"    {label:<58} CPU {cpu[side]:7.2f} s  {n / cpu[side]:6.2f} crops per CPU-s  "
              f"(wall {wall[side]:6.2f} s){versus}")
    warm = result["warm"]
    if "library" in warm and "stage" in warm:
        lib, new = warm["library"], warm["stage"]
        print(f"  patches: {lib['patches']} with audio; run: {lib['patches_run']} one crop a call "
              f"({1 - lib['patches'] / lib['patches_run']:.0%} zero padding), {new['patches_run']} batched "
              f"({1 - new['patches'] / new['patches_run']:.0%})")
    compared = result.get("scores_vs_baseline")
    if compared:
        print(f"  scores, batched stage vs today's on {compared['crops']} crops: largest difference "
              f"{compared['max_abs_diff']:.1e}, same best label per head: {compared['same_best_label']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--stage", choices=sorted(STAGES), action="append")
    parser.add_argument("--graph", choices=("effnet-b0", "tiny"), default="effnet-b0")
    parser.add_argument("--crop-seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-crops", type=int, default=64, help="keep only this many crops (the first by id); 0: all")
    parser.add_argument("--threads", type=int, default=1, help="CPUs the benchmark and its processes may use")
    parser.add_argument("--baseline", default=BASELINE, help="the commit whose stage code is `today's`")
    parser.add_argument("--crops-per-batch", type=int, default=32, help="the stage's crops per pool task")
    parser.add_argument("--warmup", type=int, default=4, help="crops each warm side runs before it is timed")
    parser.add_argument("--engine", action="store_true", help="also end to end: etl run of both codes, bare loop")
    parser.add_argument("--per-crop-load", action="store_true", help="also the bare loop loading models per crop")
    parser.add_argument("--json", action="store_true", help="the figures as JSON on stdout")
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)  # a spec file: run one bare loop
    parser.add_argument("--load-per-crop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=Path, help=argparse.SUPPRESS)  # a spec file: run one warm side
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--engine-run", help=argparse.SUPPRESS)  # a job (JSON): one etl run
    args = parser.parse_args()
    if args.engine_run:
        print(json.dumps(engine_run(json.loads(args.engine_run))))
        return
    if args.bare or args.warm:
        [name] = args.stage
        bench = STAGES[name]
        spec = json.loads((args.bare or args.warm).read_text())
        print(json.dumps(bench.bare(spec, args.load_per_crop) if args.bare else bench.warm(spec, args.side)))
        return
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])  # inherited by every process started
    results = []
    for name in args.stage or sorted(STAGES):
        with tempfile.TemporaryDirectory() as tmp:
            results.append((STAGES[name], measure(STAGES[name], args, Path(tmp))))
    if args.json:
        print(json.dumps([r for _, r in results], indent=2))
    else:
        for bench, result in results:
            report(result, bench)


if __name__ == "__main__":
    main()
