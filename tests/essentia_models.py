"""Tiny TensorFlow graphs with the real essentia models' node names and shapes, and their metadata
JSON in the publisher's format (essentia.upf.edu/models), for testing the classify stage's real
loading and prediction code without the real weights.

The graphs are frozen GraphDefs written with a few lines of protobuf wire format (neither
tensorflow nor tensorboard's bundled protobuf classes are installed in this venv): the embedding
model is the Discogs-EffNet interface (`serving_default_melspectrogram` [-1, 128, 96] in,
`PartitionedCall:0` activations [-1, 400] and `PartitionedCall:1` embeddings [-1, 1280] out) over a
mean of the mel bands and two random projections; a head is a random dense layer with a sigmoid
(or softmax), input and output nodes as its metadata says. essentia's own loaders run them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

EMBEDDING = "discogs-effnet-bs64-1"
EMBEDDING_LINK = "https://essentia.upf.edu/models/feature-extractors/discogs-effnet/discogs-effnet-bs64-1.pb"
DT_FLOAT, DT_INT32 = 1, 3


# --- protobuf wire format ------------------------------------------------------------------------

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64: ten bytes of two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _key(field, 2) + _varint(len(data)) + data


def _shape(dims: list[int]) -> bytes:  # TensorShapeProto: dim = 2 (Dim.size = 1)
    return b"".join(_bytes(2, _int(1, d)) for d in dims)


def _tensor(array: np.ndarray) -> bytes:  # TensorProto: dtype 1, tensor_shape 2, tensor_content 4
    dtype = DT_FLOAT if array.dtype == np.float32 else DT_INT32
    return _int(1, dtype) + _bytes(2, _shape(list(array.shape))) + _bytes(4, array.tobytes())


def _attr(name: str, value: bytes) -> bytes:  # map<string, AttrValue> entry
    return _bytes(5, _bytes(1, name) + _bytes(2, value))


def _type(dtype: int) -> bytes:
    return _int(6, dtype)  # AttrValue.type


def _node(name: str, op: str, inputs: list[str] = (), **attrs: bytes) -> bytes:  # type: ignore[assignment]
    body = _bytes(1, name) + _bytes(2, op) + b"".join(_bytes(3, i) for i in inputs)
    return _bytes(1, body + b"".join(_attr(k, v) for k, v in attrs.items()))  # GraphDef.node = 1


def _placeholder(name: str, dims: list[int]) -> bytes:
    return _node(name, "Placeholder", dtype=_type(DT_FLOAT), shape=_bytes(7, _shape(dims)))


def _const(name: str, array: np.ndarray) -> bytes:
    dtype = DT_FLOAT if array.dtype == np.float32 else DT_INT32
    return _node(name, "Const", dtype=_type(dtype), value=_bytes(8, _tensor(array)))


def _graph(*nodes: bytes) -> bytes:
    return b"".join(nodes) + _bytes(4, _int(1, 27))  # versions.producer


def _float_t() -> bytes:
    return _type(DT_FLOAT)


# --- the models ----------------------------------------------------------------------------------

def embedding_weights(seed: int = 0, dims: int = 1280) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((96, 400)).astype(np.float32) * 0.1,
            rng.standard_normal((96, dims)).astype(np.float32) * 0.1)


def write_embedding_model(folder: Path, name: str = EMBEDDING, seed: int = 0, dims: int = 1280) -> Path:
    """`<name>.pb` and `<name>.json`: the Discogs-EffNet interface over mean mel bands."""
    w_act, w_emb = embedding_weights(seed, dims)
    graph = _graph(
        _placeholder("serving_default_melspectrogram", [-1, 128, 96]),
        _const("time_axis", np.array(1, dtype=np.int32)),
        _node("pooled", "Mean", ["serving_default_melspectrogram", "time_axis"], T=_float_t(),
              Tidx=_type(DT_INT32), keep_dims=_int(5, 0)),
        _const("w_act", w_act), _const("w_emb", w_emb),
        _node("logits", "MatMul", ["pooled", "w_act"], T=_float_t()),
        _node("activations", "Sigmoid", ["logits"], T=_float_t()),
        _node("embeddings", "MatMul", ["pooled", "w_emb"], T=_float_t()),
        _node("PartitionedCall", "IdentityN", ["activations", "embeddings"],
              T=_bytes(1, _bytes(6, bytes([DT_FLOAT, DT_FLOAT])))),
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pb").write_bytes(graph)
    meta = {
        "name": "Discogs-EffNet", "type": "Music style classification and embeddings", "link": EMBEDDING_LINK,
        "version": "1", "description": "Prediction of 400 music styles from the Discogs taxonomy",
        "author": "Pablo Alonso", "email": "pablo.alonso@upf.edu", "release_date": "2022-09-14",
        "framework": "tensorflow", "framework_version": "2.8.0",
        "classes": [f"Style---{i:03d}" for i in range(400)], "model_types": ["frozen_model"],
        "dataset": {"name": "In-house (MTG)", "citation": "", "size": "4M full tracks", "metrics": {}},
        "schema": {
            "inputs": [{"name": "serving_default_melspectrogram", "type": "float", "shape": [64, 128, 96]}],
            "outputs": [{"name": "PartitionedCall:0", "type": "float", "shape": [64, 400], "op": "Sigmoid",
                         "output_purpose": "predictions"},
                        {"name": "PartitionedCall:1", "type": "float", "shape": [64, dims], "op": "Flatten",
                         "output_purpose": "embeddings"}]},
        "citation": "", "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredictEffnetDiscogs"},
    }
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=4))
    return folder / f"{name}.pb"


def head_weights(classes: int, seed: int, dims: int = 1280, bias: dict[int, float] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((dims, classes)).astype(np.float32) * 0.05
    b = np.zeros(classes, dtype=np.float32)
    for index, value in (bias or {}).items():
        b[index] = value
    return w, b


def write_head(folder: Path, name: str, classes: list[str], *, seed: int = 1, dims: int = 1280,
               input_node: str = "model/Placeholder", output_node: str = "model/Sigmoid",
               op: str = "Sigmoid", embedding_model: str = EMBEDDING, bias: dict[int, float] | None = None,
               type_: str = "multi-label classifier") -> tuple[np.ndarray, np.ndarray]:
    """`<name>.pb` and `<name>.json` of a classification head; returns its (weights, bias)."""
    w, b = head_weights(len(classes), seed, dims, bias)
    graph = _graph(
        _placeholder(input_node, [-1, dims]),
        _const("model/dense/kernel", w), _const("model/dense/bias", b),
        _node("model/dense/MatMul", "MatMul", [input_node, "model/dense/kernel"], T=_float_t()),
        _node("model/dense/BiasAdd", "BiasAdd", ["model/dense/MatMul", "model/dense/bias"], T=_float_t()),
        _node(output_node.split(":")[0], op, ["model/dense/BiasAdd"], T=_float_t()),  # "X:0": X's first output
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pb").write_bytes(graph)
    family = name.rsplit("-discogs-effnet", 1)[0]
    meta = {
        "name": family, "type": type_,
        "link": f"https://essentia.upf.edu/models/classification-heads/{family}/{name}.pb",
        "version": "1", "description": f"classification head {family}", "author": "Pablo Alonso",
        "email": "pablo.alonso@upf.edu", "release_date": "2023-05-10", "framework": "tensorflow",
        "framework_version": "2.8.0", "classes": classes, "model_types": ["frozen_model"],
        "dataset": {"name": family, "citation": "", "size": "", "metrics": {}},
        "schema": {"inputs": [{"name": input_node, "type": "float", "shape": [dims]}],
                   "outputs": [{"name": output_node, "type": "float", "shape": [1, len(classes)], "op": op,
                                "output_purpose": "predictions"}]},
        "citation": "",
        "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredict2D",
                      "embedding_model": {"algorithm": "TensorflowPredictEffnetDiscogs", "model_name": embedding_model,
                                          "link": EMBEDDING_LINK}},
    }
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=4))
    return w, b


def sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))
