"""Meta's AudioBox Aesthetics model: its checkpoint loaded into the package's own `AesMultiOutput`,
and audio scored the way the package's reference inference (`audiobox_aesthetics/infer.py`, 0.0.4)
scores it. That module imports torchaudio at its top, which cannot be installed beside CPU torch, so
what it does is repeated here, step by step, over the model module alone:

- the checkpoint is `torch.load`ed: `state_dict` (keys prefixed `model.`), `model_cfg` (the
  constructor's settings, of which it passes the nine in `MODEL_CFG_KEYS`) and `target_transform`
  (per axis, the mean and std the model's outputs were normalised with during training);
- the audio is mono at 16 kHz, cut into 10 s windows every 10 s (`make_inference_batch(hop_size=10,
  window_size=10)`); the last, shorter one is zero-padded to 10 s with a padding mask, and every
  window weighs its length / 10 s;
- each axis's outputs are de-normalised (`x * std + mean`) and a file's score is the weighted mean
  over its windows. All windows of the files of a batch go through the model in one call.
"""

from __future__ import annotations

import pickle
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

AXES = ("CE", "CU", "PC", "PQ")  # content enjoyment, content usefulness, production complexity / quality
SAMPLE_RATE = 16000
WINDOW_S = 10  # window and hop of the reference inference
# What the reference loader takes from the checkpoint's `model_cfg` (plus `target_transform`).
MODEL_CFG_KEYS = ("proj_num_layer", "proj_ln", "proj_act_fn", "proj_dropout", "nth_layer",
                  "use_weighted_layer_sum", "precision", "normalize_embed", "output_dim")
# Not in Meta's checkpoint: the package always builds its WavLM encoder from its module-level
# DEFAULT_AUDIO_CFG (WavLM Base+ sized, 95 M parameters). A checkpoint may carry a `wavlm_cfg`
# (WavLMConfig fields) for an encoder of another size: the tests' tiny random model does.
ENCODER_CFG_KEY = "wavlm_cfg"

_encoder_lock = threading.Lock()


@contextmanager
def _quiet() -> Iterator[None]:
    """The package's WavLM uses two torch APIs that now warn on every build / call (weight_norm,
    a bool padding mask beside a float attention bias); same results, noise in every log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*")
        warnings.filterwarnings("ignore", message=".*mismatched key_padding_mask.*")
        yield


@contextmanager
def _encoder_config(overrides: dict[str, Any] | None) -> Iterator[None]:
    """`AesMultiOutput` reads the encoder's config from a module global when it is built; a
    checkpoint's own config stands in for it while its model is built (and only then)."""
    if not overrides:
        yield
        return
    from audiobox_aesthetics.model import aes
    from audiobox_aesthetics.model.wavlm import WavLMConfig

    config = WavLMConfig(vars(aes.DEFAULT_AUDIO_CFG) | dict(overrides))
    with _encoder_lock:
        default, aes.DEFAULT_AUDIO_CFG = aes.DEFAULT_AUDIO_CFG, config
        try:
            yield
        finally:
            aes.DEFAULT_AUDIO_CFG = default


@dataclass
class Aesthetics:
    model: Any                                  # an AesMultiOutput in eval mode, on `device`
    device: Any
    target: dict[str, tuple[float, float]]      # axis -> (mean, std) of the training targets


class CheckpointError(ValueError):
    """A file that is not an AudioBox Aesthetics checkpoint, with what is wrong."""


def load(path: str | Path, device: Any) -> Aesthetics:
    """The checkpoint at `path` as the reference `AesPredictor.setup_model` loads it."""
    import torch
    from audiobox_aesthetics.model.aes import AesMultiOutput

    try:
        with open(path, "rb") as handle:
            checkpoint = torch.load(handle, map_location="cpu", weights_only=True)
        state = {re.sub("^model.", "", key): value for key, value in checkpoint["state_dict"].items()}
        settings = {key: checkpoint["model_cfg"][key] for key in MODEL_CFG_KEYS}
        target = {axis: (float(checkpoint["target_transform"][axis]["mean"]),
                         float(checkpoint["target_transform"][axis]["std"])) for axis in AXES}
    except KeyError as missing:
        raise CheckpointError(f"{path}: not an AudioBox Aesthetics checkpoint (no {missing})") from None
    except (TypeError, AttributeError, ValueError, RuntimeError, EOFError, OSError,
            pickle.UnpicklingError) as error:  # what torch.load raises on other files
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from None
    with _encoder_config(checkpoint.get(ENCODER_CFG_KEY)), _quiet():
        model = AesMultiOutput(**settings, target_transform=checkpoint["target_transform"])
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # missing / unexpected keys, other shapes
        raise CheckpointError(f"{path}: its weights do not fit the model ({str(error).splitlines()[0]})") from None
    model.to(device)
    model.eval()
    return Aesthetics(model, device, target)


def windows(mono16k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference's windows of one signal: (windows, WINDOW_S * 16 kHz samples each, zero-padded),
    their masks (True where there is audio) and weights (each window's audio length / window)."""
    window = WINDOW_S * SAMPLE_RATE
    starts = range(0, len(mono16k), window)  # hop = window
    cut = np.zeros((len(starts), window), dtype=np.float32)
    mask = np.zeros((len(starts), window), dtype=bool)
    weights = np.zeros(len(starts), dtype=np.float32)
    for row, start in enumerate(starts):
        piece = mono16k[start:start + window]
        cut[row, :len(piece)] = piece
        mask[row, :len(piece)] = True
        weights[row] = len(piece) / window
    return cut, mask, weights


def score(model: Aesthetics, signals: list[np.ndarray]) -> list[dict[str, Any]]:
    """Each signal's (mono, 16 kHz, not empty) four scores and its window count; every window of
    every signal in one model call."""
    import torch

    cuts = [windows(signal) for signal in signals]
    owner = np.concatenate([np.full(len(w), index) for index, (w, _, _) in enumerate(cuts)])
    wav = torch.from_numpy(np.concatenate([w for w, _, _ in cuts]))[:, None, :].to(model.device)
    mask = torch.from_numpy(np.concatenate([m for _, m, _ in cuts]))[:, None, :].to(model.device)
    weights = torch.from_numpy(np.concatenate([w for _, _, w in cuts])).to(model.device)
    owner_t = torch.from_numpy(owner).to(model.device)
    with torch.inference_mode(), _quiet():
        predicted = model.model({"wav": wav, "mask": mask})
        rows: list[dict[str, Any]] = [{"windows": len(w)} for w, _, _ in cuts]
        for axis in AXES:
            mean, std = model.target[axis]
            values = predicted[axis] * std + mean
            for index, row in enumerate(rows):
                mine = owner_t == index
                row[axis] = float((values[mine] * weights[mine]).sum() / weights[mine].sum())
    return rows
