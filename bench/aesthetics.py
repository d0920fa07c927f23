"""AudioBox Aesthetics throughput: the aesthetics stage against a bare loop of the same library calls.

    python bench/aesthetics.py [--size full|tiny] [--crops 16] [--repeats 2] [--batch 8] [FOLDER ...]

No real weights exist here: the model is a random one built with the package's own classes, of the
released size (`full`, WavLM Base+, 95 M parameters: what the real checkpoint costs) or `tiny` (the
tests' model: what everything but the model costs). Ingest and 5 s sequential crops run first
(untimed). Then, in this one process, all warm (model loaded, one call made first), same torch
threads, each repeat times, in turn:

- bare: soundfile read, mean over channels, scipy's resample_poly to 16 kHz, the 10 s windows cut
  with numpy, `--batch` crops per AesMultiOutput call, de-normalised and averaged by hand;
- stage: `etl run --stage aesthetics` through the engine (inline executor: this process, this
  model), claims and commits included, on a fresh copy of the prepared database;
- one by one: the stage's `process` per crop (no batching), to show what batching buys.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from library import REPO, audio_files, default_folders, link_library

sys.path.insert(0, str(REPO))  # etl/stages/aesthetics/testing.py builds the random model

from etl.app import pipeline  # noqa: E402
from etl.engine.runner import RunOptions  # noqa: E402
from etl.stages import aesthetics  # noqa: E402
from etl.stages.aesthetics.model import _quiet  # noqa: E402
from etl.stages.aesthetics import testing as aesthetics_models  # noqa: E402


def bare(paths: list[str], loaded: aesthetics.Loaded, batch: int) -> list[float]:
    """PQ of every crop, the reference's way, with the libraries called directly."""
    from math import gcd

    import numpy as np
    import soundfile as sf
    import torch
    from scipy.signal import resample_poly

    window, model, (mean, std) = 160000, loaded.model.model, loaded.model.target["PQ"]
    scores: list[float] = []
    for start in range(0, len(paths), batch):
        wavs, masks, weights, owners = [], [], [], []
        for owner, path in enumerate(paths[start:start + batch]):
            data, rate = sf.read(path, dtype="float32", always_2d=True)
            g = gcd(rate, 16000)
            mono = resample_poly(data.mean(axis=1), 16000 // g, rate // g).astype(np.float32)
            for at in range(0, len(mono), window):
                piece = mono[at:at + window]
                wavs.append(np.pad(piece, (0, window - len(piece))))
                masks.append(np.arange(window) < len(piece))
                weights.append(len(piece) / window)
                owners.append(owner)
        with torch.inference_mode(), _quiet():
            out = model({"wav": torch.from_numpy(np.stack(wavs))[:, None], "mask": torch.from_numpy(np.stack(masks))[:, None]})
        pq, w, o = out["PQ"].numpy() * std + mean, np.array(weights), np.array(owners)
        scores += [float((pq[o == i] * w[o == i]).sum() / w[o == i].sum()) for i in range(o.max() + 1)]
    return scores


def prepare(folders: list[Path], tmp: Path, count: int) -> tuple[Path, list[str], float]:
    library = link_library(audio_files(folders), tmp / "library")
    db = tmp / "prepared.duckdb"
    config = pipeline.load_config(None, {"crops.mode": "sequential", "crops.seconds": "5"})
    pipeline.run(db, config, stage_names=["ingest", "crops"], sources=[library], options=RunOptions(run_id="prepare"))
    with duckdb.connect(str(db)) as con:  # keep only the crops measured
        con.execute("DELETE FROM crops WHERE crop_id NOT IN (SELECT crop_id FROM crops ORDER BY crop_id LIMIT ?)",
                    [count])
        chosen = con.execute("SELECT artifact_path(path), duration_s FROM crops ORDER BY crop_id").fetchall()
    return db, [p for p, _ in chosen], sum(d for _, d in chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--size", choices=("full", "tiny"), default="full")
    parser.add_argument("--crops", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = getattr(aesthetics_models, args.size)(Path(tmp) / "checkpoint.pt")
        prepared, paths, audio_s = prepare(args.folders or default_folders(), Path(tmp), args.crops)
        settings = {"aesthetics.checkpoint": str(checkpoint), "aesthetics.device": "cpu",
                    "aesthetics.crops_per_batch": str(args.batch), "run.executor": "inline"}
        params = aesthetics.Params(checkpoint=str(checkpoint), device="cpu", crops_per_batch=args.batch)
        loaded = aesthetics.worker_model(params)
        bare(paths[:1], loaded, args.batch)  # warm: first calls
        times: dict[str, list[float]] = {"bare": [], "stage": [], "one by one": []}
        for repeat in range(args.repeats):
            mark = time.perf_counter()
            reference = bare(paths, loaded, args.batch)
            times["bare"].append(time.perf_counter() - mark)
            db = Path(tmp) / f"run{repeat}.duckdb"
            shutil.copyfile(prepared, db)
            mark = time.perf_counter()
            [report] = pipeline.run(db, pipeline.load_config(None, settings), stage_names=["aesthetics"],
                                    options=RunOptions(run_id=f"r{repeat}", executor="inline"))
            times["stage"].append(time.perf_counter() - mark)
            assert report.done == len(paths), report
            mark = time.perf_counter()
            single = [aesthetics.process({"path": p}, params)["aes_pq"] for p in paths]
            times["one by one"].append(time.perf_counter() - mark)
            with duckdb.connect(str(db), read_only=True) as con:
                stored = [r[0] for r in con.execute("SELECT a.aes_pq FROM crop_aesthetics a JOIN crops c "
                                                    "USING (crop_id) ORDER BY c.crop_id").fetchall()]
            worst = max(abs(a - b) for other in (stored, single) for a, b in zip(reference, other, strict=True))
            print(f"  repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                  + f"; largest PQ difference {worst:.1e}; load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"aesthetics ({args.size} random model) on {len(paths)} crops, {audio_s:.0f} s of audio, "
          f"{torch.get_num_threads()} torch threads, warm, median of {args.repeats}:")
    for name, spent in times.items():
        wall = statistics.median(spent)
        print(f"  {name:12s} {wall:7.2f} s  {len(paths) / wall:6.2f} crops/s  {audio_s / wall:6.1f}x realtime")
    for name in ("stage", "one by one"):
        ratio = [s / b for s, b in zip(times[name], times["bare"])]
        print(f"  {name} / bare: {statistics.median(ratio):.2f}x (" + ", ".join(f"{r:.2f}" for r in ratio) + ")")


if __name__ == "__main__":
    main()
