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


def _embedding_meta(dims: int, batch: int) -> dict[str, Any]:
    """The publisher's metadata of discogs-effnet-bs64-1 (its batch of 64 patches as `batch`)."""
    return {
        "name": "Discogs-EffNet", "type": "Music style classification and embeddings", "link": EMBEDDING_LINK,
        "version": "1", "description": "Prediction of 400 music styles from the Discogs taxonomy",
        "author": "Pablo Alonso", "email": "pablo.alonso@upf.edu", "release_date": "2022-09-14",
        "framework": "tensorflow", "framework_version": "2.8.0",
        "classes": [f"Style---{i:03d}" for i in range(400)], "model_types": ["frozen_model"],
        "dataset": {"name": "In-house (MTG)", "citation": "", "size": "4M full tracks", "metrics": {}},
        "schema": {
            "inputs": [{"name": "serving_default_melspectrogram", "type": "float", "shape": [batch, 128, 96]}],
            "outputs": [{"name": "PartitionedCall:0", "type": "float", "shape": [batch, 400], "op": "Sigmoid",
                         "output_purpose": "predictions"},
                        {"name": "PartitionedCall:1", "type": "float", "shape": [batch, dims], "op": "Flatten",
                         "output_purpose": "embeddings"}]},
        "citation": "", "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredictEffnetDiscogs"},
    }


def _write_model(folder: Path, name: str, graph: bytes, meta: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pb").write_bytes(graph)
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=4))
    return folder / f"{name}.pb"


def write_embedding_model(folder: Path, name: str = EMBEDDING, seed: int = 0, dims: int = 1280,
                          batch: int | None = None) -> Path:
    """`<name>.pb` and `<name>.json`: the Discogs-EffNet interface over mean mel bands. With `batch`
    the graph takes exactly that many patches per run, like the published bs64 model (a Reshape to
    [batch, 96] fails on any other count), so essentia must pad a crop's last batch."""
    w_act, w_emb = embedding_weights(seed, dims)
    fixed = [] if batch is None else [
        _const("fixed_batch", np.array([batch, 96], dtype=np.int32)),
        _node("pooled_fixed", "Reshape", ["pooled", "fixed_batch"], T=_float_t(), Tshape=_type(DT_INT32))]
    features = "pooled" if batch is None else "pooled_fixed"
    graph = _graph(
        _placeholder("serving_default_melspectrogram", [batch or -1, 128, 96]),
        _const("time_axis", np.array(1, dtype=np.int32)),
        _node("pooled", "Mean", ["serving_default_melspectrogram", "time_axis"], T=_float_t(),
              Tidx=_type(DT_INT32), keep_dims=_int(5, 0)),
        *fixed,
        _const("w_act", w_act), _const("w_emb", w_emb),
        _node("logits", "MatMul", [features, "w_act"], T=_float_t()),
        _node("activations", "Sigmoid", ["logits"], T=_float_t()),
        _node("embeddings", "MatMul", [features, "w_emb"], T=_float_t()),
        _node("PartitionedCall", "IdentityN", ["activations", "embeddings"],
              T=_bytes(1, _bytes(6, bytes([DT_FLOAT, DT_FLOAT])))),
    )
    return _write_model(folder, name, graph, _embedding_meta(dims, batch or 64))


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
    _write_model(folder, name, graph, meta)
    return w, b


# --- an embedding model the size of the real one ------------------------------------------------

# EfficientNet-B0 (Tan & Le 2019), the architecture of Discogs-EffNet: (expansion, kernel, stride,
# output channels, repeats) per stage, after a 3x3 stride-2 stem of 32 channels; a 1x1 head of 1280.
EFFNET_B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
             (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


def _ints(field: int, values: list[int]) -> bytes:  # AttrValue.list (ListValue.i) or .s for strings
    return _bytes(1, b"".join(_int(3, v) for v in values))


class _Net:
    """Nodes of a convolutional graph (NHWC) with random He-scaled weights, batch norm folded into
    biases (as in a frozen graph), swish activations."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[bytes] = []
        self.parameters = 0

    def _weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        value = (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        self.nodes.append(_const(name, value))
        self.parameters += value.size
        return name

    def conv(self, name: str, x: str, cin: int, cout: int, kernel: int = 1, stride: int = 1,
             depthwise: bool = False) -> str:
        shape = (kernel, kernel, cin, 1) if depthwise else (kernel, kernel, cin, cout)
        w = self._weight(f"{name}/kernel", shape, kernel * kernel * (1 if depthwise else cin))
        op = "DepthwiseConv2dNative" if depthwise else "Conv2D"
        self.nodes.append(_node(f"{name}/conv", op, [x, w], T=_float_t(), strides=_ints(1, [1, stride, stride, 1]),
                                padding=_bytes(2, "SAME")))
        b = self._weight(f"{name}/bias", (cout,), 1e6)  # folded batch norm: a near-zero bias
        self.nodes.append(_node(f"{name}/out", "BiasAdd", [f"{name}/conv", b], T=_float_t()))
        return f"{name}/out"

    def swish(self, x: str) -> str:
        self.nodes.append(_node(f"{x}/sigmoid", "Sigmoid", [x], T=_float_t()))
        self.nodes.append(_node(f"{x}/swish", "Mul", [x, f"{x}/sigmoid"], T=_float_t()))
        return f"{x}/swish"

    def mean(self, name: str, x: str, axes: list[int], keep_dims: bool) -> str:
        self.nodes.append(_const(f"{name}/axes", np.array(axes, dtype=np.int32)))
        self.nodes.append(_node(name, "Mean", [x, f"{name}/axes"], T=_float_t(), Tidx=_type(DT_INT32),
                                keep_dims=_int(5, int(keep_dims))))
        return name

    def block(self, name: str, x: str, cin: int, cout: int, expansion: int, kernel: int, stride: int) -> str:
        """An MBConv block: 1x1 expansion, depthwise conv, squeeze-and-excitation, 1x1 projection."""
        wide = cin * expansion
        h = self.swish(self.conv(f"{name}/expand", x, cin, wide)) if expansion != 1 else x
        h = self.swish(self.conv(f"{name}/depthwise", h, wide, wide, kernel, stride, depthwise=True))
        squeezed = self.swish(self.conv(f"{name}/se_reduce", self.mean(f"{name}/se_pool", h, [1, 2], True),
                                        wide, max(1, cin // 4)))
        gate = self.conv(f"{name}/se_expand", squeezed, max(1, cin // 4), wide)
        self.nodes.append(_node(f"{name}/se_gate", "Sigmoid", [gate], T=_float_t()))
        self.nodes.append(_node(f"{name}/se", "Mul", [h, f"{name}/se_gate"], T=_float_t()))
        out = self.conv(f"{name}/project", f"{name}/se", wide, cout)
        if stride == 1 and cin == cout:
            self.nodes.append(_node(f"{name}/residual", "AddV2", [out, x], T=_float_t()))
            return f"{name}/residual"
        return out


def write_effnet_b0_model(folder: Path, name: str = EMBEDDING, seed: int = 0, batch: int = 64) -> int:
    """`<name>.pb` and `<name>.json`: the Discogs-EffNet interface (same nodes, same fixed batch of
    64 patches of 128 x 96 mel bands) over an EfficientNet-B0 with random weights: it costs what the
    real model costs to run but predicts nothing. Returns the number of parameters."""
    net = _Net(seed)
    net.nodes.append(_placeholder("serving_default_melspectrogram", [batch, 128, 96]))
    net.nodes.append(_const("channel_axis", np.array(-1, dtype=np.int32)))
    net.nodes.append(_node("image", "ExpandDims", ["serving_default_melspectrogram", "channel_axis"], T=_float_t(),
                           Tdim=_type(DT_INT32)))
    x, channels = net.swish(net.conv("stem", "image", 1, 32, 3, 2)), 32
    for stage, (expansion, kernel, stride, out, repeats) in enumerate(EFFNET_B0):
        for i in range(repeats):
            x = net.block(f"block{stage + 1}{chr(97 + i)}", x, channels, out, expansion, kernel, stride if i == 0 else 1)
            channels = out
    x = net.swish(net.conv("top", x, channels, 1280))
    embeddings = net.mean("avg_pool", x, [1, 2], False)
    w = net._weight("dense/kernel", (1280, 400), 1280)
    net.nodes.append(_node("dense/MatMul", "MatMul", [embeddings, w], T=_float_t()))
    net.nodes.append(_node("activations", "Sigmoid", ["dense/MatMul"], T=_float_t()))
    net.nodes.append(_node("PartitionedCall", "IdentityN", ["activations", embeddings],
                           T=_bytes(1, _bytes(6, bytes([DT_FLOAT, DT_FLOAT])))))
    _write_model(folder, name, _graph(*net.nodes), _embedding_meta(1280, batch))
    return net.parameters


def sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))
