"""song.ini, the tags of rhythm-game song folders: read leniently, merged under the audio's own tags."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest

from etl.engine.errors import TransientError
from etl.stages import metadata
from etl.stages.metadata import songini
from tests.audio_files import tag_file, write_format
from tests.helpers import corpus, source_of

PARAMS = metadata.Params()


def test_frets_on_fire_files_as_they_ship() -> None:
    # The Debian package's song.ini: CRLF line ends, a long high-score line, Sectoid's own wording.
    text = songini.decode(corpus("fretsonfire_feelings_40s", "song.ini").read_bytes())
    assert songini.fields(songini.parse(text)) == {"title": "Feelings", "artist": "Composed and performed by Sectoid"}
    # Others of that package end their lines with a lone CR (old Mac) and leave blank lines between.
    old_mac = "[song]\r\r\rname = Metal madness\r\rartist = Sectoid\r\r"
    assert songini.fields(songini.parse(old_mac)) == {"title": "Metal madness", "artist": "Sectoid"}


def test_keys_and_section_in_any_case_other_sections_and_stray_lines_ignored() -> None:
    text = ("; written by hand\nnot a setting\n[library]\nname = not this\n"
            "[Song]\nName = the last of a repeated key wins\nARTIST = DragonForce\nAlbum=Inhuman Rampage\n"
            "genre = Power Metal\nyear = , 2006\nalbum_track = 1\ncharter = someone\nloading_phrase = x = y\n"
            "name = Through the Fire\n# a comment\ndelay\n"
            "[song]\nartist = a second [song] section is not read\n")
    values = songini.parse(text)
    assert values["charter"] == "someone" and values["loading_phrase"] == "x = y"
    assert songini.fields(values) == {"title": "Through the Fire", "artist": "DragonForce",
                                      "album": "Inhuman Rampage", "genre": "Power Metal", "date": ", 2006",
                                      "track": "1"}
    assert songini.parse("name = no section\n") == {}
    assert songini.fields(songini.parse("[song]\nname =\nartist = \n")) == {}


@pytest.mark.parametrize("encoded", [
    "[song]\nartist = Motörhead\nname = Ace of Spades ’80\n".encode(),                       # UTF-8
    codecs.BOM_UTF8 + "[song]\nartist = Motörhead\nname = Ace of Spades ’80\n".encode(),     # UTF-8 with a BOM
    "[song]\nartist = Motörhead\nname = Ace of Spades ’80\n".encode("cp1252"),              # Windows Notepad
    codecs.BOM_UTF16_LE + "[song]\nartist = Motörhead\nname = Ace of Spades ’80\n".encode("utf-16-le"),
], ids=["utf-8", "utf-8-bom", "cp1252", "utf-16-bom"])
def test_encodings(encoded: bytes) -> None:
    assert songini.fields(songini.parse(songini.decode(encoded))) == {"artist": "Motörhead",
                                                                      "title": "Ace of Spades ’80"}


def test_latin1_bytes_that_no_code_page_defines_still_read() -> None:
    assert songini.decode(b"[song]\nartist = Bj\xf6rk \x81\n") == "[song]\nartist = Björk \x81\n"


def ini_item(path: Path) -> dict:
    info = path.stat()
    return {"path": str(path), "size_bytes": info.st_size, "mtime_ns": info.st_mtime_ns}


def read(audio: Path, ini: Path | None) -> dict:
    return metadata.process({"item_id": "t", **source_of(str(audio)), "song_ini": ini and ini_item(ini)}, PARAMS)


def test_song_ini_fills_only_what_the_audio_lacks_and_is_kept_raw(tmp_path: Path) -> None:
    ini = tmp_path / "song.ini"
    ini.write_text("[song]\nname = Chaos God\nartist = Muldjord - www.muldjord.com\nalbum = Demo\n"
                   "genre = Death Metal\nyear = 2007\n")
    untagged = write_format(tmp_path, "ogg")
    tags = read(untagged, ini)
    assert (tags["artist"], tags["title"], tags["album"], tags["genre"], tags["year"]) == (
        "Muldjord - www.muldjord.com", "Chaos God", "Demo", "Death Metal", 2007)
    assert tags["tag_format"] == "song.ini"
    # The stem's own tags win where it has them (the release's, not the game's display text);
    # song.ini fills the rest, and every song.ini value stays in raw_tags.
    tag_file(untagged, "ogg", {"artist": "Muldjord", "title": "Chaos God"})
    tags = read(untagged, ini)
    assert (tags["artist"], tags["title"], tags["album"], tags["year"]) == ("Muldjord", "Chaos God", "Demo", 2007)
    assert tags["tag_format"] == "vorbis+song.ini"
    assert tags["raw_tags"]["artist"] == "Muldjord"
    assert tags["raw_tags"]["song.ini:artist"] == "Muldjord - www.muldjord.com"
    assert read(untagged, None)["tag_format"] == "vorbis"


def test_a_song_ini_changed_since_the_scan_fails_the_item_as_transient(tmp_path: Path) -> None:
    ini = tmp_path / "song.ini"
    ini.write_text("[song]\nname = Before\n")
    item = ini_item(ini)
    ini.write_text("[song]\nname = After, longer\n")
    audio = write_format(tmp_path, "ogg")
    with pytest.raises(TransientError, match="song.ini changed since the scan"):
        metadata.process({"item_id": "t", **source_of(str(audio)), "song_ini": item}, PARAMS)
    os.unlink(ini)
    with pytest.raises(TransientError, match="no longer exists"):
        metadata.process({"item_id": "t", **source_of(str(audio)), "song_ini": item}, PARAMS)
