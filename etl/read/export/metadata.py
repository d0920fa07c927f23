"""Per-crop metadata as trainers read it: audiocraft's MusicInfo fields and a text prompt."""

from __future__ import annotations

import math
from typing import Any

# audiocraft's MusicDataset requires every MusicInfo field in the sidecar (null where unknown).
MUSIC_INFO_FIELDS = ("title", "artist", "key", "bpm", "genre", "moods", "keywords", "description",
                     "name", "instrument")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


LABELS_IN_PROMPT = 3  # model labels (moods, instruments) a prompt names, best first


def genre(row: dict[str, Any]) -> str | None:
    """The genre tag; where the file has none, the genre model's top label ("Electronic---House" reads
    "Electronic / House"). sql/export/rows.sql's audiocraft_lines says the same in SQL."""
    if row.get("genre"):
        return str(row["genre"])
    if row.get("genre_top"):
        return str(row["genre_top"]).replace("---", " / ")
    return None


def _labels(row: dict[str, Any], column: str) -> list[str]:
    return [str(v) for v in (row.get(column) or [])[:LABELS_IN_PROMPT]]


def prompt(row: dict[str, Any]) -> str:
    """A description from what the store knows, most telling first: genre, moods, instruments, voice,
    tempo, key, who. Tags first; the classify stage's labels where tags say nothing.

    Captions (a later stage) take precedence when a `caption` column exists.
    """
    if row.get("caption"):
        return str(row["caption"])
    parts: list[str] = []
    if genre(row):
        parts.append(str(genre(row)))
    if _labels(row, "moods"):
        parts.append(", ".join(_labels(row, "moods")))
    if _labels(row, "instruments"):
        parts.append("with " + ", ".join(_labels(row, "instruments")))
    if row.get("voice") == "instrumental":
        parts.append("instrumental")
    bpm = _number(row.get("bpm"))
    if bpm:
        parts.append(f"{bpm:.0f} BPM")
    if row.get("key_name"):
        parts.append(str(row["key_name"]))
    if row.get("meter"):
        parts.append(f"{row['meter']}/4 time")
    who = " by ".join(str(v) for v in (row.get("title"), row.get("artist")) if v)
    if who:
        parts.append(who)
    return ", ".join(parts)


def keywords(row: dict[str, Any]) -> list[str]:
    words = [w.strip().lower() for w in str(genre(row) or "").replace("/", ",").split(",")]
    return [w for w in words if w]


def music_info(row: dict[str, Any]) -> dict[str, Any]:
    """audiocraft's sidecar: MusicInfo fields, plus the ids and prompt for everyone else."""
    bpm = _number(row.get("bpm"))
    return {
        "title": row.get("title"),
        "artist": row.get("artist"),
        "key": row.get("key_name"),
        "bpm": round(bpm, 2) if bpm else None,
        "genre": genre(row),
        "moods": list(row.get("moods") or []),
        "keywords": keywords(row),
        "description": prompt(row),
        "name": row.get("crop_id"),
        "instrument": ", ".join(_labels(row, "instruments")) or None,
        "prompt": prompt(row),
        "album": row.get("album"),
        "track_id": row.get("track_id"),
        "crop_id": row.get("crop_id"),
        "start_s": row.get("start_s"),
        "duration_s": row.get("duration_s"),
        "sample_rate": row.get("sample_rate"),
        "loudness_integrated_lufs": _number(row.get("loudness_integrated_lufs")),
    }
