"""Tiny GGUF language models written with the `gguf` package, for llama.cpp to load and run for real.

A llama-architecture model with a SentencePiece byte-fallback vocabulary (every byte a token, so
any prompt tokenizes; no duplicate token, or llama.cpp aborts) plus some whole-word tokens.

- `write_random_model`: random weights (logits for its words only): real loading and generation,
  deterministic at temperature 0 and with a fixed seed; its words mean nothing.
- `write_byte_model`: random weights over the byte tokens as well, so it writes invalid UTF-8.
- `write_chain_model`: exact weights whose next token is fixed: every token is embedded as itself
  (one-hot), the layers add nothing (zero attention and feed-forward weights, so the residual stream
  is the embedding), and the output matrix maps each word to the word after it in `chain` (any other
  token to the first word; the last word to `end`, or back to the first). The model then writes the
  chain, whatever the prompt: a known text, so the tests can check the machinery's outcome exactly
  (a loop for the hygiene's repetition check, the prompt's own words for its copy check, a natural
  end at the end-of-sequence token).
- `write_projector_header`: a GGUF with a multimodal projector's header keys only (no weights), for
  the projector checks that read headers; llama.cpp cannot load it and is never asked to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPECIALS = ["<unk>", "<s>", "</s>"]
UNK, BOS, EOS = 0, 1, 2
N_BYTES = 256
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
         "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
         "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "drums", "bass", "guitar", "piano"]


def _vocabulary(words: list[str]) -> tuple[list[str], list[int]]:
    import gguf

    tokens = [*SPECIALS, *(f"<0x{b:02X}>" for b in range(N_BYTES)), *("\u2581" + w for w in words)]
    types = ([gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
             + [gguf.TokenType.BYTE] * N_BYTES + [gguf.TokenType.NORMAL] * len(words))
    assert len(set(tokens)) == len(tokens)
    return tokens, [int(t) for t in types]


def word_id(words: list[str], word: str) -> int:
    return len(SPECIALS) + N_BYTES + words.index(word)


def _write(path: Path, words: list[str], n_embd: int, n_ff: int, weights: dict[str, np.ndarray],
           chat_template: str | None = None) -> Path:
    import gguf

    tokens, types = _vocabulary(words)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(path.stem)
    writer.add_context_length(2048)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(1)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_rope_dimension_count(n_embd // 4)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    writer.add_bos_token_id(BOS)
    writer.add_eos_token_id(EOS)
    writer.add_unk_token_id(UNK)
    writer.add_add_bos_token(True)
    if chat_template:
        writer.add_chat_template(chat_template)
    for name, tensor in weights.items():
        writer.add_tensor(name, np.ascontiguousarray(tensor, dtype=np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _layer(n_embd: int, n_ff: int, fill: callable) -> dict[str, np.ndarray]:
    # numpy shapes are (rows = output, columns = input); GGUF stores them reversed, as llama.cpp wants.
    return {
        "blk.0.attn_norm.weight": np.ones(n_embd),
        "blk.0.attn_q.weight": fill((n_embd, n_embd)),
        "blk.0.attn_k.weight": fill((n_embd, n_embd)),
        "blk.0.attn_v.weight": fill((n_embd, n_embd)),
        "blk.0.attn_output.weight": fill((n_embd, n_embd)),
        "blk.0.ffn_norm.weight": np.ones(n_embd),
        "blk.0.ffn_gate.weight": fill((n_ff, n_embd)),
        "blk.0.ffn_up.weight": fill((n_ff, n_embd)),
        "blk.0.ffn_down.weight": fill((n_embd, n_ff)),
    }


def write_random_model(path: Path, seed: int = 0, words: list[str] = WORDS, chat_template: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    n_vocab, n_embd, n_ff = len(SPECIALS) + N_BYTES + len(words), 64, 128

    def fill(shape: tuple[int, int]) -> np.ndarray:
        return rng.normal(0, 0.02, shape)

    # Only the words get logits (the byte tokens' are 0, far below): a random model writing raw bytes
    # writes invalid UTF-8, which llama-cpp-python does not count against max_tokens (llm.TokenLimit).
    output = np.zeros((n_vocab, n_embd))
    output[len(SPECIALS) + N_BYTES:] = rng.normal(0, 1.0, (len(words), n_embd))
    weights = {"token_embd.weight": rng.normal(0, 0.5, (n_vocab, n_embd)), **_layer(n_embd, n_ff, fill),
               "output_norm.weight": np.ones(n_embd), "output.weight": output}
    return _write(path, words, n_embd, n_ff, weights, chat_template)


def write_byte_model(path: Path, seed: int = 0) -> Path:
    """Random weights whose likeliest tokens are the bytes 0xC0-0xFF (UTF-8 lead bytes): the text never
    completes a character."""
    rng = np.random.default_rng(seed)
    n_vocab, n_embd, n_ff = len(SPECIALS) + N_BYTES + len(WORDS), 64, 128
    output = rng.normal(0, 0.1, (n_vocab, n_embd))
    output[len(SPECIALS) + 0xC0:len(SPECIALS) + N_BYTES] = rng.normal(0, 3.0, (64, n_embd))
    weights = {"token_embd.weight": rng.normal(0, 0.5, (n_vocab, n_embd)),
               **_layer(n_embd, n_ff, lambda shape: rng.normal(0, 0.02, shape)),
               "output_norm.weight": np.ones(n_embd), "output.weight": output}
    return _write(path, WORDS, n_embd, n_ff, weights)


def write_chain_model(path: Path, chain: list[str], end: bool = False, words: list[str] | None = None) -> Path:
    """A model that writes `chain` (words of its vocabulary) whatever the prompt; after the last word
    the end-of-sequence token (`end`) or the first word again."""
    words = list(dict.fromkeys([*(words or WORDS), *chain]))
    n_vocab = len(SPECIALS) + N_BYTES + len(words)
    n_embd = -(-n_vocab // 8) * 8  # one dimension per token (padded to a multiple of the heads)
    n_ff = 32
    embedding = np.zeros((n_vocab, n_embd))
    embedding[np.arange(n_vocab), np.arange(n_vocab)] = 1.0
    output = np.zeros((n_vocab, n_embd))
    ids = [word_id(words, w) for w in chain]
    output[ids[0], :] = 1.0  # from anything else: the first word
    for here, after in zip(ids, [*ids[1:], EOS if end else ids[0]]):
        output[:, here] = 0.0
        output[after, here] = 50.0  # far above every other logit (×√n_embd after the RMS norm)
    weights = {"token_embd.weight": embedding, **_layer(n_embd, n_ff, np.zeros),
               "output_norm.weight": np.ones(n_embd), "output.weight": output}
    return _write(path, words, n_embd, n_ff, weights)


def write_projector_header(path: Path, audio: bool = True, vision: bool = False) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_clip_has_audio_encoder(audio)
    writer.add_clip_has_vision_encoder(vision)
    writer.add_tensor("mm.dummy", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
