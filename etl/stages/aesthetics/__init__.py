"""aesthetics (per crop): Meta's AudioBox Aesthetics scores — content enjoyment (CE), content
usefulness (CU), production complexity (PC) and production quality (PQ), on the model's 1–10 scale.

The checkpoint (`checkpoint.pt`, `etl models fetch audiobox-aesthetics`) is loaded once per worker
into the `audiobox-aesthetics` package's own model class; each crop is read, downmixed to mono and
resampled to 16 kHz with etl.dsp.audio, and scored over 10 s windows exactly as the package's
reference inference does (etl/stages/aesthetics/model.py). The crops of a pool task go through the model
together (`process_batch`, `crops_per_batch` per task). Without the package or the checkpoint the
stage is skipped, with how to install them; no score is ever stored that did not come out of the model.

Stored in `crop_aesthetics` (aes_ce, aes_cu, aes_pc, aes_pq, the window count and the checkpoint
file's sha256), shown in `crops_v`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.engine.config import not_hashed, ranged
from etl.engine.errors import BadInput, ConfigError
from etl.engine.catalog import not_installed
from etl.engine.stage import Read, Reason, Stage
from etl.engine.tables import Rows, Write
from etl.engine.worker_model import WorkerModel

if TYPE_CHECKING:
    import numpy as np

    from etl.stages.aesthetics.model import Aesthetics

MODEL = "audiobox-aesthetics"  # its name in the model catalog (its folder's models.toml)
LIBRARY = "audiobox-aesthetics 0.0.4 (AesMultiOutput)"
LICENCE = ("CC-BY 4.0 (facebookresearch/audiobox-aesthetics: \"the majority ... is licensed under CC-BY 4.0\"; "
           "portions under separate terms, see its README)")
# Its declared torchaudio dependency is a CUDA build that does not import beside CPU torch; the model
# module needs only torch, numpy and huggingface_hub.
INSTALL = "pip install torch==2.13.0 huggingface_hub && pip install --no-deps audiobox-aesthetics==0.0.4"


@dataclass(frozen=True)
class Params:
    # The checkpoint.pt; "": <models dir>/audiobox/checkpoint.pt (where `etl models fetch` puts it). Not
    # hashed: the file itself is (model_files), so new weights re-queue the crops and a move does not.
    checkpoint: str = not_hashed("")
    device: str = not_hashed("auto")  # auto | cpu | cuda | cuda:N | mps
    # Crops per model call (and per pool task). Not `batch_size`: every stage table has that engine
    # key already (items per claim / commit transaction).
    crops_per_batch: int = ranged(8, 1, 4096, hashed=False)
    threads: int = ranged(0, 0, 1024, hashed=False)  # torch threads per worker; 0: torch's default

    def __post_init__(self) -> None:
        if not (self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")):
            raise ConfigError(f"[aesthetics] device must be auto, cpu, cuda, cuda:N or mps, not {self.device!r}")


def checkpoint_path(params: Params) -> Path:
    from etl.engine.catalog import models_dir

    return Path(params.checkpoint).expanduser() if params.checkpoint else models_dir() / "audiobox" / "checkpoint.pt"


def install_hint(params: Params) -> str:
    return (f"`etl models fetch {MODEL}` (into {checkpoint_path(Params())}), or download checkpoint.pt from "
            f"https://huggingface.co/facebook/audiobox-aesthetics and set [aesthetics] checkpoint to its path")


def unavailable(params: Params) -> str | None:
    missing = [m for m in ("torch", "audiobox_aesthetics") if importlib.util.find_spec(m) is None]
    if missing:
        return Reason(f"{' and '.join(missing)} not installed: {INSTALL}",
                      f"{' and '.join(missing)} not installed — `etl models` says how")
    path = checkpoint_path(params)
    if not path.is_file():
        return Reason(f"model {MODEL} not found at {path}; to install it: {install_hint(params)}",
                      not_installed("aesthetics", MODEL))
    return None


def models(params: Params, checksums: bool = True) -> list[dict[str, Any]]:
    """What `etl models` shows for this stage: the checkpoint."""
    path = checkpoint_path(params)
    files: list[dict[str, Any]] = []
    if path.is_file():
        files.append({"path": str(path), "size_bytes": path.stat().st_size,
                      **({"sha256": sha256_of(path)} if checksums else {})})
    return [{"model": MODEL, "library": LIBRARY, "found": path.is_file(), "where": str(path), "files": files,
             "licence": LICENCE, "problem": None if path.is_file() else f"{path} not found",
             "install": None if path.is_file() else install_hint(params)}]


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass
class Loaded:
    model: Aesthetics
    checkpoint_sha256: str  # stored with every score: which weights made it


def load(params: Params) -> Loaded:
    import torch

    from etl.dsp.torch_device import pick_device
    from etl.stages.aesthetics import model

    if params.threads:
        torch.set_num_threads(params.threads)
    path = checkpoint_path(params)
    try:
        loaded = model.load(path, pick_device(params.device))
    except model.CheckpointError as error:
        raise ConfigError(f"[aesthetics] {error}") from None
    return Loaded(loaded, sha256_of(path))


def model_files(params: Params) -> list[str]:
    """The checkpoint: its content is part of every score."""
    return [str(checkpoint_path(params))]


_model = WorkerModel(load, lambda params: (str(checkpoint_path(params)), params.device, params.threads),
                     files=model_files)


def init_worker(params: Params) -> None:
    """Load the checkpoint once per worker process (again when the file changed since)."""
    _model.init(params)


def worker_model(params: Params) -> Loaded:
    """The model this process holds for `params` (loaded on first use)."""
    return _model.get(params)


def read_crop(path: str) -> np.ndarray:
    """The crop as the model takes it: mono, 16 kHz."""
    from etl.dsp import audio
    from etl.stages.aesthetics.model import SAMPLE_RATE

    signal = audio.read_mono_at(path, SAMPLE_RATE)
    if len(signal) == 0:
        raise BadInput("the crop holds no audio")
    return signal


def _result(scores: dict[str, Any], loaded: Loaded) -> dict[str, Any]:
    return {"aes_ce": scores["CE"], "aes_cu": scores["CU"], "aes_pc": scores["PC"], "aes_pq": scores["PQ"],
            "windows": scores["windows"], "checkpoint_sha256": loaded.checkpoint_sha256}


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    from etl.stages.aesthetics.model import score

    loaded = worker_model(params)
    return _result(score(loaded.model, [read_crop(item["path"])])[0], loaded)


def process_batch(items: list[dict[str, Any]], params: Params) -> list[Any]:
    """The crops of a chunk through the model together, `crops_per_batch` at a time. A crop that
    cannot be read fails alone; a model call that raises fails the chunk as a whole (the engine
    then runs its crops one by one through `process`)."""
    from etl.stages.aesthetics.model import score

    loaded = worker_model(params)
    results: list[Any] = []
    signals: dict[int, np.ndarray] = {}
    for index, item in enumerate(items):
        try:
            signals[index] = read_crop(item["path"])
            results.append(None)
        except Exception as error:  # this crop's own failure, classified by the engine
            results.append(error)
    ready = list(signals)
    for start in range(0, len(ready), params.crops_per_batch):
        group = ready[start:start + params.crops_per_batch]
        for index, scores in zip(group, score(loaded.model, [signals[i] for i in group])):
            results[index] = _result(scores, loaded)
    return results


write = Write(rows=(Rows("new_scores", "crop_aesthetics",
                          lambda o, params: [{"crop_id": o.item_id, "track_id": o.item["track_id"], **o.result}]),),
              statements=("insert_scores",))


STAGE = Stage(
    name="aesthetics",
    description="content enjoyment / usefulness, production complexity / quality (Meta's AudioBox Aesthetics)",
    process=process,
    process_batch=process_batch,
    write=write,
    reads=(Read("crops"),),
    Params=Params,
    init_worker=init_worker,
    unavailable=unavailable,
    models=models,
    model_files=model_files,
    batch_size=64,
    chunk_size=lambda params: params.crops_per_batch,
)
