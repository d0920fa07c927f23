"""Randomly initialised AudioBox Aesthetics models, built with the `audiobox-aesthetics` package's
own classes and saved in the checkpoint format its reference loader reads (`state_dict` with keys
prefixed `model.`, `model_cfg`, `target_transform`), so tests run the stage's real loading and
scoring code. Their scores mean nothing; they are not stored anywhere but in a test's own store.

`tiny` keeps the package's WavLM structure (conv front end with a total stride of 320 samples,
relative-position attention, the weighted layer sum, one MLP head per axis) at a few thousand
parameters, its encoder settings saved under the checkpoint's `wavlm_cfg`; `full` is the package's
default encoder (WavLM Base+ size, 95 M parameters), the shape of Meta's released checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXES = ("CE", "CU", "PC", "PQ")

TINY_ENCODER: dict[str, Any] = {
    "encoder_layers": 2,
    "encoder_embed_dim": 16,
    "encoder_ffn_embed_dim": 32,
    "encoder_attention_heads": 2,
    # Same kernels and strides as the real front end (320 samples per frame at 16 kHz), 8 channels.
    "conv_feature_layers": "[(8,10,5)] + [(8,3,2)] * 4 + [(8,2,2)] * 2",
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "num_buckets": 32,
    "max_distance": 100,
}

# Per-axis training statistics the outputs are de-normalised with (the real ones are near these).
TARGET = {"CE": {"mean": 5.6, "std": 1.4}, "CU": {"mean": 6.1, "std": 1.6},
          "PC": {"mean": 4.2, "std": 1.9}, "PQ": {"mean": 6.6, "std": 1.5}}

# The constructor settings the reference loader reads, as a trained checkpoint has them, plus
# training-only keys it ignores (a real `model_cfg` carries more than it reads).
MODEL_CFG: dict[str, Any] = {"proj_num_layer": 2, "proj_ln": True, "proj_act_fn": "gelu", "proj_dropout": 0.1,
                             "use_weighted_layer_sum": True, "precision": "32", "normalize_embed": True,
                             "output_dim": 1, "freeze_encoder": True, "lr": 1e-4}


def build(encoder: dict[str, Any] | None, seed: int = 0) -> Any:
    """A randomly initialised AesMultiOutput (in eval mode) with the given encoder settings."""
    import torch
    from audiobox_aesthetics.model.aes import AesMultiOutput

    from etl.stages.aesthetics.model import _encoder_config, _quiet

    torch.manual_seed(seed)
    layers = (encoder or {}).get("encoder_layers", 12)
    with _encoder_config(encoder), _quiet():
        model = AesMultiOutput(**_settings(layers), target_transform=TARGET)
    # Random layer weights and heads, so each axis differs (the package starts them uniform).
    with torch.no_grad():
        for name in AXES:
            model.layer_weights[name].normal_(0, 1)
    return model.eval()


def _settings(layers: int) -> dict[str, Any]:
    # The reference reads nth_layer too: every layer result, the encoder's input included.
    return {k: v for k, v in MODEL_CFG.items() if k not in ("freeze_encoder", "lr")} | {"nth_layer": layers + 1}


def save(model: Any, path: Path, encoder: dict[str, Any] | None) -> Path:
    """`model` as a checkpoint the reference loader reads."""
    import torch

    layers = (encoder or {}).get("encoder_layers", 12)
    checkpoint: dict[str, Any] = {
        "state_dict": {f"model.{key}": value for key, value in model.state_dict().items()},
        "model_cfg": MODEL_CFG | {"nth_layer": layers + 1},
        "target_transform": TARGET,
    }
    if encoder is not None:
        checkpoint["wavlm_cfg"] = encoder
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def tiny(path: Path, seed: int = 0) -> Path:
    return save(build(TINY_ENCODER, seed), path, TINY_ENCODER)


def full(path: Path, seed: int = 0) -> Path:
    return save(build(None, seed), path, None)
