"""Grounding: does a caption state only what the store knows about its crop?

A caption is training text: a wrong fact in it teaches a text-to-music model a wrong fact. After
generation (and hygiene) the stage reads each caption for the facts it states and checks every one
against the crop's facts, the same row of `crops_all_v` its prompt was filled from:

- a tempo ("128 BPM"): bpm, track_bpm, bpm_tag; within 2 %, not half or double;
- a meter ("4/4", "three beats to the bar"): meter; exact (6/8, 9/8, 12/8 count 2, 3, 4 beats);
- a key ("F# minor", "in the key of Gb"): key_name, key_tag; tonic and mode, enharmonics equal;
- a loudness ("-9 LUFS", "5 LU", "-1 dBTP"): the facts in that unit; within 1 LU (1 dB);
- a length ("12 seconds", "3 minutes", "8 bars"): duration_s, track_duration_s (0.5 s or 5 %;
  minutes 30 s or 5 %), n_bars (the count, or a phrase length that divides it);
- a year ("1987", "the 1980s"): year; exact (a decade: the year's);
- a name (a capitalised run of 2+ words, or a capitalised word after "by" / "featuring"): artist,
  title, album, album_artist; its words that are not ordinary words must be theirs;
- a genre (vocabulary.toml): genre, genre_top, genres; a word sequence of one of them;
- an instrument or voice (vocabulary.toml): instruments, stems (not empty ones), voice; one label
  inside the other ("guitar" / "electricguitar").
Why each tolerance is what it is: at the code that applies it.

A statement with nothing to check it against is as wrong as a contradiction ("states tempo 120 BPM,
which the facts do not give"): the store does not know it, so the caption may not say it. With the
audio backend (`heard`) the model hears the crop, so genres and instruments the facts do not give
are let through (still recorded where they are grounded); numbers and names are checked all the same.

Pure: caption text and facts in, a Verdict out. What the check does not recognise (moods, adjectives,
a genre word missing from the vocabulary) it does not judge.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

# The order `grounded` lists what was checked in (crop_captions.grounded).
ASPECTS = ("tempo", "meter", "key", "loudness", "duration", "year", "artist", "title", "album", "genre",
           "instrument")

_VOCABULARY = tomllib.loads((Path(__file__).resolve().parent / "vocabulary.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Verdict:
    grounded: tuple[str, ...]   # what the caption states and the facts confirm, in ASPECTS order
    problems: tuple[str, ...]   # each contradiction or invention, as a sentence

    @property
    def ok(self) -> bool:
        return not self.problems

    def reason(self, most: int = 6) -> str:
        """The failure's text (`etl failures`): the first `most` problems, and how many more."""
        shown = "; ".join(self.problems[:most])
        more = len(self.problems) - most
        return "ungrounded caption: " + shown + (f"; and {more} more" if more > 0 else "")


def check(text: str, facts: Mapping[str, Any], heard: bool = False) -> Verdict:
    """Every fact `text` states, checked against `facts` (a crop's row). `heard`: the model heard
    the crop (audio backend), so genres and instruments beyond the facts are not failed."""
    found: set[str] = set()
    problems: list[str] = []
    _numbers(text, facts, found, problems)
    _key(text, facts, found, problems)
    rest = _names(text, facts, found, problems)
    _labels(rest, facts, found, problems, heard)
    return Verdict(tuple(a for a in ASPECTS if a in found), tuple(problems))


# --- facts ------------------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _numbers_of(facts: Mapping[str, Any], names: Iterable[str]) -> list[float]:
    return [n for n in (_number(facts.get(name)) for name in names) if n is not None]


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    text = str(value).strip()
    return [text] if text else []


def _normal(text: str) -> str:
    """Lower case, words only: hyphens, slashes and Discogs' '---' read as spaces."""
    return " ".join(re.findall(r"[a-z0-9&]+", text.lower().replace("---", " ")))


# --- numbers ----------------------------------------------------------------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"
_MINUS = r"([-\u2212\u2013]\s?)?"
_WORD_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "eleven": 11, "twelve": 12}
_TEMPO = re.compile(_NUMBER + r"\s*-?\s*(?:bpm|beats per minute|beats a minute)\b", re.I)
_LOUDNESS = re.compile(r"(?<![\w.])" + _MINUS + _NUMBER + r"\s*(lufs|lu|db\s?tp|dbfs|db)\b", re.I)
# A bare "s" is seconds after a space or a decimal ("12 s", "12.8s"), not glued to a whole number:
# "the 80s" and "1980s" are decades.
_SECONDS = re.compile(r"(?<![\w.])" + _NUMBER
                      + r"(?:\s*-?\s*(?:seconds?|secs?)\b|\s+s\b|(?<=\.\d)s\b|(?<=\.\d\d)s\b)", re.I)
_MINUTES = re.compile(_NUMBER + r"\s*-?\s*(?:minutes?|mins?)\b", re.I)
_BARS = re.compile(r"\b(\d+|" + "|".join(_WORD_NUMBERS) + r")\s*-?\s*bars?\b", re.I)
_SIGNATURE = re.compile(r"(?<![\w./])(\d{1,2})\s*/\s*(2|4|8|16)(?![\w/])")
_BEATS_PER_BAR = re.compile(r"\b(\d{1,2}|" + "|".join(_WORD_NUMBERS)
                            + r")\s+beats?\s+(?:to|per|in)\s+(?:the|a|each)\s+bar", re.I)
# A year: 1600-2099, not a number with a unit after it (1600 Hz, 2000 ms); "the 1980s" is a decade.
_YEAR = re.compile(r"(?<![\w.\-])(1[6-9]\d\d|20\d\d)(s?)\b"
                   r"(?!\s*(?:hz|khz|ms|bpm|lufs|db|seconds?|samples|bars?|%))", re.I)


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _WORD_NUMBERS[word.lower()]


def _numbers(text: str, facts: Mapping[str, Any], found: set[str], problems: list[str]) -> None:
    # Tempo: within 2 % of a tempo the store holds. The prompt gives it rounded to a whole BPM, and
    # 2 % covers that and the crop's and track's estimates of a steady track. Half or double is not
    # let through: the caption's tempo becomes a training label, and the octave error is the
    # likeliest way for a tempo to be wrong.
    tempi = _numbers_of(facts, ("bpm", "track_bpm", "bpm_tag"))
    for match in _TEMPO.finditer(text):
        stated = float(match.group(1))
        _judge("tempo", f"{match.group(1)} BPM", [f"{t:.0f} BPM" for t in tempi[:1]],
               any(abs(stated - t) <= 0.02 * t for t in tempi), bool(tempi), found, problems)
    # Meter: beats to the bar. A compound signature counts its dotted beats (6/8: 2).
    meter = _number(facts.get("meter"))
    meters = [(m.group(0), _compound(int(m.group(1)), int(m.group(2)))) for m in _SIGNATURE.finditer(text)]
    meters += [(m.group(0), _count(m.group(1))) for m in _BEATS_PER_BAR.finditer(text)]
    for said, beats in meters:
        _judge("meter", said, [f"{meter:.0f} beats to the bar"] if meter else [],
               meter is not None and beats == round(meter), meter is not None, found, problems)
    # Loudness: within 1 LU / 1 dB. The prompt gives a tenth; a model rounding to whole units is right.
    for match in _LOUDNESS.finditer(text):
        unit = match.group(3).lower().replace(" ", "")
        stated = float(match.group(2)) * (-1 if match.group(1) else 1)
        names = _LOUDNESS_FACTS[unit](facts)
        known = _numbers_of(facts, names)
        _judge("loudness", f"{stated:g} {match.group(3)}", [f"{known[0]:.1f} {match.group(3)}"] if known else [],
               any(abs(stated - k) <= 1.0 for k in known), bool(known), found, problems)
    # Length: a crop's seconds within 0.5 s or 5 % (the prompt gives a tenth; whole seconds are right);
    # a track's minutes within 30 s or 5 %; bars: the crop's count or a phrase that divides it (a
    # "4-bar phrase" in an 8-bar crop is true).
    lengths = _numbers_of(facts, ("duration_s", "track_duration_s"))
    for match in _SECONDS.finditer(text):
        stated = float(match.group(1))
        _judge("duration", f"{match.group(1)} seconds", [f"{lengths[0]:.1f} seconds"] if lengths else [],
               any(abs(stated - k) <= max(0.5, 0.05 * k) for k in lengths), bool(lengths), found, problems)
    for match in _MINUTES.finditer(text):
        stated = float(match.group(1)) * 60
        _judge("duration", f"{match.group(1)} minutes", [f"{lengths[-1] / 60:.1f} minutes"] if lengths else [],
               any(abs(stated - k) <= max(30.0, 0.05 * k) for k in lengths), bool(lengths), found, problems)
    bars = _number(facts.get("n_bars"))
    for match in _BARS.finditer(text):
        stated_bars = _count(match.group(1))
        _judge("duration", f"{match.group(1)} bars", [f"{bars:.0f} bars"] if bars else [],
               bars is not None and stated_bars > 0 and round(bars) % stated_bars == 0, bars is not None,
               found, problems)
    # Year: the tag's, exactly (a decade: the one the year is in).
    year = _number(facts.get("year"))
    for match in _YEAR.finditer(text):
        stated_year, decade = int(match.group(1)), bool(match.group(2))
        right = year is not None and (int(year) // 10 * 10 == stated_year if decade else int(year) == stated_year)
        _judge("year", match.group(0), [f"{year:.0f}"] if year else [], right, year is not None, found, problems)


def _compound(numerator: int, denominator: int) -> int:
    if denominator >= 8 and numerator % 3 == 0 and numerator > 3:
        return numerator // 3
    return numerator


def _loudness_facts(suffixes: tuple[str, ...]) -> Any:
    return lambda facts: [n for n in facts if n.endswith(suffixes)]


_LOUDNESS_FACTS = {
    "lufs": _loudness_facts(("_lufs",)),
    "lu": _loudness_facts(("_lu",)),
    "dbtp": _loudness_facts(("_dbtp",)),
    "dbfs": _loudness_facts(("_dbfs", "_dbtp")),
    "db": _loudness_facts(("_db", "_dbfs", "_dbtp", "_lu", "_lufs")),  # bare dB: any level the store holds
}


def _judge(aspect: str, said: str, known: list[str], right: bool, have: bool, found: set[str],
           problems: list[str]) -> None:
    if right:
        found.add(aspect)
    elif have:
        problems.append(f"{aspect} {said} contradicts the facts ({', '.join(known)})")
    else:
        problems.append(f"states {aspect} {said}, which the facts do not give")


# --- key --------------------------------------------------------------------------------------------

_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"#": 1, "\u266f": 1, "sharp": 1, "b": -1, "\u266d": -1, "flat": -1, "": 0}
# The tonic is a capital letter (so "a minor change" is no key); the mode word any case.
_KEY = re.compile(r"(?<![\w#])([A-G])(?:\s?([#\u266f\u266d]|b(?=\s))|[\s-](sharp|flat))?\s*((?i:major|minor|maj|min))\b")
_KEY_OF = re.compile(r"(?i:\bkey of\s+)([A-G])([#\u266f\u266d]|b)?(?:\s*((?i:major|minor)))?(?![\w#])")
_KEY_FACT = re.compile(r"^\s*([A-Ga-g])\s*([#\u266f\u266db]|sharp|flat)?\s*(major|minor|maj|min|m)?\s*$", re.I)


def _pitch(letter: str, accidental: str | None) -> int:
    return (_PITCH[letter.upper()] + _ACCIDENTAL[(accidental or "").lower()]) % 12


def _mode(word: str | None) -> str | None:
    if not word:
        return None
    return "minor" if word.lower() in ("minor", "min", "m") else "major"


def _known_keys(facts: Mapping[str, Any]) -> list[tuple[int, str | None, str]]:
    keys = []
    for name in ("key_name", "key_tag"):
        for text in _texts(facts.get(name)):
            match = _KEY_FACT.match(text)
            if match:
                mode = _mode(match.group(3)) if match.group(3) else ("major" if name == "key_tag" else None)
                keys.append((_pitch(match.group(1), match.group(2)), mode, text))
    return keys


def _key(text: str, facts: Mapping[str, Any], found: set[str], problems: list[str]) -> None:
    """Tonic and mode must match a key the store holds; enharmonics are equal (F# minor = Gb minor).
    A key given without its mode ("in the key of G") is checked on its tonic."""
    known = _known_keys(facts)
    stated = [(m.group(0), _pitch(m.group(1), m.group(2) or m.group(3)), _mode(m.group(4))) for m in _KEY.finditer(text)]
    covered = {m.start() for m in _KEY.finditer(text)}
    stated += [(m.group(0), _pitch(m.group(1), m.group(2)), _mode(m.group(3))) for m in _KEY_OF.finditer(text)
               if m.start(1) not in covered]
    for said, pitch, mode in stated:
        right = any(pitch == p and (mode is None or m is None or mode == m) for p, m, _ in known)
        _judge("key", said.strip(), [t for _, _, t in known], right, bool(known), found, problems)


# --- names ------------------------------------------------------------------------------------------

_NAME_FACTS = (("artist", "artist"), ("album_artist", "artist"), ("title", "title"), ("album", "album"))
_CONNECTORS = {"of", "the", "from", "de", "van", "von", "der", "da", "del", "la", "le", "and", "&", "y", "di"}
_TOKEN = re.compile(r"[A-Za-z0-9&][\w'\u2019&]*\.?|[^\w\s]")
# A word after these introduces a name even when alone ("performed by Smith").
_CHORD = re.compile(r"^(?:N|[A-G][#b\u266f\u266d]?(?:m|maj|min|dim|aug|sus)?\d*)$")  # chord symbols (N: none)
_INTRODUCERS = {"by", "featuring", "feat", "feat.", "ft", "ft."}


def _ordinary_words() -> set[str]:
    words = set(_VOCABULARY["words"]["ordinary"])
    for phrase in [*_VOCABULARY["genres"], *_VOCABULARY["instruments"]]:
        words.update(_normal(phrase).split())
    words.update(letter.lower() for letter in _PITCH)
    words.update(_WORD_NUMBERS)
    return words


_ORDINARY = _ordinary_words()


def _names(text: str, facts: Mapping[str, Any], found: set[str], problems: list[str]) -> str:
    """Capitalised runs of two or more words (connectors such as "of" or "de" inside), and a
    capitalised word after "by" / "featuring": each must be the crop's artist, title or album (its
    unusual words among theirs). Returns the text with the known names blanked, so a title's words
    ("Metal madness") are not read again as a genre."""
    known = [(aspect, _normal(t)) for name, aspect in _NAME_FACTS for t in _texts(facts.get(name))]
    known_words: dict[str, set[str]] = {}
    for aspect, name in known:
        for word in name.split():
            known_words.setdefault(word, set()).add(aspect)
    lowered = _normal(text)
    for aspect, name in known:  # a known name anywhere, whatever its case
        if name and re.search(r"\b" + re.escape(name) + r"\b", lowered):
            found.add(aspect)
    for run in _capitalised_runs(text):
        words = [_normal(w) for w in run if not _CHORD.match(w.rstrip("."))]  # "N E Em A": chords, not a name
        unusual = [w for w in words if w and w not in _ORDINARY and not w.isdigit()]
        if not unusual:
            continue
        aspects = [known_words.get(w) for w in unusual]
        if all(aspects):
            found.update(a for s in aspects for a in s)
        else:
            names = ", ".join(f"{a} {t!r}" for name, a in _NAME_FACTS for t in _texts(facts.get(name)))
            problems.append(f"names {' '.join(run)!r}, not the crop's " + (f"({names})" if names else
                                                                              "(the facts give no names)"))
    blanked = text
    for _, name in known:
        if name:
            pattern = r"[\W_]+".join(re.escape(w) for w in name.split())
            blanked = re.sub(r"(?i)\b" + pattern + r"\b", " ", blanked)
    return blanked


def _capitalised_runs(text: str) -> list[list[str]]:
    tokens = _TOKEN.findall(text)
    runs: list[list[str]] = []
    current: list[str] = []
    introduced = False

    def close() -> None:
        while current and current[-1].lower() in _CONNECTORS:
            current.pop()
        if len(current) >= 2 or (current and introduced):
            runs.append(list(current))
        current.clear()

    previous = ""
    for token in tokens:
        capital = token[:1].isupper()
        if capital:
            if not current:
                introduced = previous.lower() in _INTRODUCERS
            current.append(token)
        elif current and token.lower() in _CONNECTORS:
            current.append(token)
        else:
            close()
        if token.endswith(".") and len(token) > 2 and current:  # a sentence end (not an initial "L.")
            close()
        previous = token
    close()
    return runs


# --- genres and instruments -------------------------------------------------------------------------

_INSTRUMENTS: dict[str, str] = {_normal(k): v for k, v in _VOCABULARY["instruments"].items()}
_GENRES = {_normal(g) for g in _VOCABULARY["genres"]}
_PHRASES = sorted([(p, "genre") for p in _GENRES] + [(p, "instrument") for p in _INSTRUMENTS],
                  key=lambda pc: -len(pc[0]))
# Stems that name no instrument (demucs' remainder, a multitrack's backing or mix).
_NEGATIONS = {"no", "without", "not", "lacking", "lacks", "absent", "free", "instead"}
_NOT_INSTRUMENTS = {"other", "backing", "mix", "rest", "accompaniment"}


def _labels(text: str, facts: Mapping[str, Any], found: set[str], problems: list[str], heard: bool) -> None:
    """Genre and instrument words, longest phrase first, each checked against the crop's labels."""
    words = _normal(text).split()
    taken = [False] * len(words)
    stated: list[tuple[int, str, str]] = []
    for phrase, category in _PHRASES:
        size = len(phrase.split())
        for i in range(len(words) - size + 1):
            if not any(taken[i:i + size]) and " ".join(words[i:i + size]) == phrase:
                taken[i:i + size] = [True] * size
                negated = bool(_NEGATIONS & set(words[max(0, i - 2):i]))
                stated.append((i, phrase, "no " + category if negated else category))
    genres = [_normal(g) for name in ("genre", "genre_top", "genres") for g in _texts(facts.get(name))]
    instruments = _known_instruments(facts)
    voice = _normal(" ".join(_texts(facts.get("voice"))))
    for phrase, category in dict.fromkeys((p, c) for _, p, c in sorted(stated)):  # in the caption's order
        if category.startswith("no "):
            # "without vocals" states an absence: checked where the store knows it (the voice
            # model), else not judged (no label says an instrument is missing).
            if _INSTRUMENTS.get(phrase) == "voice" and voice == "voice":
                problems.append(f"'no {phrase}' contradicts the facts (voice: voice)")
            elif _INSTRUMENTS.get(phrase) == "voice" and voice == "instrumental":
                found.add("instrument")
            continue
        if category == "genre":
            right = any(re.search(r"\b" + re.escape(phrase) + r"\b", g) for g in genres)
            if right:
                found.add("genre")
            elif not heard:
                _unlisted("genre", phrase, list(dict.fromkeys(genres)), problems)
            continue
        label = _INSTRUMENTS[phrase]
        if label == "voice" and voice == "instrumental":
            problems.append(f"instrument {phrase!r} contradicts the facts (voice: instrumental)")
            continue
        if any(label in k or k in label for k in instruments):
            found.add("instrument")
        elif not heard:
            _unlisted("instrument", phrase, sorted(instruments), problems)


def _unlisted(aspect: str, phrase: str, known: list[str], problems: list[str]) -> None:
    # Labels are lists, not measurements: a genre or instrument outside them is not shown false,
    # but the store does not know it, which is enough to keep it out of training text.
    if known:
        problems.append(f"{aspect} {phrase!r} is not among the facts ({', '.join(known)})")
    else:
        problems.append(f"states {aspect} {phrase!r}, which the facts do not give")


def _known_instruments(facts: Mapping[str, Any]) -> set[str]:
    empty = {_normal(s).replace(" ", "") for s in _texts(facts.get("empty_stems"))}
    labels = {_normal(s).replace(" ", "") for s in _texts(facts.get("instruments"))}
    labels |= {s for s in (_normal(s).replace(" ", "") for s in _texts(facts.get("stems")))
               if s not in empty and s not in _NOT_INSTRUMENTS}
    labels = {_INSTRUMENTS.get(s, s.rstrip("s") if s.endswith("s") and s not in ("bass", "brass") else s)
              for s in labels}
    if _normal(" ".join(_texts(facts.get("voice")))) == "voice":
        labels.add("voice")
    return {s for s in labels if s}
