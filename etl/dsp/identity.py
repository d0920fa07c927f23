"""A track's identity is its audio, not its bytes.

`identify` reads a file once, front to back in 1 MiB chunks (bounded memory whatever its size), and
takes two digests in that pass: `sha256` of every byte (change detection) and `audio_sha256` of the
audio-carrying parts only, so that re-tagging (tags added, edited or removed, padding resized, cover
art added) keeps the identity and any change to the audio changes it. Where a container can be
parsed exactly, only its audio parts are hashed; anything else falls back to the decoded PCM
(soundfile), else to the bytes. A malformed container never raises: it falls back. OSError does.

Each audio digest starts with its method's name, so two methods never give the same value.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from typing import Any

CHUNK = 1 << 20          # streaming read size: memory stays bounded for multi-GB files
SAMPLE_BLOCKS = 16       # sample_hash: blocks at evenly spaced offsets, first and last included
SAMPLE_BLOCK = 4096
PCM_BLOCK_FRAMES = 1 << 16

METHODS = ("mp3-frames", "flac-frames", "ogg-packets", "riff-chunks", "aiff-chunks", "mp4-mdat",
           "decoded-pcm", "bytes")


@dataclass(frozen=True)
class FileIdentity:
    audio_sha256: str   # hex sha256 of the audio payload only (tag blocks excluded)
    method: str         # how audio_sha256 was taken: one of METHODS
    sha256: str         # hex sha256 of all the file's bytes (change detection)
    sample_hash: str    # = sample_hash(path), from the same open file
    size_bytes: int


class _Malformed(Exception):
    """The container is not what its header says (or is cut short): fall back, never raise."""


# ---------------------------------------------------------------------------------------------
# sample_hash: a cheap check that a file is still the one identified.

def _sample_digest(fd: int, size: int) -> str:
    # The size plus 16 blocks of 4 KiB (first and last included): ~64 KiB read whatever the size,
    # with pread so that the streaming position of `identify` is untouched.
    digest = hashlib.sha256(b"sample-v1\0" + size.to_bytes(8, "little"))
    if size <= SAMPLE_BLOCKS * SAMPLE_BLOCK:
        offsets = [0]
        length = size
    else:
        span = size - SAMPLE_BLOCK
        offsets = [span * i // (SAMPLE_BLOCKS - 1) for i in range(SAMPLE_BLOCKS)]
        length = SAMPLE_BLOCK
    for offset in offsets:
        digest.update(os.pread(fd, length, offset))
    return digest.hexdigest()


def sample_hash(path: str) -> str:
    """sha256 over the size and 16 blocks of 4 KiB at evenly spaced offsets (the whole file when small)."""
    with open(path, "rb", buffering=0) as handle:
        return _sample_digest(handle.fileno(), os.fstat(handle.fileno()).st_size)


# ---------------------------------------------------------------------------------------------
# One streaming pass: every chunk read goes into the whole-file digest as it arrives; parsers
# take small headers as bytes and hand large spans to the audio digest as memoryview slices.

class _Stream:
    def __init__(self, handle: Any, whole: Any) -> None:
        self._handle = handle
        self._whole = whole
        self._chunk = bytearray(CHUNK)       # reused: no allocation per read
        self._view = memoryview(self._chunk)
        self._buf = self._view[:0]           # unread part of the current chunk
        self._pending = b""                  # bytes peeked back, served before _buf
        self.pos = 0                         # file offset of the next unread byte
        self.total = 0                       # bytes read from the file so far

    def _next(self) -> bool:
        count = self._handle.readinto(self._chunk)
        if not count:
            return False
        self._buf = self._view[:count]
        self._whole.update(self._buf)
        self.total += count
        return True

    def read(self, n: int) -> bytes:
        """Up to n bytes (fewer only at the end of the file); for headers, not bulk data."""
        if self._pending:
            out = self._pending[:n]
            self._pending = self._pending[n:]
        else:
            out = b""
        if len(out) < n:
            parts = [out]
            need = n - len(out)
            while need:
                if not len(self._buf) and not self._next():
                    break
                take = self._buf[:need]
                self._buf = self._buf[len(take):]
                parts.append(bytes(take))
                need -= len(take)
            out = b"".join(parts)
        self.pos += len(out)
        return out

    def exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise _Malformed(f"cut short: {n} bytes wanted at {self.pos - len(data)}")
        return data

    def peek(self, n: int) -> bytes:
        data = self.read(n)
        self._pending = data + self._pending
        self.pos -= len(data)
        return data

    def feed(self, n: int, digest: Any | None) -> None:
        """Pass the next n bytes to `digest` (None: skip them); a file that ends first is malformed."""
        self.pos += n
        if self._pending:
            take = self._pending[:n]
            self._pending = self._pending[len(take):]
            if digest is not None:
                digest.update(take)
            n -= len(take)
        while n:
            if not len(self._buf) and not self._next():
                raise _Malformed("cut short inside a block")
            take = self._buf[:n]
            self._buf = self._buf[len(take):]
            if digest is not None:
                digest.update(take)
            n -= len(take)

    def window(self) -> memoryview:
        """The unread rest of the current chunk, to parse in place (empty while peeked bytes wait)."""
        return self._view[:0] if self._pending else self._buf

    def advance(self, n: int) -> None:
        """Consume n bytes of window() (already hashed by the caller where it wanted them)."""
        self._buf = self._buf[n:]
        self.pos += n

    def at_end(self) -> bool:
        return not self.peek(1)

    def drain(self) -> None:
        """Read to the end of the file, for the whole-file digest."""
        self._pending = b""
        self._buf = self._view[:0]
        while self._next():
            pass


def _method_digest(method: str) -> Any:
    return hashlib.sha256(method.encode() + b"\0")


# ---------------------------------------------------------------------------------------------
# Tags that sit around MP3 and FLAC data.

def _syncsafe(data: bytes) -> int:
    if any(b & 0x80 for b in data):
        raise _Malformed("ID3v2 size is not syncsafe")
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def _skip_id3v2(stream: _Stream) -> None:
    # Taggers can leave more than one ID3v2 tag in front of the audio; each one is skipped.
    while True:
        header = stream.peek(10)
        if len(header) < 10 or header[:3] != b"ID3":
            return
        if header[3] == 0xFF or header[4] == 0xFF:
            raise _Malformed("bad ID3v2 version")
        footer = 10 if header[5] & 0x10 else 0  # ID3v2.4 footer flag: 10 more bytes
        stream.feed(10 + _syncsafe(header[6:10]) + footer, None)


def _audio_end(fd: int, size: int) -> int:
    """Where the audio ends: before the trailing ID3v1, APEv2, Lyrics3v2 and appended ID3v2 tags
    (in any order and number), found with a few small reads at the end of the file."""
    end = size
    while True:
        if end >= 128 and os.pread(fd, 3, end - 128) == b"TAG":
            end -= 128
            if end >= 227 and os.pread(fd, 4, end - 227) == b"TAG+":  # enhanced ID3v1 block
                end -= 227
            continue
        if end >= 32:
            footer = os.pread(fd, 32, end - 32)
            if footer[:8] == b"APETAGEX":
                tag_size, _, flags = struct.unpack_from("<III", footer, 12)
                total = tag_size + (32 if flags & 0x80000000 else 0)  # tag_size excludes the header
                if tag_size < 32 or total > end:
                    raise _Malformed("APEv2 tag size out of range")
                end -= total
                continue
        if end >= 15:
            tail = os.pread(fd, 15, end - 15)
            if tail[6:] == b"LYRICS200":
                if not tail[:6].isdigit():
                    raise _Malformed("Lyrics3v2 size is not a number")
                total = int(tail[:6]) + 15
                if total > end or os.pread(fd, 11, end - total) != b"LYRICSBEGIN":
                    raise _Malformed("Lyrics3v2 tag without its start")
                end -= total
                continue
        if end >= 20:
            footer = os.pread(fd, 10, end - 10)
            if footer[:3] == b"3DI":  # ID3v2.4 appended at the end, found by its footer
                total = _syncsafe(footer[6:10]) + 20
                if total > end or os.pread(fd, 3, end - total) != b"ID3":
                    raise _Malformed("ID3v2 footer without its tag")
                end -= total
                continue
        return end


def _is_mpeg_sync(head: bytes) -> bool:
    # 11 sync bits, a real layer (not 00: that is ADTS AAC), a usable bitrate and sample rate.
    return (len(head) >= 4 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0
            and head[1] & 0x18 != 0x08 and head[2] & 0xF0 != 0xF0 and head[2] & 0x0C != 0x0C)


_MPEG_KBPS = {  # (MPEG-1?, layer) -> bitrate by index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame_length(head: bytes) -> int | None:
    """Bytes in the frame that starts with `head` (None for free-format bitrate)."""
    version, layer = (head[1] >> 3) & 3, 4 - ((head[1] >> 1) & 3)
    index, rate = head[2] >> 4, _MPEG_RATES[version][(head[2] >> 2) & 3]
    if index == 0:
        return None
    bits = _MPEG_KBPS[(version == 3, layer)][index - 1] * 1000
    padding = (head[2] >> 1) & 1
    if layer == 1:
        return (12 * bits // rate + padding) * 4
    return (144 if layer == 2 or version == 3 else 72) * bits // rate + padding


def _hash_mp3(stream: _Stream, fd: int, size: int) -> Any:
    _skip_id3v2(stream)
    head = stream.peek(4)
    if not _is_mpeg_sync(head):
        raise _Malformed("no MPEG frame after the tags")
    end = _audio_end(fd, size)
    if end <= stream.pos:
        raise _Malformed("no MPEG frames between the tags")
    # A real stream: the first frame fits, and is followed by another frame or by the end.
    length = _mpeg_frame_length(head)
    if length is not None and stream.pos + length != end:
        if stream.pos + length > end or not _is_mpeg_sync(stream.peek(length + 4)[length:]):
            raise _Malformed("the first MPEG frame is not followed by another")
    digest = _method_digest("mp3-frames")
    stream.feed(end - stream.pos, digest)  # the frames, the Xing/LAME info frame included
    return digest


def _hash_flac(stream: _Stream, fd: int, size: int) -> Any:
    _skip_id3v2(stream)
    if stream.exact(4) != b"fLaC":
        raise _Malformed("no fLaC marker")
    digest = _method_digest("flac-frames")
    seen_streaminfo = False
    while True:
        header = stream.exact(4)
        kind, length = header[0] & 0x7F, int.from_bytes(header[1:4], "big")
        if kind == 127:
            raise _Malformed("invalid FLAC metadata block type")
        if kind == 0:
            if seen_streaminfo or length != 34:
                raise _Malformed("bad STREAMINFO")
            seen_streaminfo = True
            # The body only: the header's last-block flag changes when other blocks come and go.
            stream.feed(length, digest)
        else:  # VORBIS_COMMENT, PICTURE, PADDING, SEEKTABLE, APPLICATION, CUESHEET: tags and indexes
            stream.feed(length, None)
        if header[0] & 0x80:
            break
    if not seen_streaminfo:
        raise _Malformed("no STREAMINFO")
    end = _audio_end(fd, size)
    if end <= stream.pos:
        raise _Malformed("no FLAC frames")
    stream.feed(end - stream.pos, digest)
    return digest


# ---------------------------------------------------------------------------------------------
# Ogg: the packets of each logical stream, minus its comment packet, page headers ignored
# (a tagger renumbers pages, rewrites CRCs and may re-paginate the header packets).

_OGG_PAGE = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seq, crc, segments


class _OggStream:
    __slots__ = ("codec", "packet", "done")

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.packet = 0      # index of the packet being read
        self.done = False    # header packets over: from the next page on, whole payloads are hashed

    def keep(self, first: int) -> bool:
        """Whether the packet now starting (first byte `first`) is audio-carrying, not tags."""
        if self.codec == "flac":
            # Ogg FLAC: packet 0 holds STREAMINFO, then metadata blocks (comments, pictures...)
            # until the first audio frame, whose first byte is the 0xFF of the frame sync.
            if self.packet > 0 and first == 0xFF:
                self.done = True
            return self.packet == 0 or self.done
        return self.packet != 1  # Vorbis "\x03vorbis", Opus "OpusTags"

    def packet_ended(self) -> None:
        self.packet += 1
        if (self.codec == "vorbis" and self.packet >= 3) or (self.codec == "opus" and self.packet >= 2):
            self.done = True


def _ogg_codec(first_packet: bytes) -> str:
    if first_packet.startswith(b"\x01vorbis"):
        return "vorbis"
    if first_packet.startswith(b"OpusHead"):
        return "opus"
    if first_packet.startswith(b"\x7fFLAC"):
        return "flac"
    raise _Malformed("an Ogg codec this parser does not know")  # Speex, Theora...: decoded PCM


def _hash_ogg(stream: _Stream) -> Any:
    digest = _method_digest("ogg-packets")
    streams: dict[int, _OggStream] = {}
    in_packet: dict[int, bool] = {}  # serial -> a packet continues from the previous page
    keeping: dict[int, bool] = {}
    while True:
        # The fast path (almost every page): pages of streams past their headers that lie whole in
        # the chunk in hand are parsed in place; their granule position (it trims the decoded end,
        # so it is audio) and whole payload go to the digest without a copy.
        view = stream.window()
        size, offset = len(view), 0
        while offset + 27 <= size:
            capture, version, _, _, serial, _, _, segments = _OGG_PAGE.unpack_from(view, offset)
            state = streams.get(serial)
            if capture != b"OggS" or version != 0 or state is None or not state.done:
                break
            start = offset + 27 + segments
            end = start + sum(view[offset + 27:start])
            if end > size:
                break
            digest.update(view[offset + 6:offset + 14])
            digest.update(view[start:end])
            offset = end
        stream.advance(offset)
        # One page the slow way: it straddles two chunks, or belongs to a stream still in its headers.
        header = stream.read(27)
        if not header:
            break
        if len(header) < 27:
            raise _Malformed("Ogg page header cut short")
        capture, version, flags, _, serial, _, _, segments = _OGG_PAGE.unpack(header)
        if capture != b"OggS" or version != 0:
            raise _Malformed("lost Ogg page sync")
        lacing = stream.exact(segments)
        state = streams.get(serial)
        if state is not None and state.done:
            digest.update(header[6:14])
            stream.feed(sum(lacing), digest)
            continue
        payload = stream.exact(sum(lacing))
        if state is None:
            if not flags & 0x02:
                raise _Malformed("Ogg page of a stream that never began")
            state = streams[serial] = _OggStream(_ogg_codec(payload))
            in_packet[serial] = False
        elif flags & 0x01 and not in_packet[serial]:
            raise _Malformed("continued Ogg packet with nothing to continue")
        # Header pages: packet by packet, so that the comment packet is left out wherever the
        # tagger put its page boundaries.
        offset = 0
        for value in lacing:
            if not in_packet[serial]:
                keeping[serial] = state.keep(payload[offset] if value else -1)
                in_packet[serial] = True
            if keeping[serial]:
                digest.update(payload[offset:offset + value])
            offset += value
            if value < 255:
                in_packet[serial] = False
                state.packet_ended()
    if not streams:
        raise _Malformed("no Ogg pages")
    return digest


# ---------------------------------------------------------------------------------------------
# Chunked containers: RIFF/RF64/W64 WAV, AIFF/AIFC, MP4.

_W64_RIFF = bytes.fromhex("726966662e91cf11a5d628db04c10000")
_W64_WAVE = bytes.fromhex("77617665f3acd3118cd100c04f8edb8a")
_W64_FMT = bytes.fromhex("666d7420f3acd3118cd100c04f8edb8a")
_W64_DATA = bytes.fromhex("64617461f3acd3118cd100c04f8edb8a")


def _hash_riff(stream: _Stream, size: int) -> Any:
    head = stream.exact(12)
    rf64 = head[:4] == b"RF64"
    declared = int.from_bytes(head[4:8], "little")
    # A RIFF may carry junk after its declared end (an ID3v1 appended by an old tagger): stop there.
    limit = size if rf64 else min(size, 8 + declared)
    digest = _method_digest("riff-chunks")
    data_size_64: int | None = None
    found: set[bytes] = set()
    while limit - stream.pos >= 8:
        chunk_id = stream.exact(4)
        length = int.from_bytes(stream.exact(4), "little")
        if chunk_id == b"ds64" and rf64:
            body = stream.exact(length)
            if length < 24:
                raise _Malformed("short ds64 chunk")
            data_size_64 = int.from_bytes(body[8:16], "little")  # skipped: riffSize changes with tags
        else:
            if chunk_id == b"data" and rf64 and length == 0xFFFFFFFF:
                if data_size_64 is None:
                    raise _Malformed("RF64 data without ds64")
                length = data_size_64
            if stream.pos + length > size:
                raise _Malformed(f"{chunk_id!r} chunk runs past the end of the file")
            audio = chunk_id in (b"fmt ", b"data")
            if audio:
                found.add(chunk_id)
                digest.update(chunk_id)
            stream.feed(length, digest if audio else None)
        if length & 1 and stream.pos < limit:
            stream.feed(1, None)  # pad byte (may be missing at the very end)
    if found != {b"fmt ", b"data"}:
        raise _Malformed("WAV without fmt and data chunks")
    return digest


def _hash_w64(stream: _Stream, size: int) -> Any:
    head = stream.exact(40)
    if head[24:40] != _W64_WAVE:
        raise _Malformed("W64 that is not WAVE")
    digest = _method_digest("riff-chunks")
    found: set[bytes] = set()
    while size - stream.pos >= 24:
        guid = stream.exact(16)
        length = int.from_bytes(stream.exact(8), "little") - 24  # W64 sizes include the header
        if length < 0 or stream.pos + length > size:
            raise _Malformed("W64 chunk size out of range")
        audio = guid in (_W64_FMT, _W64_DATA)
        if audio:
            found.add(guid)
            digest.update(guid)
        stream.feed(length, digest if audio else None)
        stream.feed(min(-length % 8, size - stream.pos), None)  # chunks are 8-byte aligned
    if found != {_W64_FMT, _W64_DATA}:
        raise _Malformed("W64 without fmt and data chunks")
    return digest


def _hash_aiff(stream: _Stream, size: int) -> Any:
    head = stream.exact(12)
    limit = min(size, 8 + int.from_bytes(head[4:8], "big"))
    digest = _method_digest("aiff-chunks")
    found: set[bytes] = set()
    while limit - stream.pos >= 8:
        chunk_id = stream.exact(4)
        length = int.from_bytes(stream.exact(4), "big")
        if stream.pos + length > size:
            raise _Malformed(f"{chunk_id!r} chunk runs past the end of the file")
        audio = chunk_id in (b"COMM", b"SSND")
        if audio:
            found.add(chunk_id)
            digest.update(chunk_id)
        stream.feed(length, digest if audio else None)  # ID3, NAME, ANNO, AUTH, MARK...: skipped
        if length & 1 and stream.pos < limit:
            stream.feed(1, None)
    if found != {b"COMM", b"SSND"}:
        raise _Malformed("AIFF without COMM and SSND chunks")
    return digest


def _hash_mp4(stream: _Stream, size: int) -> Any:
    # Only the top-level mdat payloads: tags live in moov/udta, and moving moov (to make room for
    # tags) changes the sample-table offsets, so those are not hashed either.
    digest = _method_digest("mp4-mdat")
    mdats = 0
    while stream.pos < size:
        header = stream.exact(8)
        length, kind = int.from_bytes(header[:4], "big"), header[4:]
        header_size = 8
        if length == 1:
            length = int.from_bytes(stream.exact(8), "big")
            header_size = 16
        elif length == 0:
            length = size - stream.pos + 8  # the last atom runs to the end of the file
        body = length - header_size
        if body < 0 or stream.pos + body > size:
            raise _Malformed(f"{kind!r} atom size out of range")
        if kind == b"mdat":
            mdats += 1
        stream.feed(body, digest if kind == b"mdat" else None)
    if not mdats:
        raise _Malformed("MP4 without mdat")
    return digest


# ---------------------------------------------------------------------------------------------
# Fallbacks.

def _decoded_pcm(path: str) -> str | None:
    """sha256 of the decoded samples (int32, or float64 for float files), or None when soundfile
    cannot decode the file to its end."""
    import soundfile as sf  # here, not at the top: only fallbacks need it

    try:
        with sf.SoundFile(path) as handle:
            dtype = "float64" if handle.subtype in ("FLOAT", "DOUBLE") else "int32"
            digest = _method_digest("decoded-pcm")
            digest.update(f"{handle.samplerate}:{handle.channels}:{dtype}\0".encode())
            frames = 0
            while True:
                block = handle.read(PCM_BLOCK_FRAMES, dtype=dtype, always_2d=True)
                if not len(block):
                    break
                frames += len(block)
                digest.update(block.astype(block.dtype.newbyteorder("<"), copy=False).tobytes())
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return None
    return digest.hexdigest() if frames else None


def _container(head: bytes) -> str | None:
    if head[:3] == b"ID3":
        return "id3"  # MP3, or FLAC behind an ID3v2 tag: decided after the tag
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "riff"
    if head[:16] == _W64_RIFF:
        return "w64"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return "mp4"
    if _is_mpeg_sync(head):
        return "mp3"
    return None


def _parse(stream: _Stream, fd: int, size: int) -> tuple[str, Any] | None:
    kind = _container(stream.peek(16))
    if kind == "id3":
        _skip_id3v2(stream)
        kind = "flac" if stream.peek(4) == b"fLaC" else "mp3"
    if kind == "mp3":
        return "mp3-frames", _hash_mp3(stream, fd, size)
    if kind == "flac":
        return "flac-frames", _hash_flac(stream, fd, size)
    if kind == "ogg":
        return "ogg-packets", _hash_ogg(stream)
    if kind == "riff":
        return "riff-chunks", _hash_riff(stream, size)
    if kind == "w64":
        return "riff-chunks", _hash_w64(stream, size)
    if kind == "aiff":
        return "aiff-chunks", _hash_aiff(stream, size)
    if kind == "mp4":
        return "mp4-mdat", _hash_mp4(stream, size)
    return None


def identify(path: str) -> FileIdentity:
    """Both digests of `path` in one streaming read; OSError (missing, unreadable...) is raised as is."""
    with open(path, "rb", buffering=0) as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        sampled = _sample_digest(fd, size)
        whole = hashlib.sha256()
        stream = _Stream(handle, whole)
        try:
            parsed = _parse(stream, fd, size)
        except (_Malformed, struct.error, ValueError, IndexError):
            parsed = None
        stream.drain()
        if stream.total != size:  # changed while read: the parse and the whole digest disagree
            parsed = None
            size = stream.total
    sha256 = whole.hexdigest()
    if parsed is not None:
        method, digest = parsed
        audio_sha256 = digest.hexdigest()
    elif (pcm := _decoded_pcm(path)) is not None:
        method, audio_sha256 = "decoded-pcm", pcm
    else:
        # Derived from the whole-file digest (no second read), behind the method name like the rest.
        method = "bytes"
        audio_sha256 = hashlib.sha256(b"bytes\0" + bytes.fromhex(sha256)).hexdigest()
    return FileIdentity(audio_sha256=audio_sha256, method=method, sha256=sha256, sample_hash=sampled,
                        size_bytes=size)
