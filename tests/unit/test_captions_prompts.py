"""Caption templates (filling, dropping clauses without a value) and output hygiene."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest

from etl.stages.captions import prompts
from etl.stages.captions.prompts import Rejected, clean, fill


def test_a_placeholder_without_value_drops_its_clause_never_none() -> None:
    template = ("A {genre_top} track[ at {bpm} BPM][ in {key_name}].\n"
                "[- Chords: {chords}]\n"
                "- Artist: {artist}\n"
                "[Moods: {moods}[, production quality {aes_pq} of 10]]\n"
                "End.")
    facts = {"genre_top": "Electronic---House", "bpm": 123.46, "key_name": None, "artist": float("nan"),
             "moods": ["happy", "dark"]}  # no chords, no aes_pq: columns this store does not have
    assert fill(template, facts) == ("A Electronic / House track at 123 BPM.\n"
                                     "Moods: happy, dark\n"
                                     "End.")
    full = fill(template, {**facts, "key_name": "F# minor", "chords": "Am F C G", "aes_pq": 7.25, "artist": "X"})
    assert full == ("A Electronic / House track at 123 BPM in F# minor.\n"
                    "- Chords: Am F C G\n"
                    "- Artist: X\n"
                    "Moods: happy, dark, production quality 7.2 of 10\n"
                    "End.")
    for text in (fill(template, {}), fill(template, facts)):
        assert "None" not in text and "nan" not in text and "{" not in text and "[" not in text


def test_values_are_text_not_syntax_and_escapes_are_literal() -> None:
    assert fill(r"Title: {title} \[live\] \{x\}", {"title": "Song [Remix] {2}"}) == "Title: Song [Remix] {2} [live] {x}"
    assert fill("[{a} and {b}]|", {"a": "1", "b": ""}) == "|"  # an empty text is no value
    assert fill("[{a}]|", {"a": []}) == "|"


@pytest.mark.parametrize(("name", "value", "text"), [
    ("bpm", 127.96, "128"), ("loudness_integrated_lufs", -9.234, "-9.2"), ("aes_ce", Decimal("6.55"), "6.5"),
    ("danceability", 1.23456, "1.23"), ("n_bars", 8, "8"), ("tempo_steady", True, "yes"),
    ("genre_top", "Rock---Punk", "Rock / Punk"), ("instruments", ["drums", None, "bass"], "drums, bass"),
    ("duration_s", 15.04, "15.0"), ("title", "  two\n lines ", "two lines"), ("x", math.inf, None),
])
def test_values_read_with_their_units(name: str, value: object, text: str | None) -> None:
    assert prompts.format_value(name, value) == text


def test_audio_marker_goes_where_the_template_says() -> None:
    template = "[{audio}\n]Facts:\n- Key: {key_name}"
    assert fill(template, {"key_name": "C major"}) == "Facts:\n- Key: C major"
    assert fill(template, {"key_name": "C major"}, audio_marker="<__media__>") == "<__media__>\nFacts:\n- Key: C major"


def test_shipped_templates_share_the_facts_block_and_a_folder_overrides_file_by_file(tmp_path: Path) -> None:
    from etl.stages.captions import KINDS

    shipped = {kind: prompts.load_template(kind) for kind in KINDS}
    facts_block = (prompts.SHIPPED / "facts.txt").read_text().rstrip("\n")
    assert all(t.text.startswith(facts_block) for t in shipped.values())  # one prefix for a crop's kinds
    assert len({t.hash for t in shipped.values()}) == len(KINDS)
    (tmp_path / "genre_mood.txt").write_text("{facts}\nGenre only:\n")
    (tmp_path / "facts.txt").write_text("[Genre: {genre}]\n")
    mine = prompts.load_template("genre_mood", str(tmp_path))
    assert mine.text == "[Genre: {genre}]\nGenre only:\n" and str(tmp_path) in mine.source
    assert prompts.load_template("full", str(tmp_path)).text.startswith("[Genre: {genre}]")  # facts from the folder
    assert prompts.load_template("technical", str(tmp_path / "absent")).hash == shipped["technical"].hash


PROMPT = "Facts about a piece of music:\n- Genre: house\n\nWrite one paragraph describing this music.\nDescription:\n"


def test_clean_strips_echo_special_tokens_and_whitespace() -> None:
    assert clean(PROMPT + " A warm house groove.<end_of_turn>\nuser: more", PROMPT) == "A warm house groove."
    assert clean("Description: <|im_start|> Driving   four-on-the-floor\n\nkick.</s>junk", PROMPT) \
        == "Driving four-on-the-floor kick."
    assert clean('  "Slow, dark ambient pads."  ', PROMPT) == "Slow, dark ambient pads."


def test_clean_caps_length_at_a_sentence_end() -> None:
    text = "A bright synth line leads. " * 10 + "Then the drums come in with a long fill that goes on"
    capped = clean(text, PROMPT, prompts.Hygiene(max_chars=100, min_distinct_ngrams=0.0))
    assert len(capped) <= 100 and capped.endswith(".")


def test_a_caption_cut_by_max_tokens_ends_at_its_last_whole_sentence() -> None:
    text = "A slow waltz for strings and harp. The melody rises over a soft pulse while the"
    assert clean(text, PROMPT, truncated=True) == "A slow waltz for strings and harp."
    assert clean(text, PROMPT) == text  # a natural end keeps it all
    assert clean("A slow waltz for strings and harp that rises over a", PROMPT, truncated=True) \
        == "A slow waltz for strings and harp that rises over"  # no sentence end: the last whole word


@pytest.mark.parametrize(("output", "reason"), [
    ("", "empty caption"),
    ("<eos>", "empty caption"),
    ("  ...  ", "empty caption"),
    ("the beat goes on " * 12, "degenerate caption: repetitive"),
    ("la" * 100, "degenerate caption: repetitive"),
    ("Write one paragraph describing this music. Facts about a piece of music", "copies the prompt"),
])
def test_clean_rejects_empty_repetitive_and_copied_output(output: str, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        clean(output, PROMPT)


def test_a_varied_caption_passes() -> None:
    caption = ("A warm deep-house groove at a relaxed tempo: soft kick, rounded bass, airy pads and a "
               "filtered vocal chop that drifts in and out over eight bars.")
    assert clean(caption, PROMPT) == caption
