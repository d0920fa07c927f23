"""Per-crop metadata as trainers read it: audiocraft's MusicInfo fields. The text prompt is computed
in SQL (sql/export/rows.sql, `prompt`), so the table formats and the sidecars carry the same text."""

from __future__ import annotations

import math
from typing import Any

# audiocraft's MusicDataset requires every MusicInfo field in the sidecar (null where unknown).
MUSIC_INFO_FIELDS = ("title", "artist", "key", "bpm", "genre", "moods", "keywords", "description",
                     "name", "instrument")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


LABELS_IN_PROMPT = 3  # model labels (instruments) MusicInfo names, best first, as the prompt does


def genre(row: dict[str, Any]) -> str | None:
    """The genre tag; where the file has none, the genre model's top label ("Electronic---House" reads
    "Electronic / House"), as sql/export/rows.sql's `prompt` and audiocraft_lines say it."""
    if row.get("genre"):
        return str(row["genre"])
    if row.get("genre_top"):
        return str(row["genre_top"]).replace("---", " / ")
    return None


def _labels(row: dict[str, Any], column: str) -> list[str]:
    return [str(v) for v in (row.get(column) or [])[:LABELS_IN_PROMPT]]


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
        "description": row["prompt"],
        "name": row.get("crop_id"),
        "instrument": ", ".join(_labels(row, "instruments")) or None,
        "prompt": row["prompt"],
        "album": row.get("album"),
        "track_id": row.get("track_id"),
        "crop_id": row.get("crop_id"),
        "start_s": row.get("start_s"),
        "duration_s": row.get("duration_s"),
        "sample_rate": row.get("sample_rate"),
        "loudness_integrated_lufs": _number(row.get("loudness_integrated_lufs")),
    }
