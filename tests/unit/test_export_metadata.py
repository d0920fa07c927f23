"""Prompts and audiocraft's MusicInfo from what the store knows: tags first, model labels after."""

from __future__ import annotations

from etl.read.export import metadata

LABELLED = {"genre": None, "genre_top": "Electronic---House", "moods": ["energetic", "happy", "dark", "calm"],
            "instruments": ["synthesizer", "drummachine", "bass", "piano"], "voice": "instrumental",
            "bpm": 124.2, "key_name": "A minor", "meter": 4, "title": "T", "artist": "A"}


def test_model_labels_stand_in_for_missing_tags() -> None:
    assert metadata.prompt(LABELLED) == ("Electronic / House, energetic, happy, dark, with synthesizer, drummachine, "
                                         "bass, instrumental, 124 BPM, A minor, 4/4 time, T by A")
    info = metadata.music_info(LABELLED)
    assert info["genre"] == "Electronic / House" and info["keywords"] == ["electronic", "house"]
    assert info["instrument"] == "synthesizer, drummachine, bass"


def test_a_genre_tag_wins_over_the_model() -> None:
    tagged = {**LABELLED, "genre": "Deep House"}
    assert metadata.genre(tagged) == "Deep House" and metadata.prompt(tagged).startswith("Deep House, energetic")


def test_nothing_known_gives_no_labels() -> None:
    bare = {"title": "T", "artist": None, "bpm": None}
    assert metadata.prompt(bare) == "T"
    info = metadata.music_info(bare)
    assert info["genre"] is None and info["instrument"] is None and info["moods"] == [] and info["keywords"] == []
