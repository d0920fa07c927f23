"""Caption prompts: templates filled with a crop's stored facts, and the hygiene of what comes back.

Pure functions (no model, no database), so they are unit-tested on their own.

Templates are text files, one per prompt kind (`full.txt`, `technical.txt`, ...), shipped in
`templates/` beside this module; a configured folder overrides them file by file. A template names
the crop's facts as `{placeholder}`s: any column of `crops_v` (`{artist}`, `{genre_top}`, `{bpm}`,
`{key_name}`, `{chords}`, `{aes_pq}`, ...). A placeholder without a value (NULL, NaN, an empty text
or list, or a column this store does not have yet) is dropped with its clause, never printed as
"None": the clause is the innermost `[...]` around it, or else its whole line. `{facts}` includes
`facts.txt` (the facts block the shipped kinds share, first in each prompt so that the prompts of
one crop share their evaluated prefix), `{audio}` marks where an audio model hears the crop.
`\\[`, `\\]`, `\\{` and `\\}` are literal brackets and braces.
"""

from __future__ import annotations

import hashlib
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from etl.engine.errors import BadInput

SHIPPED = Path(__file__).resolve().parent / "templates"
# The shipped template sets, each with the stops its captions end at. `instruct` (templates/): an
# instruction after the facts, for instruct models (and [captions] stop ends the caption). `few_shot`
# (templates/few_shot/): worked examples of facts and their captions, one caption a line, then the
# crop's facts and the kind's label: a small base model continues the pattern, and the caption ends
# at its line's end. Both include the same facts block (templates/facts.txt).
STYLES: dict[str, tuple[str, tuple[str, ...]]] = {"instruct": ("", ()), "few_shot": ("few_shot", ("\n",))}
FACTS = "facts"   # the shared facts block, included by `{facts}`
EXAMPLES = "examples"  # a few-shot set's worked examples, included by `{examples}`
AUDIO = "audio"   # where the audio goes (audio backend); elsewhere dropped like an empty fact

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Literal brackets and braces are written with a backslash; they stand aside while clauses are cut.
_ESCAPES = {"\\[": "\x00", "\\]": "\x01", "\\{": "\x02", "\\}": "\x03"}
_UNESCAPE = {"\x00": "[", "\x01": "]", "\x02": "{", "\x03": "}"}
_VALUE_ESCAPES = str.maketrans({"[": "\x00", "]": "\x01", "{": "\x02", "}": "\x03"})

# How numbers read in a prompt, by column name (units the model can use; no spurious precision).
_FORMATS: tuple[tuple[str, str], ...] = (
    (r"bpm", "{:.0f}"),
    (r"_lufs$|_lu$|_dbtp$|_dbfs$|_db$", "{:.1f}"),
    (r"^aes_", "{:.1f}"),
    (r"_hz$", "{:.0f}"),
    (r"_s$", "{:.1f}"),
)


@dataclass(frozen=True)
class Template:
    kind: str
    text: str       # with `{facts}` already replaced by the facts block
    source: str     # the file(s) it came from, for messages
    hash: str       # sha256[:16] of `text` (and `stop`): stored with each caption, part of its fingerprint
    stop: tuple[str, ...] = ()  # where its captions end, besides [captions] stop


def template_path(name: str, folder: str = "", style: str = "instruct") -> Path:
    """The configured folder's `<name>.txt` where it has one, else the style's shipped one, else the
    shared shipped one (facts.txt)."""
    if folder:
        mine = Path(folder).expanduser() / f"{name}.txt"
        if mine.is_file():
            return mine
    shipped = SHIPPED / STYLES[style][0] / f"{name}.txt"
    return shipped if shipped.is_file() else SHIPPED / f"{name}.txt"


def load_template(kind: str, folder: str = "", style: str = "instruct") -> Template:
    """A kind's template with the facts block included. OSError where neither file exists."""
    path = template_path(kind, folder, style)
    text = path.read_text(encoding="utf-8")
    sources = [str(path)]
    for block in (EXAMPLES, FACTS):  # examples first: the facts block holds no `{examples}`
        if "{" + block + "}" in text:
            block_path = template_path(block, folder, style)
            text = text.replace("{" + block + "}", block_path.read_text(encoding="utf-8").rstrip("\n"))
            sources.append(str(block_path))
    stop = STYLES[style][1]
    if stop:
        # The caption continues the template's last line ("Full:"): a final newline would start
        # it on a line of its own, where the line-end stop would end it before a word.
        text = text.rstrip("\n")
    digest = text if not stop else text + "\x00stop:" + repr(stop)  # instruct hashes stay as they were
    return Template(kind, text, " + ".join(sources), hashlib.sha256(digest.encode()).hexdigest()[:16], stop)


def format_value(name: str, value: Any) -> str | None:
    """A fact as prompt text; None where there is nothing to say."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, int):
            return str(value)
        for pattern, spec in _FORMATS:
            if re.search(pattern, name):
                return spec.format(value)
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        parts = [format_value(name, v) for v in value]
        joined = ", ".join(p for p in parts if p)
        return joined or None
    text = " ".join(str(value).split())
    if name == "genre_top" or "---" in text:  # Discogs labels: "Electronic---House" reads "Electronic / House"
        text = text.replace("---", " / ")
    return text or None


def placeholders(text: str) -> list[str]:
    return _PLACEHOLDER.findall(_escape(text))


def fill(template: str, facts: Mapping[str, Any], audio_marker: str | None = None) -> str:
    """The template with every placeholder replaced by its fact; a placeholder without one is
    dropped with its clause (the innermost `[...]` around it, else its line). `audio_marker`
    replaces `{audio}` (None: no audio; the clause goes)."""
    values = {name: format_value(name, value) for name, value in facts.items()}
    if audio_marker is not None:
        values[AUDIO] = audio_marker
    # Brackets and braces inside a value are text, not template syntax.
    values = {name: None if v is None else v.translate(_VALUE_ESCAPES) for name, v in values.items()}
    text = _drop_empty_clauses(_escape(template), values)
    # A line goes with a placeholder that has no value, and when all it held was dropped clauses.
    lines = [line.replace(_DROPPED, "") for line in text.split("\n")
             if all(values.get(n) is not None for n in _PLACEHOLDER.findall(line))
             and not (_DROPPED in line and not line.replace(_DROPPED, "").strip())]
    filled = _PLACEHOLDER.sub(lambda m: values[m.group(1)], "\n".join(lines)).replace("[", "").replace("]", "")
    for mark, literal in _UNESCAPE.items():
        filled = filled.replace(mark, literal)
    return filled


def _escape(text: str) -> str:
    for literal, mark in _ESCAPES.items():
        text = text.replace(literal, mark)
    return text


_DROPPED = "\x04"  # where a clause was removed (its line goes too when nothing else is left)
_INNERMOST = re.compile(r"\[([^\[\]]*)\]")


def _drop_empty_clauses(text: str, values: Mapping[str, str | None]) -> str:
    """Resolve `[...]` clauses from the innermost out: kept (brackets removed) when every
    placeholder inside has a value, else removed whole."""
    while True:
        match = _INNERMOST.search(text)
        if match is None:
            return text
        inner = match.group(1)
        keep = all(values.get(n) is not None for n in _PLACEHOLDER.findall(inner))
        # Filled here so an outer clause does not see the inner placeholders again.
        replacement = _PLACEHOLDER.sub(lambda m: values[m.group(1)], inner) if keep else _DROPPED
        text = text[:match.start()] + replacement + text[match.end():]


# --- output hygiene -------------------------------------------------------------------------------

# Control tokens of the common chat formats (Gemma, ChatML, Llama 2/3, Mistral, Phi) and the media
# marker: a model that prints one has left the caption.
_SPECIAL = re.compile(
    r"<\|[^|<>\n]{1,40}\|>|</?s>|<(?:start|end)_of_turn>(?:user|model)?|<eos>|<bos>|<pad>|<unk>"
    r"|\[/?INST\]|<<SYS>>|<</SYS>>|<__media__>|<sound>|</?think>")


class Rejected(BadInput):
    """The model's output is not a usable caption; the reason says why (the item fails with it, for
    good: at temperature 0 the same prompt gives the same output)."""


@dataclass(frozen=True)
class Hygiene:
    max_chars: int = 2000
    min_distinct_ngrams: float = 0.5   # below this share of distinct word 3-grams: repetitive
    max_prompt_overlap: float = 0.6    # above this share of word 4-grams found in the prompt: a copy


def clean(output: str, prompt: str, rules: Hygiene = Hygiene(), truncated: bool = False) -> str:
    """The caption in `output`, or Rejected with the reason: prompt echo and control tokens stripped,
    whitespace normalised, cut to `max_chars` at a sentence end (and, where generation stopped at
    max tokens (`truncated`), to its last whole sentence); empty, repetitive or copied outputs refused."""
    text = output
    # An echo of the prompt (some completion endpoints and chat templates repeat it): drop it, and
    # a repeated last prompt line ("Description:") at the start.
    if text.strip() and prompt.strip() and text.lstrip().startswith(prompt.strip()):
        text = text.lstrip()[len(prompt.strip()):]
    last_line = prompt.strip().split("\n")[-1].strip() if prompt.strip() else ""
    if last_line and text.lstrip().startswith(last_line):
        text = text.lstrip()[len(last_line):]
    cut = _SPECIAL.search(text)
    while cut is not None and not text[:cut.start()].strip():
        text = text[cut.end():]  # leading control tokens go, the text after them stays
        cut = _SPECIAL.search(text)
    if cut is not None:
        text = text[:cut.start()]  # a control token after text: the caption ended there
    text = " ".join(text.replace("\r", "\n").split())
    text = text.strip(" \"'`*-:")
    if not re.search(r"\w", text):
        raise Rejected("empty caption")
    if len(text) > rules.max_chars:
        text = _cap(text, rules.max_chars)
    elif truncated and not re.search(r"[.!?]$", text):
        text = _cap(text, len(text), keep=0)
    repetitive = _repetition(text, rules)
    if repetitive:
        raise Rejected(f"degenerate caption: {repetitive}")
    overlap = prompt_overlap(text, prompt)
    if overlap > rules.max_prompt_overlap:
        raise Rejected(f"degenerate caption: copies the prompt ({overlap:.0%} of its word 4-grams are in it)")
    return text


def _cap(text: str, max_chars: int, keep: float = 0.5) -> str:
    """Cut at the last sentence end within `max_chars` that keeps at least `keep` of it (else at the
    last word boundary)."""
    head = text[:max_chars]
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", head)]
    if ends and ends[-1] > max_chars * keep:
        return head[:ends[-1]]
    space = head.rfind(" ")
    return head[:space] if space > max_chars // 2 else head


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def _repetition(text: str, rules: Hygiene) -> str | None:
    """Why the text is degenerate (a loop), or None."""
    words = _words(text)
    grams = _ngrams(words, 3)
    if len(grams) >= 8:
        distinct = len(set(grams)) / len(grams)
        if distinct < rules.min_distinct_ngrams:
            return f"repetitive ({distinct:.0%} of its word 3-grams are distinct)"
    # Loops that are not words (a character or a short pattern over and over).
    if len(text) >= 64:
        ratio = len(zlib.compress(text.encode())) / len(text.encode())
        if ratio < 0.2:
            return f"repetitive (compresses to {ratio:.0%} of its length)"
    return None


def prompt_overlap(text: str, prompt: str) -> float:
    """The share of the caption's word 4-grams that occur in the prompt (0 for a short caption)."""
    grams = _ngrams(_words(text), 4)
    if len(grams) < 4:
        return 0.0
    source = set(_ngrams(_words(prompt), 4))
    return sum(g in source for g in grams) / len(grams)
