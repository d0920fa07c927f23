"""Prompts (sql/export/rows.sql's `prompt`) and audiocraft's MusicInfo from what the store knows:
tags first, model labels after."""

from __future__ import annotations

from typing import Any

import duckdb

from etl.engine.resources import sql
from etl.read.export import metadata

LABELLED = {"genre": None, "genre_top": "Electronic---House", "moods": ["energetic", "happy", "dark", "calm"],
            "instruments": ["synthesizer", "drummachine", "bass", "piano"], "voice": "instrumental",
            "bpm": 124.2, "key_name": "A minor", "meter": 4, "title": "T", "artist": "A", "caption": None}
TYPES = {"genre": "VARCHAR", "genre_top": "VARCHAR", "moods": "VARCHAR[]", "instruments": "VARCHAR[]",
         "voice": "VARCHAR", "bpm": "DOUBLE", "key_name": "VARCHAR", "meter": "INTEGER", "title": "VARCHAR",
         "artist": "VARCHAR", "caption": "VARCHAR"}


def prompt(row: dict[str, Any]) -> str:
    """The prompt DuckDB computes for one crop_v row (the columns not given are NULL)."""
    columns = ", ".join(f"${name}::{kind} AS {name}" for name, kind in TYPES.items())
    with duckdb.connect() as con:
        [(text,)] = con.execute(f"SELECT {sql('export/rows.sql', 'prompt')} FROM (SELECT {columns}) AS c",
                                {name: row.get(name) for name in TYPES}).fetchall()
    return text


def test_model_labels_stand_in_for_missing_tags() -> None:
    assert prompt(LABELLED) == ("Electronic / House, energetic, happy, dark, with synthesizer, drummachine, "
                                "bass, instrumental, 124 BPM, A minor, 4/4 time, T by A")
    info = metadata.music_info({**LABELLED, "prompt": prompt(LABELLED)})
    assert info["genre"] == "Electronic / House" and info["keywords"] == ["electronic", "house"]
    assert info["instrument"] == "synthesizer, drummachine, bass"
    assert info["description"] == info["prompt"] == prompt(LABELLED)


def test_a_genre_tag_wins_over_the_model_and_an_empty_one_does_not() -> None:
    tagged = {**LABELLED, "genre": "Deep House"}
    assert metadata.genre(tagged) == "Deep House" and prompt(tagged).startswith("Deep House, energetic")
    empty = {**LABELLED, "genre": ""}
    assert metadata.genre(empty) == "Electronic / House" and prompt(empty).startswith("Electronic / House, ")


def test_a_caption_is_the_prompt() -> None:
    assert prompt({**LABELLED, "caption": "A warm house groove."}) == "A warm house groove."
    assert prompt({**LABELLED, "caption": ""}) == prompt(LABELLED)


def test_tempo_is_rounded_to_even_and_nonsense_left_out() -> None:
    assert prompt({"bpm": 120.5}) == "120 BPM" and prompt({"bpm": 121.5}) == "122 BPM"
    assert prompt({"bpm": float("nan")}) == prompt({"bpm": 0.2}) == prompt({"meter": 0}) == ""


def test_nothing_known_gives_no_labels() -> None:
    bare = {"title": "T", "artist": None, "bpm": None}
    assert prompt(bare) == "T"
    info = metadata.music_info({**bare, "prompt": prompt(bare)})
    assert info["genre"] is None and info["instrument"] is None and info["moods"] == [] and info["keywords"] == []
