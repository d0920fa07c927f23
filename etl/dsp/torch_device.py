"""The torch device a `device` setting names: "auto" takes CUDA, then Apple's MPS, then the CPU.
The stems and aesthetics stages load their models onto it."""

from __future__ import annotations

from typing import Any


def pick_device(name: str) -> Any:
    import torch

    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
