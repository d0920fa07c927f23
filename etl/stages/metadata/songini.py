"""song.ini: the tags of a Frets on Fire / Rock Band / Clone Hero / Phase Shift song folder.

Rhythm-game song folders (`song.ogg`, `guitar.ogg`, `notes.mid`...) describe their song in an INI
file beside the audio, whose stems often carry no tags (or a stem's: "Song (fof rhythm)"):

    [song]
    name = Feelings
    artist = Sectoid
    album = ...
    genre = rock
    year = 2007          (Frets on Fire wrote ", 2007")
    charter = ...        (Clone Hero; and loading_phrase, diff_guitar, song_length, ...)

Written by hand on every platform, these files come in UTF-8 or a Windows code page, with or without
a BOM (UTF-16 from Notepad, too), with CRLF, LF or old-Mac CR line ends, `[Song]` or `[song]`,
keys in any case, and lines that are no `key = value` at all. So this reader is lenient where
configparser is strict (it stops at a duplicate key or a stray line): the first [song] section's
`key = value` lines, anything else ignored.
"""

from __future__ import annotations

import codecs
import os
import re
from typing import Any

from etl.engine.errors import TransientError, file_error

NAME = "song.ini"
MAX_BYTES = 1 << 20  # a song.ini is a few KB (Frets on Fire's high-score lines included); more is not one

# Our field names (etl/stages/metadata/__init__.py) <- song.ini keys, first found wins.
FIELDS = {
    "artist": ("artist",),
    "title": ("name",),
    "album": ("album",),
    "genre": ("genre",),
    "date": ("year",),
    "track": ("album_track", "track"),  # Clone Hero / Phase Shift: the song's number on its album
}

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_SECTION = re.compile(r"^\s*\[\s*([^\]]*?)\s*\]")


def decode(data: bytes) -> str:
    """The file's text: by its BOM where it has one, else UTF-8, else Windows-1252 (what Windows
    editors wrote for Western names: 0x92 is ’), else Latin-1 (which reads any byte)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def parse(text: str) -> dict[str, str]:
    """The `key = value` pairs of the first [song] section (keys lower-cased; of a repeated key the
    last wins, as Frets on Fire's ConfigParser read it); {} when there is none."""
    found: dict[str, str] = {}
    inside = False
    for line in text.splitlines():  # \r\n, \n and a lone \r alike
        section = _SECTION.match(line)
        if section:
            if inside:
                break  # the first [song] section only
            inside = section.group(1).lower() == "song"
            continue
        if not inside or line.lstrip().startswith((";", "#")):
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip():
            found[key.strip().lower()] = value.strip().strip("\x00")
    return found


def fields(values: dict[str, str]) -> dict[str, str]:
    """song.ini's values under our field names (empty values left out)."""
    out = {}
    for name, keys in FIELDS.items():
        text = next((values[k] for k in keys if values.get(k)), None)
        if text:
            out[name] = text
    return out


def read(ini: dict[str, Any]) -> dict[str, str]:
    """Our fields from the song.ini the item names (`path`, and `size_bytes` / `mtime_ns` as the scan
    saw them: the item's fingerprint covers them). A file changed since the scan fails the item as
    transient, so what is stored always matches the fingerprint; the next run's scan sees the change."""
    path = ini["path"]
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if (info.st_size, info.st_mtime_ns) != (ini["size_bytes"], ini["mtime_ns"]):
                raise TransientError(f"{NAME} changed since the scan: re-reading it next run")
            data = handle.read(MAX_BYTES)
    except OSError as error:
        raise file_error(error, path, "reading") from None
    return fields(parse(decode(data)))
