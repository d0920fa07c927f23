"""essentia-tensorflow models on disk: the embedding model and the classification heads, each a
frozen graph `<name>.pb` beside its publisher's metadata `<name>.json` (essentia.upf.edu/models).

Everything the stage needs to run a model comes from that metadata: the embedding output node (the
output whose `output_purpose` is "embeddings"), a head's input and output nodes, its labels
(`classes`) and the embedding model it was trained on (`inference.embedding_model.model_name`).
A head trained on another embedding, or expecting another embedding size, is refused with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBFOLDER = "essentia"  # under the models directory: where `etl models fetch` puts these (the catalog's folder)
PUBLISHER = "https://essentia.upf.edu/models/"
LICENCE = "CC BY-NC-SA 4.0 (essentia.upf.edu/models)"
EMBEDDING_URL = PUBLISHER + "feature-extractors/discogs-effnet/{name}.pb"


def folder(model_dir: str) -> Path:
    from etl.engine.catalog import models_dir

    return Path(model_dir).expanduser() if model_dir else models_dir() / SUBFOLDER


def install_hint(name: str, model_dir: str) -> str:
    from etl.engine.catalog import providing

    url = EMBEDDING_URL.format(name=name) if name.startswith("discogs-effnet") else PUBLISHER
    known = providing("classify", name)
    fetch = f", or `etl models fetch {known.name}`" if known else ""
    return (f"put {name}.pb and {name}.json (from {url.removesuffix('.pb')}.pb and .json, {PUBLISHER}) "
            f"into {folder(model_dir)} ([classify] model_dir){fetch}")


def files(model_dir: str, name: str) -> tuple[Path, Path]:
    """A model's frozen graph and its metadata."""
    graph = folder(model_dir) / f"{name}.pb"
    return graph, graph.with_suffix(".json")


@dataclass
class Model:
    name: str
    graph: Path
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def found(self) -> bool:
        return self.problem is None

    def describe(self) -> list[dict[str, Any]]:
        return [{"path": str(p), "size_bytes": p.stat().st_size if p.exists() else None}
                for p in (self.graph, self.graph.with_suffix(".json"))]


def load(model_dir: str, name: str) -> Model:
    """The model `name` in `model_dir`, with its metadata, or the reason it cannot be used."""
    graph, meta_path = files(model_dir, name)
    model = Model(name, graph)
    if not graph.is_file():
        model.problem = f"{graph} not found"
    elif not meta_path.is_file():
        model.problem = f"{meta_path} not found (a model's labels and node names come from its metadata)"
    else:
        try:
            model.meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as error:
            model.problem = f"{meta_path} is not readable JSON ({error})"
    return model


def _outputs(meta: dict[str, Any]) -> list[dict[str, Any]]:
    return list((meta.get("schema") or {}).get("outputs") or [])


def embedding_output(model: Model) -> tuple[str, int]:
    """(node, size) of the embedding model's embeddings output."""
    for output in _outputs(model.meta):
        if output.get("output_purpose") == "embeddings":
            return output["name"], int(output["shape"][-1])
    raise ValueError(f"{model.graph.with_suffix('.json')} names no output with output_purpose 'embeddings'")


def embedding_input(model: Model) -> str:
    inputs = (model.meta.get("schema") or {}).get("inputs") or []
    return inputs[0]["name"] if inputs else "serving_default_melspectrogram"


def embedding_batch(model: Model) -> int | None:
    """The fixed number of patches the embedding model takes a run: its input's first dimension in the
    metadata (64 for the published discogs-effnet-bs64 models); None where that says any (-1, 0 or
    null). Metadata without a usable one gets 64: TensorflowPredictEffnetDiscogs pads every model to 64."""
    inputs = (model.meta.get("schema") or {}).get("inputs") or []
    shape = (inputs[0].get("shape") if inputs else None) or [64]
    first = shape[0]
    if first is None or first in (-1, 0):
        return None
    return first if type(first) is int and first > 0 else 64


@dataclass(frozen=True)
class Head:
    name: str
    graph: str
    input: str
    output: str
    labels: tuple[str, ...]


def head(model: Model, embedding: str, embedding_size: int) -> Head:
    """A head ready to run on `embedding`'s output; ValueError with the reason when it cannot."""
    if not model.found:
        raise ValueError(model.problem)
    meta = model.meta
    inference = meta.get("inference") or {}
    trained_on = (inference.get("embedding_model") or {}).get("model_name")
    if trained_on != embedding:
        raise ValueError(f"head {model.name} was trained on embedding model {trained_on or '(not stated)'}, "
                         f"not {embedding} (its metadata's inference.embedding_model)")
    inputs = (meta.get("schema") or {}).get("inputs") or []
    outputs = [o for o in _outputs(meta) if o.get("output_purpose", "predictions") == "predictions"]
    labels = meta.get("classes")
    if not inputs or not outputs or not labels:
        raise ValueError(f"head {model.name}: its metadata lacks schema inputs, a predictions output or classes")
    expects = int(inputs[0].get("shape", [embedding_size])[-1])
    if expects != embedding_size:
        raise ValueError(f"head {model.name} takes {expects}-dimensional input, {embedding} gives {embedding_size}")
    return Head(model.name, str(model.graph), inputs[0]["name"], outputs[0]["name"], tuple(map(str, labels)))


def installed_heads(model_dir: str) -> list[str]:
    """The classification heads in `model_dir`: metadata whose inference algorithm is TensorflowPredict2D."""
    names = []
    for meta_path in sorted(folder(model_dir).glob("*.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if (meta.get("inference") or {}).get("algorithm") == "TensorflowPredict2D" \
                and meta_path.with_suffix(".pb").is_file():
            names.append(meta_path.stem)
    return names
