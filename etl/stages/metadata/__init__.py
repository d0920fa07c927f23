"""metadata (per track): artist, title, album, ... from ID3, Vorbis comments, FLAC and MP4 tags,
and from the song.ini of a rhythm-game song folder (Frets on Fire, Rock Band, Clone Hero: songini.py)
for the fields the audio's own tags lack.

Files are opened read-only and never modified. Compilations are recognised by the compilation
flag or by an album artist such as "Various Artists" (aliases configurable); the track's own
artist tag stays its artist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from etl.dsp import sourcefile
from etl.engine.errors import BadInput, file_error, source_error
from etl.engine.stage import Read, Stage
from etl.engine.tables import Rows, Write
from etl.stages.metadata import songini


@dataclass(frozen=True)
class Params:
    # Album artists that mark a compilation (compared case-insensitively).
    various_artists_aliases: tuple[str, ...] = (
        "Various Artists", "Various", "VA", "V.A.", "V/A", "Verschiedene Interpreten", "Artistes divers",
    )


# Field -> where each tag family keeps it. Vorbis-style names are matched case-insensitively
# (they also serve APEv2 and other dict-like tags).
_ID3 = {
    "artist": ["TPE1"], "title": ["TIT2"], "album": ["TALB"], "album_artist": ["TPE2"],
    "date": ["TDRC", "TYER", "TDOR"], "genre": ["TCON"], "track": ["TRCK"], "disc": ["TPOS"],
    "compilation": ["TCMP"], "bpm": ["TBPM"], "key": ["TKEY", "TXXX:INITIALKEY", "TXXX:initialkey"],
}
_MP4 = {
    "artist": ["\xa9ART"], "title": ["\xa9nam"], "album": ["\xa9alb"], "album_artist": ["aART"],
    "date": ["\xa9day"], "genre": ["\xa9gen"], "track": ["trkn"], "disc": ["disk"], "compilation": ["cpil"],
    "bpm": ["tmpo"], "key": ["----:com.apple.iTunes:initialkey", "----:com.apple.iTunes:KEY"],
}
_VORBIS = {
    "artist": ["artist"], "title": ["title"], "album": ["album"],
    "album_artist": ["albumartist", "album artist", "album_artist"],
    "date": ["date", "year", "originaldate"], "genre": ["genre"],
    "track": ["tracknumber", "track"], "track_total": ["tracktotal", "totaltracks"],
    "disc": ["discnumber", "disc"], "compilation": ["compilation"],
    "bpm": ["bpm", "tempo"], "key": ["initialkey", "key"],
}


def _first_text(value: Any) -> str | None:
    """A tag value (ID3 frame, MP4 list, Vorbis list, bytes, tuples) as one string."""
    if value is None:
        return None
    genres = getattr(value, "genres", None)  # ID3 TCON resolves "(17)" to "Rock"
    if genres:
        return str(genres[0]).strip() or None
    text = getattr(value, "text", value)
    if isinstance(text, (list, tuple)) and not (len(text) == 2 and all(isinstance(v, int) for v in text)):
        text = text[0] if text else None
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    if isinstance(text, tuple):  # MP4 trkn / disk: (number, total)
        return "/".join(str(v) for v in text)
    if text is None:
        return None
    text = str(text).strip().strip("\x00")
    return text or None


def _raw_fields(tags: Any) -> tuple[str, dict[str, str | None]]:
    from mutagen._vorbis import VComment  # FLAC, Ogg Vorbis, Opus, Speex
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    lookup: Callable[[str], Any]
    if isinstance(tags, ID3):
        table, tag_format = _ID3, "id3"
        lookup = tags.get
    elif isinstance(tags, MP4Tags):
        table, tag_format = _MP4, "mp4"
        lookup = tags.get
    else:
        table = _VORBIS  # also right for APEv2 and other name -> value tags
        tag_format = "vorbis" if isinstance(tags, VComment) else type(tags).__name__.lower()
        lowered = {str(k).lower(): v for k, v in tags.items()}
        lookup = lowered.get
    found: dict[str, str | None] = {}
    for name, keys in table.items():
        found[name] = next((text for key in keys if (text := _first_text(lookup(key))) is not None), None)
    return tag_format, found


# Typed columns take only values that fit them; anything else is stored as NULL (the raw text
# stays in `raw_tags`), so a tag value can never make the batch write fail.
_INT32_MAX = 2**31 - 1
_BPM_RANGE = (1.0, 1000.0)  # beyond this a "BPM" is a typo or another field typed into it


def _int32(value: int | None, minimum: int = 0) -> int | None:
    return value if value is not None and minimum <= value <= _INT32_MAX else None


def _number_pair(text: str | None) -> tuple[int | None, int | None]:
    """'3/12' -> (3, 12); '03' -> (3, None); junk or numbers that do not fit an INTEGER -> None."""
    if not text:
        return None, None
    match = re.match(r"\s*(\d+)\s*(?:/\s*(\d+))?", text)
    if not match:
        return None, None
    total = _int32(int(match.group(2))) if match.group(2) else None
    return _int32(int(match.group(1))), total


def _to_float(text: str | None) -> float | None:
    """A BPM tag: a finite number in a plausible range, else None."""
    try:
        value = float(str(text).replace(",", ".")) if text else None
    except (ValueError, OverflowError):
        return None
    if value is None or not math.isfinite(value) or not _BPM_RANGE[0] <= value <= _BPM_RANGE[1]:
        return None
    return value


def _clean(text: str | None) -> str | None:
    """Text that any UTF-8 column accepts (a lone surrogate from a broken UTF-16 tag becomes U+FFFD)."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def normalise(tag_format: str, raw: dict[str, str | None], aliases: tuple[str, ...]) -> dict[str, Any]:
    """Typed, validated tag values (never failing on a value) plus the raw text of every field read."""
    raw = {name: _clean(text) for name, text in raw.items()}
    track_number, track_total = _number_pair(raw.get("track"))
    disc_number, _ = _number_pair(raw.get("disc"))
    year_match = re.search(r"\b(\d{4})\b", raw.get("date") or "")
    year = int(year_match.group(1)) if year_match else None
    album_artist = raw.get("album_artist")
    flag = (raw.get("compilation") or "").strip().lower() in {"1", "true", "yes", "y"}
    various = album_artist is not None and album_artist.strip().lower() in {a.lower() for a in aliases}
    compilation = flag or various
    artist = raw.get("artist")
    if artist is None and not compilation:
        artist = album_artist  # an album by one artist often only tags the album artist
    return {
        "tag_format": tag_format,
        "artist": artist,
        "title": raw.get("title"),
        "album": raw.get("album"),
        "album_artist": album_artist,
        "year": year if year else None,  # "0000" is a placeholder, not a year
        "date_text": raw.get("date"),
        "genre": raw.get("genre"),
        "track_number": track_number,
        "track_total": track_total or _number_pair(raw.get("track_total"))[0],
        "disc_number": disc_number,
        "compilation": compilation,
        "bpm_tag": _to_float(raw.get("bpm")),
        "key_tag": raw.get("key"),
        "raw_tags": {name: text for name, text in raw.items() if text is not None},
    }


def read_raw(path: str) -> tuple[str, dict[str, str | None]]:
    """The tag family and the raw text of each of our fields, as the audio file holds them."""
    import mutagen

    try:
        parsed = mutagen.File(path)  # read-only: mutagen writes only on .save()
    except OSError as error:
        raise file_error(error, path, "reading") from None
    except mutagen.MutagenError as error:  # it wraps OSErrors too: a vanished file is not bad tags
        raise source_error(path) or BadInput(f"unreadable tags: {error}") from None
    if parsed is None or parsed.tags is None:
        return "none", {}
    return _raw_fields(parsed.tags)


def read_tags(path: str, aliases: tuple[str, ...]) -> dict[str, Any]:
    return normalise(*read_raw(path), aliases)


def with_song_ini(tag_format: str, raw: dict[str, str | None], ini: dict[str, str]
                  ) -> tuple[str, dict[str, str | None]]:
    """The audio's tags, with song.ini filling the fields they lack.

    The audio's own tags win where it has them: where a song folder's stems are tagged, the tags are
    the release's ("Muldjord"), while song.ini is the game's display text, often decorated
    ("Muldjord - www.muldjord.com", "Composed and performed by Sectoid"). Most song folders' audio
    has no tags at all, and then song.ini is all there is. Every song.ini value is also kept under
    `song.ini:<field>` in raw_tags, so SQL can prefer it (e.g. over a stem's title "Song (fof rhythm)").
    """
    merged = dict(raw)
    filled = False
    own = any(text is not None for text in raw.values())  # an Ogg file has a comment block, often empty
    for name, text in ini.items():
        merged[f"song.ini:{name}"] = text
        if merged.get(name) is None:
            merged[name] = text
            filled = True
    if filled:
        tag_format = f"{tag_format}+song.ini" if own else "song.ini"
    return tag_format, merged


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    with sourcefile.unchanged(item["source"]) as path:
        tag_format, raw = read_raw(path)
    if item.get("song_ini"):  # the track's audio sits in a rhythm-game song folder
        tag_format, raw = with_song_ini(tag_format, raw, songini.read(item["song_ini"]))
    return normalise(tag_format, raw, params.various_artists_aliases)


write = Write(rows=(Rows("read_tags", "track_tags", lambda o, params: [{"track_id": o.item_id, **o.result}]),),
              statements=("upsert_tags",))


STAGE = Stage(
    name="metadata",
    description="read artist / title / album / genre / BPM / key tags with mutagen",
    process=process,
    write=write,
    reads=(Read("ingest", "track_id"),),
    needs=("multitrack",),  # a multitrack group's track: its tags come from the file the group names
    presence=True,
    version=2,  # 2: values that do not fit are NULL with the raw text in raw_tags (stores read before re-read)
    Params=Params,
    chunk_size=16,
)
