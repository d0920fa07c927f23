"""Randomly initialised demucs models, saved in demucs's model-repository layout.

`get_model(name, repo=folder)` loads them with demucs's own code, as it would real weights: a
`<sig>-<checksum>.th` file written by `demucs.states.save_with_checksum` and a bag `<name>.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SOURCES = ["drums", "bass", "other", "vocals"]
# The tiny model of ../shared/DEPENDENCIES.md (~105k parameters): fast enough for tests.
TINY = {"segment": 4, "channels": 4, "depth": 4, "t_layers": 1, "t_heads": 2, "dconv_comp": 2}
# htdemucs's published hyper-parameters: 41,984,456 parameters, the real model's cost.
FULL = {"bottom_channels": 512, "dconv_mode": 3, "t_layers": 5}


def write_random_model(folder: Path, name: str = "tiny", seed: int = 0, **hyper: Any) -> Path:
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import save_with_checksum

    hyper = hyper or dict(TINY)
    if "segment" not in hyper:
        from fractions import Fraction

        hyper["segment"] = Fraction(39, 5)
    torch.manual_seed(seed)
    kwargs = {"sources": SOURCES, **hyper}
    model = HTDemucs(**kwargs)
    folder.mkdir(parents=True, exist_ok=True)
    sig = f"{name}sig"
    save_with_checksum({"klass": HTDemucs, "args": (), "kwargs": kwargs, "state": model.state_dict()},
                       folder / f"{sig}.th")
    (folder / f"{name}.yaml").write_text(f"models: ['{sig}']\nsegment: {float(hyper['segment'])}\n")
    return folder
