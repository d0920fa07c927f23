"""Multitrack layouts recognised by file names alone (etl/dsp/multitrack_layouts.py)."""

from __future__ import annotations

import pytest

from etl.dsp import multitrack_layouts
from etl.engine.config import params_hash
from etl.engine.errors import ConfigError
from etl.stages import stems


def roles(paths: list[str], rules: tuple = ()) -> dict[str, tuple[str, str | None, str]]:
    return {p: (m.role, m.stem, m.layout) for p, m in multitrack_layouts.recognise(paths, rules).items()}


def test_built_in_layouts() -> None:
    found = roles(["/m/a/mixture.wav", "/m/a/drums.wav", "/m/a/vocals.wav", "/m/a/cover.jpg",
                   "/m/b/song.ogg", "/m/b/guitar.ogg", "/m/b/notes.mid", "/m/c/Track.stem.mp4"])
    assert found == {
        "/m/a/mixture.wav": ("mix", None, "musdb"), "/m/a/drums.wav": ("stem", "drums", "musdb"),
        "/m/a/vocals.wav": ("stem", "vocals", "musdb"),
        "/m/b/song.ogg": ("stem", "song", "fretsonfire"), "/m/b/guitar.ogg": ("stem", "guitar", "fretsonfire"),
        "/m/c/Track.stem.mp4": ("streams", None, "ni-stems")}
    groups = {m.group for m in multitrack_layouts.recognise(list(found)).values()}
    assert len(groups) == 3


def test_folders_that_only_look_like_a_multitrack_stay_plain() -> None:
    assert roles(["/m/a/drums.wav"]) == {}                       # a lone stem, no mix
    assert roles(["/m/b/song.ogg"]) == {}                        # Frets on Fire needs a part beside the song
    assert roles(["/m/c/mixture.wav"]) == {}                     # a mix without stems
    assert roles(["/m/d/guitar.ogg", "/m/d/drums.ogg"]) == {}    # no song.ogg: not Frets on Fire
    assert roles(["/m/e/drums.txt", "/m/e/mixture.txt"]) == {}   # not audio names


def test_user_rules_come_first_and_are_checked() -> None:
    rule = {"name": "daw", "mix": "sum", "stems": {"drums": ["kick*.wav", "snare*.wav"], "bass": "bass*.wav"}}
    assert roles(["/m/a/Kick 01.wav", "/m/a/bass DI.wav", "/m/a/readme.txt"], (rule,)) == {
        "/m/a/Kick 01.wav": ("stem", "drums", "daw"), "/m/a/bass DI.wav": ("stem", "bass", "daw")}
    with pytest.raises(ConfigError, match="stems"):
        multitrack_layouts.user_layouts([{"name": "x", "mix": "sum"}])
    with pytest.raises(ConfigError, match="unknown key"):
        multitrack_layouts.user_layouts([{"stems": {"a": "a.wav"}, "mixx": "m.wav"}])


def test_stem_names_map_to_the_store_vocabulary_and_fold() -> None:
    assert [multitrack_layouts.store_stem(n) for n in ("Drums", "vocal", "song", "Guitar", "Theremin")] == [
        "drums", "vocals", "backing", "guitar", "theremin"]
    folding = multitrack_layouts.parse_stem_map(["guitar=other", "backing=other"])
    assert multitrack_layouts.store_stem("guitar", folding) == "other"
    assert multitrack_layouts.store_stem("song", folding) == "other"
    with pytest.raises(ConfigError, match="NAME=STEM"):
        multitrack_layouts.parse_stem_map(["guitar"])


def test_a_setting_added_later_is_hashed_only_when_set() -> None:
    # [stems] separate_provided arrived after stores were filled: its default must not re-queue them.
    assert params_hash(stems.Params()) == params_hash(stems.Params(separate_provided=False))
    assert params_hash(stems.Params(separate_provided=True)) != params_hash(stems.Params())
