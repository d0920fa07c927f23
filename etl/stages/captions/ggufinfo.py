"""What a GGUF file is, read from its header (the `gguf` package): a language model or a multimodal
projector, its architecture, whether a projector has an audio encoder, whether a model carries a chat
template. The stage checks its configured files with this before any model is loaded, so a wrong
file gets a sentence saying what it is instead of a crash inside llama.cpp.
"""

from __future__ import annotations

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

    @property
    def is_projector(self) -> bool:
        return self.architecture == "clip"


class NotUsable(ValueError):
    """The file cannot serve as what it was configured for; the message says why."""


def is_gguf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == MAGIC


def read(path: str | Path) -> GgufInfo:
    """The header facts of a GGUF file; NotUsable for a missing file or one that is not GGUF."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise NotUsable(f"{path} not found")
    if not is_gguf(path):
        raise NotUsable(f"{path} is not a GGUF file (it does not start with the GGUF magic)")
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except (ValueError, IndexError, KeyError, OSError) as error:
        raise NotUsable(f"{path}: unreadable GGUF header ({error})") from None

    def value(key: str) -> Any:
        field = reader.get_field(key)
        return None if field is None else field.contents()

    return GgufInfo(path=path, architecture=value("general.architecture"), name=value("general.name"),
                    has_audio_encoder=bool(value("clip.has_audio_encoder")),
                    has_vision_encoder=bool(value("clip.has_vision_encoder")),
                    chat_template=reader.get_field("tokenizer.chat_template") is not None)


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
