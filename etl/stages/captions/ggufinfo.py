"""What a GGUF file is, read from its header: a language model or a multimodal projector, its
architecture, whether a projector has an audio encoder, whether a model carries a chat template. The
stage checks its configured files with this before any model is loaded (and `etl status` on every
call), so a wrong file gets a sentence saying what it is instead of a crash inside llama.cpp.

The header is read here rather than with the `gguf` package's GGUFReader, which parses every array
element: gemma-3's 262,144-token vocabulary took it 35 s. This reads the scalar keys and steps over
arrays (fixed-size elements in one jump, strings by their lengths): milliseconds.

After the keys come the tensors' descriptions (name, dimensions, type, offset into the data that
starts at the next `general.alignment` boundary). Their extents say how long the file must be: a
download or copy that stopped inside the weights keeps an intact header, passed every check above,
and failed only in the worker, inside llama.cpp ("tensor data is not within the file bounds"). Here
it is a file "truncated" at byte so-and-so, before any model is loaded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAGIC = b"GGUF"


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    architecture: str | None      # general.architecture: "llama", "gemma3", "qwen2", ... or "clip" (a projector)
    name: str | None              # general.name
    has_audio_encoder: bool       # clip.has_audio_encoder (projectors)
    has_vision_encoder: bool      # clip.has_vision_encoder (projectors)
    chat_template: bool           # tokenizer.chat_template present
    data_start: int = 0           # where the tensor data begins (aligned, after the tensor descriptions)
    data_end: int = 0             # where its furthest tensor ends: the file's least size

    @property
    def is_projector(self) -> bool:
        return self.architecture == "clip"


class NotUsable(ValueError):
    """The file cannot serve as what it was configured for; the message says why."""


def is_gguf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == MAGIC


# GGUF value types: struct format of the fixed-size ones; 8 is a string, 9 an array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT, where general.alignment is not set

# ggml tensor types: (elements per block, bytes per block), as ggml.c's type traits (and the gguf
# package's GGML_QUANT_SIZES, which a test compares) give them. A type not listed (newer than this
# table) bounds nothing: its tensor only has to start inside the file.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 40),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}


def _tensor_bytes(kind: int, dims: tuple[int, ...]) -> int:
    """A tensor's size in the file (ggml_nbytes: whole blocks along its first dimension); 0 for a
    type this table does not know."""
    if kind not in GGML_BLOCKS:
        return 0
    per_block, block_bytes = GGML_BLOCKS[kind]
    rows = 1
    for n in dims[1:]:
        rows *= n
    return (dims[0] if dims else 1) // per_block * block_bytes * rows


def header(path: Path) -> dict[str, Any]:
    """The metadata keys of a GGUF file (scalars and strings with their values, arrays as their
    length), plus `(data_start)` and `(data_end)`: where the tensor data begins and where its furthest
    tensor ends. ValueError for a file that ends inside its header or holds an unknown type."""
    import mmap

    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != MAGIC:
            raise ValueError("no GGUF magic")
        version, = struct.unpack_from("<I", data, 4)
        if version < 2:
            raise ValueError(f"GGUF version {version} (llama.cpp reads 2 and later)")
        n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
        offset, keys = 24, {}

        def string(at: int) -> tuple[str, int]:
            length, = struct.unpack_from("<Q", data, at)
            end = at + 8 + length
            if end > len(data):
                raise ValueError("a string runs past the end of the file")
            return data[at + 8:end].decode("utf-8", errors="replace"), end

        for _ in range(n_kv):
            key, offset = string(offset)
            kind, = struct.unpack_from("<I", data, offset)
            offset += 4
            if kind in _SCALARS:
                keys[key], = struct.unpack_from(_SCALARS[kind], data, offset)
                offset += struct.calcsize(_SCALARS[kind])
            elif kind == _STRING:
                keys[key], offset = string(offset)
            elif kind == _ARRAY:
                element, count = struct.unpack_from("<IQ", data, offset)
                offset += 12
                if element in _SCALARS:
                    offset += count * struct.calcsize(_SCALARS[element])
                elif element == _STRING:
                    for _ in range(count):
                        length, = struct.unpack_from("<Q", data, offset)
                        offset += 8 + length
                else:
                    raise ValueError(f"key {key}: an array of type {element}")
                keys[key] = count
            else:
                raise ValueError(f"key {key}: unknown value type {kind}")
        extents = []  # (offset into the data, bytes) of each tensor
        for _ in range(n_tensors):
            name, offset = string(offset)
            n_dims, = struct.unpack_from("<I", data, offset)
            dims = struct.unpack_from(f"<{n_dims}Q", data, offset + 4)
            kind, at = struct.unpack_from("<IQ", data, offset + 4 + 8 * n_dims)
            offset += 4 + 8 * n_dims + 12
            extents.append((at, _tensor_bytes(kind, dims)))
        alignment = keys.get("general.alignment") or DEFAULT_ALIGNMENT
        keys["(data_start)"] = start = -(-offset // alignment) * alignment
        keys["(data_end)"] = start + max((at + size for at, size in extents), default=0)
        return keys


def read(path: str | Path) -> GgufInfo:
    """The header facts of a GGUF file; NotUsable for a missing file or one that is not GGUF."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise NotUsable(f"{path} not found")
    if not is_gguf(path):
        raise NotUsable(f"{path} is not a GGUF file (it does not start with the GGUF magic)")
    try:
        keys = header(path)
        size = path.stat().st_size
    except (ValueError, struct.error, OSError) as error:
        raise NotUsable(f"{path}: unreadable GGUF header ({error})") from None
    if keys["(data_end)"] > size:
        raise NotUsable(f"{path} is truncated: its tensor data ends at byte {keys['(data_end)']:,} but the file "
                        f"holds {size:,} (a download or copy that stopped? fetch or copy it again)")
    return GgufInfo(path=path, architecture=keys.get("general.architecture"), name=keys.get("general.name"),
                    has_audio_encoder=bool(keys.get("clip.has_audio_encoder")),
                    has_vision_encoder=bool(keys.get("clip.has_vision_encoder")),
                    chat_template="tokenizer.chat_template" in keys,
                    data_start=keys["(data_start)"], data_end=keys["(data_end)"])


def language_model(path: str | Path) -> GgufInfo:
    """The configured model, checked to be a language model (not a projector)."""
    info = read(path)
    if info.is_projector:
        raise NotUsable(f"{info.path} is a multimodal projector (architecture clip), not a language model: "
                        "set it as [captions] projector and the language model as [captions] model")
    return info


def audio_projector(model: GgufInfo, projector: str) -> GgufInfo:
    """The projector the audio backend hears the crop through, checked against what it must be."""
    if not projector:
        raise NotUsable(f"{model.path.name} (architecture {model.architecture}) is a text-only model: the audio "
                        "backend needs an audio-language model and its audio projector file "
                        "([captions] projector = the model's mmproj GGUF), or use [captions] backend = \"text\"")
    info = read(projector)
    if not info.is_projector:
        raise NotUsable(f"{info.path} is a language model (architecture {info.architecture}), not a multimodal "
                        "projector: [captions] projector takes the model's mmproj GGUF")
    if not info.has_audio_encoder:
        raise NotUsable(f"{info.path} has no audio encoder (clip.has_audio_encoder is not set"
                        f"{'; it is a vision projector' if info.has_vision_encoder else ''}): the audio backend "
                        "needs the projector of an audio-language model")
    return info
