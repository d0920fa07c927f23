"""The caption model: a GGUF loaded once per worker with llama-cpp-python, and one generation per
(crop, kind).

Text backend: the filled prompt goes to `Llama.create_completion` (raw text, for base models) or
`create_chat_completion` (`chat = true`: the GGUF's own chat template, for instruct models). Each
generation keeps what it evaluated in the KV cache and llama-cpp-python reuses the longest common
token prefix on the next one: the kinds of one crop (handed to a worker together) share the facts
block at the head of their prompts, so it is evaluated once per crop, not once per kind.

Audio backend: llama.cpp's multimodal library (`llama_cpp.mtmd_cpp`, bound by llama-cpp-python
even where its chat handlers take images only). The projector is loaded against the language model
(`mtmd_init_from_file`); the crop is decoded, mixed to mono and resampled to the projector's rate
(`mtmd_get_audio_sample_rate`) by the project's own decoder, handed over as an audio bitmap
(`mtmd_bitmap_init_from_audio`), tokenized with the prompt around the media marker
(`mtmd_tokenize`), the text chunks evaluated by the model and the audio chunk by the projector
(`mtmd_helper_eval_chunk_single`), and the caption generated after them.
"""

from __future__ import annotations

import ctypes
import os
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.engine.errors import BadInput, ConfigError, ItemError
from etl.stages.captions import ggufinfo, prompts

if TYPE_CHECKING:
    import numpy as np

    from etl.stages.captions import Params


@dataclass(frozen=True)
class Generation:
    prompt: str               # the filled prompt (with the media marker for audio)
    text: str                 # what the model wrote, before hygiene
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str        # stop | length
    seconds: float


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str) -> str:
    """The whole file's sha256 (stored with each caption), once per file version in a process."""
    from etl.engine.artifacts import sha256_file

    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)  # type: ignore[arg-type]
    return _SHA_CACHE[key]


class TokenLimit:
    """A hard stop a few tokens past `max_tokens`. llama-cpp-python 0.3.36 skips its max_tokens check
    while the text ends in an incomplete UTF-8 character, so a model emitting lead bytes (a byte-level
    token after another) generates until the context is full and llama_decode fails."""

    SLACK = 4  # room to finish a 4-byte character cut at max_tokens

    def __init__(self, max_tokens: int) -> None:
        self.limit = max_tokens + self.SLACK
        self.first: int | None = None
        self.tripped = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        if self.first is None:
            self.first = len(input_ids)  # the first generated token's position + 1
        if len(input_ids) - self.first + 1 > self.limit:
            self.tripped = True
        return self.tripped


class Captioner:
    """The language model (and, for the audio backend, its projector), loaded once."""

    def __init__(self, params: Params) -> None:
        try:
            model_info = ggufinfo.language_model(params.model)
            projector_info = (ggufinfo.audio_projector(model_info, params.projector)
                              if params.backend == "audio" else None)
        except ggufinfo.NotUsable as error:
            raise ConfigError(f"[captions] {error}") from None
        from llama_cpp import Llama

        self.chat = params.chat
        if self.chat and not model_info.chat_template:
            raise ConfigError(f"[captions] chat = true, but {model_info.path.name} has no chat template "
                              "(tokenizer.chat_template): a base model takes raw prompts (chat = false)")
        self.llm = Llama(model_path=str(model_info.path), n_ctx=params.context_size, n_batch=params.batch,
                         n_threads=params.threads or None, n_gpu_layers=params.gpu_layers, seed=params.seed,
                         verbose=False)
        self.model_file, self.model_sha256 = model_info.path.name, file_sha256(str(model_info.path))
        self.projector_file = self.projector_sha256 = None
        self.audio: AudioInput | None = None
        if projector_info is not None:
            self.audio = AudioInput(self.llm, str(projector_info.path), params)
            self.projector_file = projector_info.path.name
            self.projector_sha256 = file_sha256(str(projector_info.path))
        # Freed when this model is dropped (a worker's model rebuilt) or at exit, projector first:
        # llama-cpp-python's own destructor at interpreter exit prints noise.
        self._finalizer = weakref.finalize(self, _free, self.llm, self.audio)

    def caption(self, template: str, facts: dict[str, Any], max_tokens: int, params: Params,
                audio_path: str | None = None, stop: tuple[str, ...] = ()) -> Generation:
        """Fill the template, generate; raw output (hygiene is the caller's). `stop`: the template's
        own stops (a few-shot caption ends at its line's end), besides [captions] stop."""
        marker = self.audio.marker if self.audio is not None else None
        prompt = prompts.fill(template, facts, audio_marker=marker)
        if self.audio is not None and marker not in prompt:
            raise ConfigError("[captions] the audio backend needs {audio} in the template (where the model hears "
                              "the crop); it is not in this one")
        from llama_cpp import StoppingCriteriaList

        limit = TokenLimit(max_tokens)
        sampling = {"max_tokens": max_tokens, "temperature": params.temperature, "top_p": params.top_p,
                    "repeat_penalty": params.repeat_penalty, "seed": params.seed, "stop": [*params.stop, *stop],
                    "stopping_criteria": StoppingCriteriaList([limit])}
        started = time.perf_counter()
        if self.audio is not None:
            assert audio_path is not None
            tokens = self.audio.evaluate(prompt, audio_path)
            response = self.llm.create_completion(prompt=tokens, **sampling)
        elif self.chat:
            response = self.llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], **sampling)
        else:
            response = self.llm.create_completion(prompt=prompt, **sampling)
        seconds = time.perf_counter() - started
        choice = response["choices"][0]
        text = choice["message"]["content"] if self.chat and self.audio is None else choice["text"]
        usage = response["usage"]
        finish = "length" if limit.tripped else str(choice.get("finish_reason") or "stop")
        return Generation(prompt, text or "", int(usage["prompt_tokens"]), int(usage["completion_tokens"]), finish,
                          seconds)

    def close(self) -> None:
        self._finalizer()


def _free(llm: Any, audio: AudioInput | None) -> None:
    if audio is not None:
        audio.close()
    llm.close()


def read_mono(path: str, sample_rate: int) -> np.ndarray:
    """The crop as float32 mono at `sample_rate` (the projector's rate)."""
    import numpy as np

    from etl.dsp import audio

    with audio.open_audio(path) as handle:
        block, rate = audio.read_block(handle), handle.samplerate
    if len(block) == 0:
        raise BadInput("the crop holds no audio")
    return np.ascontiguousarray(audio.resample(block.mean(axis=1), rate, sample_rate), dtype=np.float32)


class AudioBitmap:
    """Samples handed to llama.cpp's multimodal library as an audio bitmap (freed on close)."""

    def __init__(self, samples: np.ndarray) -> None:
        import numpy as np
        from llama_cpp import mtmd_cpp

        self._mtmd = mtmd_cpp
        self.samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self.samples.ndim != 1 or len(self.samples) == 0:
            raise BadInput(f"audio for the model must be mono samples, got shape {self.samples.shape}")
        pointer = self.samples.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self.bitmap = mtmd_cpp.mtmd_bitmap_init_from_audio(len(self.samples), pointer)
        if not self.bitmap:
            raise ItemError("llama.cpp could not make an audio bitmap of the crop")

    @property
    def is_audio(self) -> bool:
        return bool(self._mtmd.mtmd_bitmap_is_audio(self.bitmap))

    @property
    def n_bytes(self) -> int:
        return int(self._mtmd.mtmd_bitmap_get_n_bytes(self.bitmap))

    def data(self) -> np.ndarray:
        """The samples as the library holds them (a copy)."""
        import numpy as np

        pointer = self._mtmd.mtmd_bitmap_get_data(self.bitmap)
        raw = ctypes.string_at(pointer, self.n_bytes)
        return np.frombuffer(raw, dtype=np.float32).copy()

    def close(self) -> None:
        if self.bitmap:
            self._mtmd.mtmd_bitmap_free(self.bitmap)
            self.bitmap = None

    def __enter__(self) -> AudioBitmap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def media_marker() -> str:
    """llama.cpp's default media marker: where a prompt's audio goes."""
    from llama_cpp import mtmd_cpp

    return mtmd_cpp.mtmd_default_marker().decode()


class AudioInput:
    """The projector bound to the language model: hears a crop, evaluates the prompt around it."""

    def __init__(self, llm: Any, projector: str, params: Params) -> None:
        import llama_cpp
        from llama_cpp import mtmd_cpp

        self._mtmd, self.llm = mtmd_cpp, llm
        context_params = mtmd_cpp.mtmd_context_params_default()
        context_params.use_gpu = params.gpu_layers != 0
        context_params.print_timings = False
        context_params.n_threads = llm.n_threads
        self.ctx = mtmd_cpp.mtmd_init_from_file(projector.encode(), llm.model, context_params)
        if not self.ctx:
            raise ConfigError(f"[captions] llama.cpp could not load the projector {projector} against "
                              f"{os.path.basename(llm.model_path)} (a projector of another model?)")
        if not mtmd_cpp.mtmd_support_audio(self.ctx):
            self.close()
            raise ConfigError(f"[captions] the projector {projector} takes no audio")
        self.sample_rate = int(mtmd_cpp.mtmd_get_audio_sample_rate(self.ctx))
        self.marker = (mtmd_cpp.mtmd_get_marker(self.ctx) or mtmd_cpp.mtmd_default_marker()).decode()
        self._llama_cpp = llama_cpp

    def evaluate(self, prompt: str, audio_path: str) -> list[int]:
        """Tokenize the prompt with the crop's audio at the marker and evaluate it into the model's
        context; the positions evaluated, for `create_completion` to continue from (it re-evaluates
        only the last one, which is text: templates end with text)."""
        mtmd, llm = self._mtmd, self.llm
        with AudioBitmap(read_mono(audio_path, self.sample_rate)) as bitmap:
            text = mtmd.mtmd_input_text()
            encoded = prompt.encode("utf-8")
            text.text, text.text_len, text.add_special, text.parse_special = encoded, len(encoded), True, True
            chunks = mtmd.mtmd_input_chunks_init()
            try:
                bitmaps = (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap.bitmap)
                status = mtmd.mtmd_tokenize(self.ctx, chunks, ctypes.byref(text), bitmaps, 1)
                if status != 0:
                    raise ItemError(f"llama.cpp could not tokenize the prompt with the audio (code {status})")
                llm.reset()
                llm._ctx.kv_cache_clear()  # the audio's positions are not tokens: no prefix reuse here
                for i in range(mtmd.mtmd_input_chunks_size(chunks)):
                    self._eval_chunk(mtmd.mtmd_input_chunks_get(chunks, i))
            finally:
                mtmd.mtmd_input_chunks_free(chunks)
        return llm.input_ids[: llm.n_tokens].tolist()

    def _eval_chunk(self, chunk: Any) -> None:
        mtmd, llm, llama_cpp = self._mtmd, self.llm, self._llama_cpp
        if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
            count = ctypes.c_size_t()
            pointer = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
            tokens = [pointer[j] for j in range(count.value)]
            self._check_room(len(tokens))
            llm.eval(tokens)
            return
        self._check_room(mtmd.mtmd_input_chunk_get_n_tokens(chunk))
        new_n_past = llama_cpp.llama_pos(0)
        status = mtmd.mtmd_helper_eval_chunk_single(self.ctx, llm._ctx.ctx, chunk, llama_cpp.llama_pos(llm.n_tokens),
                                                     llama_cpp.llama_seq_id(0), llm.n_batch, False,
                                                     ctypes.byref(new_n_past))
        if status != 0:
            raise ItemError(f"llama.cpp could not evaluate the audio (code {status})")
        llm.n_tokens = new_n_past.value

    def _check_room(self, n_tokens: int) -> None:
        if self.llm.n_tokens + n_tokens > self.llm.n_ctx():
            raise BadInput(f"the prompt with the crop's audio needs more than [captions] context_size = "
                           f"{self.llm.n_ctx()} tokens")

    def close(self) -> None:
        if self.ctx:
            self._mtmd.mtmd_free(self.ctx)
            self.ctx = None
