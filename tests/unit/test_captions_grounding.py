"""The grounding check (etl/stages/captions/grounding.py): hand-written captions, true and false,
against a crop's facts. Each row: the caption, what it must be grounded on, and the words a failure's
reason must hold (None: it passes)."""

from __future__ import annotations

import pytest

from etl.stages.captions import grounding

# A crop's facts as items.sql hands them to the stage (a row of crops_all_v; the columns a store has).
FACTS = {
    "artist": "Mattias Westlund", "title": "Traveling Minstrels", "album": "Battle for Wesnoth", "year": 2006,
    "genre": "Classical", "genre_top": "Classical---Baroque", "genres": ["Classical---Baroque", "Folk, World, & Country---Celtic"],
    "instruments": ["acousticguitar", "flute", "drums"], "voice": "instrumental", "stems": [], "empty_stems": [],
    "bpm": 96.3, "track_bpm": 96.0, "meter": 3, "key_name": "F# minor",
    "loudness_integrated_lufs": -14.23, "loudness_range_lu": 5.2, "true_peak_dbtp": -1.1,
    "duration_s": 12.8, "track_duration_s": 211.0, "n_bars": 8,
}
# What the demo store knows of a Sectoid crop (no genre or instrument model, a multitrack's stems).
SECTOID = {"artist": "Composed and performed by Sectoid", "title": "Metal madness", "bpm": 149.95, "meter": 4,
           "key_name": "C minor", "loudness_integrated_lufs": -8.12, "loudness_range_lu": 1.68,
           "stems": ["backing", "guitar"], "empty_stems": [], "duration_s": 12.81, "n_bars": 8}

CASES = [
    # Facts restated, in the ways a caption says them.
    ("A baroque piece at 96 BPM in three-four feel, 3/4, in F# minor.", FACTS, ("tempo", "meter", "key", "genre"), None),
    ("Traveling Minstrels by Mattias Westlund, from Battle for Wesnoth (2006).", FACTS, ("year", "artist", "title", "album"), None),
    ("In G flat minor, about -14 LUFS with a loudness range of 5 LU, peaking at -1.1 dBTP.", FACTS, ("key", "loudness"), None),
    ("A 13-second excerpt of an almost four-minute track, 8 bars long, in 4-bar phrases.", FACTS, ("duration",), None),
    ("Celtic folk with acoustic guitar, flute and drums; no vocals.", FACTS, ("genre", "instrument"), None),
    ("A 97 BPM waltz with three beats to the bar.", FACTS, ("tempo", "meter"), None),  # 2 %: 96.3 -> 97 is fine
    ("A calm, warm and gentle mood.", FACTS, (), None),
    ("Chords N E N E Em A over 8 bars, as a Sound Engineer hears it.", FACTS, ("duration",), None),  # no names
    ("At 96 BPM through Gm F C Gm F C Dm.", FACTS, ("tempo",), None),  # chords are not checked (not in the list)  # nothing checkable: passes, grounded on nothing
    ("Metal madness by Sectoid: 150 BPM, 4/4, C minor, -8 LUFS, with guitar.", SECTOID,
     ("tempo", "meter", "key", "loudness", "artist", "title", "instrument"), None),
    # Numbers that contradict.
    ("A lively piece at 192 BPM.", FACTS, (), "tempo 192 BPM contradicts the facts (96 BPM)"),  # double: refused
    ("A lively piece at 48 BPM.", FACTS, (), "tempo 48 BPM contradicts"),  # half: refused
    ("A march in 4/4.", FACTS, (), "meter 4/4 contradicts the facts (3 beats to the bar)"),
    ("In A major.", FACTS, (), "key A major contradicts the facts (F# minor)"),
    ("In F# major.", FACTS, (), "key F# major contradicts"),  # the tonic right, the mode wrong
    ("Mastered loud at -8 LUFS.", FACTS, (), "loudness -8 LUFS contradicts the facts (-14.2 LUFS)"),
    ("A 30 seconds excerpt.", FACTS, (), "duration 30 seconds contradicts"),
    ("Recorded in 1987.", FACTS, (), "year 1987 contradicts the facts (2006)"),
    ("A sound of the 1990s.", FACTS, (), "year 1990s contradicts"),
    # Statements the facts cannot back.
    ("Recorded in 1987.", SECTOID, (), "states year 1987, which the facts do not give"),
    ("A 12 dB crest factor at 150 BPM.", {"bpm": 150.0}, ("tempo",), "states loudness 12 dB, which the facts do not give"),
    ("Genre: Jazz - Style: Blues - Mood: Sad", SECTOID, (), "states genre 'jazz', which the facts do not give"),
    ("An upbeat house groove.", FACTS, (), "genre 'house' is not among the facts (classical"),
    ("Guitar, piano, drums and bass.", SECTOID, ("instrument",), "instrument 'piano' is not among the facts (guitar)"),
    ("A saxophone solo.", FACTS, (), "instrument 'saxophone' is not among the facts (acousticguitar, drum, flute)"),
    ("A soaring female vocal line.", FACTS, (), "instrument 'vocal' contradicts the facts (voice: instrumental)"),
    # Invented names (gemma-3-270m's "instrumentation" caption of a demo crop, and others).
    ("Guitar: David L. Smith - Bass: John H. Williams", SECTOID, ("instrument",), "names 'David L. Smith', not the crop's"),
    ("A track by Sarah Connor, for guitar.", FACTS, (), "names 'Sarah Connor', not the crop's (artist 'Mattias Westlund'"),
    ("Performed by Smith on guitar.", SECTOID, (), "names 'Smith', not the crop's"),
    ("The Night Riders play a fast tune.", {}, (), "names 'The Night Riders', not the crop's (the facts give no names)"),
]


@pytest.mark.parametrize(("caption", "facts", "grounded", "reason"), CASES, ids=[c[0][:40] for c in CASES])
def test_captions_are_checked_against_the_crop_s_facts(caption: str, facts: dict, grounded: tuple[str, ...],
                                                       reason: str | None) -> None:
    verdict = grounding.check(caption, facts)
    assert verdict.ok == (reason is None), verdict
    if reason is None:
        assert verdict.grounded == grounded
    else:
        assert reason in verdict.reason() and verdict.reason().startswith("ungrounded caption: "), verdict.reason()
        assert set(grounded) <= set(verdict.grounded), verdict


def test_the_audio_backend_may_name_what_it_hears_but_not_numbers_or_names() -> None:
    heard = grounding.check("A house groove with piano at 96 BPM.", FACTS, heard=True)
    assert heard.ok and heard.grounded == ("tempo",)
    assert not grounding.check("A house groove at 120 BPM.", FACTS, heard=True).ok
    assert not grounding.check("Played by Sarah Connor.", FACTS, heard=True).ok


def test_grounded_lists_aspects_in_a_fixed_order_each_once() -> None:
    verdict = grounding.check("Classical, 96 BPM, classical again at 96 BPM, in F# minor.", FACTS)
    assert verdict.grounded == ("tempo", "key", "genre")
    assert set(verdict.grounded) <= set(grounding.ASPECTS)
