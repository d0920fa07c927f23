"""Multitrack sources recognised by their file names, at scan time (the coordinator reads no audio).

A layout says which file names in one folder are a song's stems, and whether its mix is a file of
its own or the sum of the stems. Built in: MUSDB18 folders (`mixture.*` + `drums/bass/other/vocals.*`),
Frets on Fire / Rock Band song folders (`song.ogg` + `guitar.ogg`, `rhythm.ogg`, `drums.ogg`...: the
mix is their sum, `song` being the band without the other parts) and Native Instruments Stems
(`*.stem.mp4`: a mix and four stems as streams of one file). `[ingest] multitrack` adds the user's
own, tried before these:

    [[ingest.multitrack]]
    name = "daw"                       # recorded as the layout
    mix = "sum"                        # or a file-name pattern: "*mix*.wav"
    stems = { drums = ["kick*.wav", "drum*.wav"], bass = "bass*.wav", vocals = "vox*.wav" }

A group needs its mix file (or, for a sum, at least two stems: Frets on Fire also needs its
`song` file): a lone `drums.wav` or a `song.ogg` alone stays a plain file. Within a group a name is
used once (the first in name order); other files of the folder stay plain files.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from etl.dsp.audio import has_audio_extension
from etl.engine.errors import ConfigError

SUM = "sum"
STREAMS = "streams"

# The store's stem vocabulary: demucs's four, plus the names sources use for other parts, kept as
# given. A name not listed here is kept as given, lower-cased.
VOCABULARY = {
    "drum": "drums", "drums": "drums", "percussion": "drums",
    "bass": "bass",
    "other": "other", "accompaniment": "other",
    "vocal": "vocals", "vocals": "vocals", "voice": "vocals", "vox": "vocals",
    "song": "backing",  # Frets on Fire: the band without the parts that have their own files
    "guitar": "guitar", "rhythm": "rhythm", "keys": "keys", "piano": "piano", "crowd": "crowd",
}

# NI Stems: stream 0 is the mix, 1-4 the stems in this order unless the file's `stem` atom names them.
NI_DEFAULT_STEMS = ("drums", "bass", "other", "vocals")
NI_SUFFIXES = (".stem.mp4", ".stem.m4a")


@dataclass(frozen=True)
class Layout:
    name: str
    mix: str  # a file-name pattern, or SUM
    stems: dict[str, tuple[str, ...]]  # name as given -> file-name patterns (case-insensitive)
    required: tuple[str, ...] = ()  # stems without which the folder is not this layout
    min_stems: int = 1


def _by_stem(names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    return {name: (f"{name}.*",) for name in names}


BUILT_IN = (
    Layout("musdb", "mixture.*", _by_stem(("drums", "bass", "other", "vocals", "accompaniment"))),
    Layout("fretsonfire", SUM, _by_stem(("song", "guitar", "rhythm", "drums", "bass", "keys", "vocals", "crowd")),
           required=("song",), min_stems=2),
)


@dataclass(frozen=True)
class Member:
    group: str   # the group's id (a hash of where it lies: also its item id in the multitrack stage)
    role: str    # mix | stem | streams
    stem: str | None
    layout: str


def group_id(where: str) -> str:
    return hashlib.sha256(f"multitrack:{where}".encode()).hexdigest()[:24]


def store_stem(given: str, stem_map: dict[str, str] | None = None) -> str:
    """A stem's name in the store: the vocabulary's, then the user's `stem_map` folding."""
    name = VOCABULARY.get(given.lower(), given.lower())
    if stem_map:
        return stem_map.get(name, stem_map.get(given.lower(), name))
    return name


def parse_stem_map(entries: Iterable[str]) -> dict[str, str]:
    """`["guitar=other", "keys=other"]` -> {"guitar": "other", ...} ([multitrack] stem_map)."""
    mapping = {}
    for entry in entries:
        name, sep, target = str(entry).partition("=")
        if not sep or not name.strip() or not target.strip():
            raise ConfigError(f"[multitrack] stem_map entries are NAME=STEM (e.g. \"guitar=other\"), not {entry!r}")
        mapping[name.strip().lower()] = target.strip().lower()
    return mapping


def _patterns(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ConfigError(f"{where}: expected a file-name pattern or a list of them, got {value!r}")


def user_layouts(rules: Iterable[Any]) -> tuple[Layout, ...]:
    """`[[ingest.multitrack]]` tables as layouts (checked when the configuration is read)."""
    layouts = []
    for n, rule in enumerate(rules):
        where = f"[ingest] multitrack rule {n + 1}"
        if not isinstance(rule, dict):
            raise ConfigError(f"{where}: expected a table (name, mix, stems), got {rule!r}")
        unknown = set(rule) - {"name", "mix", "stems"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: name, mix, stems")
        stems = rule.get("stems")
        if not isinstance(stems, dict) or not stems:
            raise ConfigError(f"{where}: `stems` must be a table of stem name = pattern(s)")
        mix = rule.get("mix", SUM)
        if not isinstance(mix, str) or not mix:
            raise ConfigError(f"{where}: `mix` must be \"sum\" or a file-name pattern")
        layouts.append(Layout(str(rule.get("name") or f"rule{n + 1}"), mix,
                              {str(k): _patterns(v, f"{where} stems.{k}") for k, v in stems.items()},
                              min_stems=2 if mix == SUM else 1))
    return tuple(layouts)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns) and has_audio_extension(name)


def _match_folder(names: list[str], layout: Layout) -> dict[str, tuple[str, str | None]] | None:
    """{file name: (role, stem as given)} when the folder's files make this layout, else None."""
    taken: dict[str, tuple[str, str | None]] = {}
    if layout.mix != SUM:
        mix = next((n for n in names if _matches(n, (layout.mix,))), None)
        if mix is None:
            return None
        taken[mix] = ("mix", None)
    for stem, patterns in layout.stems.items():
        found = next((n for n in names if n not in taken and _matches(n, patterns)), None)
        if found is not None:
            taken[found] = ("stem", stem)
    stems = [s for role, s in taken.values() if role == "stem"]
    if len(stems) < layout.min_stems or any(r not in stems for r in layout.required):
        return None
    return taken


def recognise(paths: Iterable[str], rules: Iterable[Any] = ()) -> dict[str, Member]:
    """The members of multitrack groups among `paths` (a scan's files); every other path is plain."""
    layouts = (*user_layouts(rules), *BUILT_IN)
    folders: dict[str, list[str]] = {}
    members: dict[str, Member] = {}
    for path in paths:
        if path.lower().endswith(NI_SUFFIXES):
            members[path] = Member(group_id(path), STREAMS, None, "ni-stems")
        else:
            folders.setdefault(os.path.dirname(path), []).append(os.path.basename(path))
    for folder, names in folders.items():
        names.sort()
        for layout in layouts:
            found = _match_folder(names, layout)
            if found is not None:
                gid = group_id(folder)
                for name, (role, stem) in found.items():
                    members[os.path.join(folder, name)] = Member(gid, role, stem, layout.name)
                break
    return members

