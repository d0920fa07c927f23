"""stems (per track): drums / bass / other / vocals (the model's sources) with demucs 4.1.

The model is loaded once per worker through demucs's own loader (`get_model(name, repo=...)`),
from a configured model repository (demucs's `--repo` layout) or demucs's default caches; it is
never downloaded by a run. Each track is separated in bounded memory (etl/stages/stems/separation.py streams
demucs's segment loop), written under temporary names and renamed to
<data_dir>/stems/<track_id[:2]>/<track_id>/<stem>.<format>; `track_stems` records each stem's path,
loudness, peak, RMS and crest factor, and whether it is effectively empty (optionally folded
into `other`).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.dsp import sourcefile
from etl.dsp.torch_device import pick_device
from etl.engine import artifacts
from etl.engine.catalog import not_installed
from etl.engine.config import added_later, not_hashed, ranged
from etl.engine.errors import ConfigError, SkipItem
from etl.engine.stage import Read, Reason, Stage
from etl.engine.tables import Rows, Write
from etl.engine.worker_model import WorkerModel
from etl.stages.stems import models as demucs_models

FORMATS = ("flac", "wav", "mp3")
CLIP_MODES = ("rescale", "clamp", "tanh", "none")
INSTALL = "pip install 'music-etl[stems]' (torch==2.13.0 and demucs==4.1.0; pin torch: unpinned it pulls a CUDA build)"


@dataclass(frozen=True)
class Params:
    model: str = "htdemucs"          # a demucs model (bag) name or signature
    repo: str = not_hashed("")       # a model repository folder (demucs --repo layout); "": demucs's caches, then
    #                                  <models dir>/demucs (`etl models fetch`)
    #                                  not hashed: the model files themselves are (model_files)
    shifts: int = ranged(1, 0, 100)  # random-shift passes averaged (demucs's shift trick; 0: none)
    segment: float = ranged(0.0, 0, 3600)  # seconds per model call; 0: the model's own (7.8 s for htdemucs)
    overlap: float = ranged(0.25, 0, 0.99)  # overlap of consecutive segments
    clip: str = "rescale"            # rescale | clamp | tanh | none (demucs's clip modes)
    format: str = "flac"             # flac | wav | mp3
    bits: int = ranged(16, 16, 24)  # flac / wav sample depth: 16 or 24
    mp3_bitrate_kbps: int = ranged(128, 8, 320)
    sample_rate: int = ranged(0, 8000, 384000, also=(0,))  # 0: the source's rate; else resampled (polyphase)
    empty_peak_dbfs: float = ranged(-40.0, -200, 0)  # a stem is effectively empty when its peak is below this...
    empty_rms_dbfs: float = ranged(-60.0, -200, 0)  # ...or its RMS is below this...
    empty_crest_db: float = ranged(40.0, 0, 200)  # ...or its peak stands this far above its RMS (a few stray spikes)
    fold_empty: bool = False         # add empty stems into `other` instead of writing them
    seed: int = ranged(0, 0, 2**32 - 1)  # random shifts are drawn from this seed per track (reproducible)
    device: str = not_hashed("auto")  # auto | cpu | cuda | cuda:N | mps
    threads: int = ranged(0, 0, 1024, hashed=False)  # torch threads per worker; 0: torch's default
    # Tracks whose source provides its stems (a multitrack source) are skipped; true separates them
    # too, keeping both (source 'demucs' beside 'provided') with each stem's SDR against the real one.
    separate_provided: bool = added_later(False)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"[stems] format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if self.clip not in CLIP_MODES:
            raise ConfigError(f"[stems] clip must be one of {', '.join(CLIP_MODES)}, not {self.clip!r}")
        if self.bits not in (16, 24):
            raise ConfigError("[stems] bits must be 16 or 24")
        if not 0 <= self.overlap < 1 or self.shifts < 0 or self.segment < 0 or self.sample_rate < 0:
            raise ConfigError("[stems] overlap must be in [0, 1); shifts, segment and sample_rate not negative")


def unavailable(params: Params) -> str | None:
    missing = [m for m in ("torch", "demucs") if importlib.util.find_spec(m) is None]
    if missing:
        return Reason(f"{' and '.join(missing)} not installed: {INSTALL}",
                      f"{' and '.join(missing)} not installed — `etl models` says how")
    found = demucs_models.find_model(params.model, params.repo)
    if not found.found:
        return Reason(f"{found.problem}; to install it: {demucs_models.install_hint(params.model, params.repo)}",
                      not_installed("stems", params.model))
    return None


def models(params: Params, checksums: bool = True) -> list[dict[str, Any]]:
    """What `etl models` shows for this stage."""
    found = demucs_models.find_model(params.model, params.repo)
    return [{"model": params.model, "library": "demucs 4.1", "found": found.found, "where": found.where,
             "files": found.describe(checksums),
             "licence": f"not known (a model of your repository {params.repo})" if params.repo else demucs_models.LICENCE,
             "problem": found.problem, "install": unavailable(params) and demucs_models.install_hint(
                 params.model, params.repo)}]


def load_model(params: Params) -> tuple[Any, Any]:
    # The hub is never asked: a model in its cache loads offline at once (see `unavailable`).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from demucs.pretrained import get_model

    if params.threads:
        torch.set_num_threads(params.threads)
    repo = demucs_models.find_model(params.model, params.repo).repo  # the caches, or a folder of files
    model = get_model(params.model, repo=Path(repo).expanduser() if repo else None)
    device = pick_device(params.device)
    model.to(device)
    model.eval()
    return model, device


def model_files(params: Params) -> list[str]:
    """The bag's yaml and weights: new weights under the same name re-queue the tracks."""
    return [str(path) for path in demucs_models.find_model(params.model, params.repo).files]


_model = WorkerModel(load_model, lambda params: (params.model, params.repo, params.device), files=model_files)


def init_worker(params: Params) -> None:
    """Load the model once per worker process."""
    _model.init(params)


def options(params: Params) -> Any:
    from etl.stages.stems.separation import StemOptions

    return StemOptions(format=params.format, bits=params.bits, mp3_bitrate_kbps=params.mp3_bitrate_kbps,
                       sample_rate=params.sample_rate, clip=params.clip, empty_peak_dbfs=params.empty_peak_dbfs,
                       empty_rms_dbfs=params.empty_rms_dbfs, empty_crest_db=params.empty_crest_db,
                       fold_empty=params.fold_empty)


PROVIDED = "stems provided by the source"


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    import random

    from etl.dsp.sdr import sdr_files
    from etl.stages.stems.separation import separate_track

    provided = {s["stem"]: s for s in item.get("provided") or []}
    if provided and not params.separate_provided:
        raise SkipItem(f"{PROVIDED} ([stems] separate_provided = true separates them too)")
    model, device = _model.get(params)
    track_id = item["item_id"]
    folder = Path(item["artifact_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    with sourcefile.unchanged(item["source"]) as path:
        rows = separate_track(path, folder, model, device, shifts=params.shifts, overlap=params.overlap,
                              segment=params.segment, options=options(params),
                              rng=random.Random(f"{params.seed}:{track_id}"))
    for row in rows:  # separated beside the real stems: how close each one came
        real = provided.get(row["stem"])
        if real is not None and row["path"]:
            if real.get("file"):
                sourcefile.check(real["file"])
            row["sdr_db"] = round(sdr_files(real["path"], row["path"]), 4)
    return {"stems": rows}


def files(result: dict[str, Any]) -> list[str]:
    return [row["path"] for row in result["stems"] if row["path"]]


def outputs(result: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """The stems' rows with their content hashes (a path only repeats the hash)."""
    return {item["item_id"]: [{k: v for k, v in row.items() if k != "path"} for row in result["stems"]]}


write = Write(rows=(Rows("new_stems", "track_stems", lambda o, params: [
                  {"track_id": o.item_id, **row, "path": row["path"] and artifacts.store_path(row["path"]),
                   "source": "demucs"} for row in o.result["stems"]]),),
              statements=("insert_stems",), binds=lambda params: {"model": params.model})


STAGE = Stage(
    name="stems",
    description="drums / bass / other / vocals stems with demucs",
    process=process,
    write=write,
    reads=(Read("ingest", "track_id"), Read("multitrack", "track_id", optional=True),
           Read("multitrack", "stems_key", optional=True)),
    presence=True,
    outputs=outputs,
    files=files,
    Params=Params,
    init_worker=init_worker,
    unavailable=unavailable,
    models=models,
    model_files=model_files,
    artifacts=True,
    batch_size=4,
)
