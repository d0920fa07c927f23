"""Recognising and probing audio files by their content (never by their extension)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.engine.errors import BadInput, source_error

AUDIO_EXTENSIONS = frozenset({
    ".mp3", ".mp2", ".mpga", ".flac", ".wav", ".wave", ".w64", ".rf64", ".ogg", ".oga", ".opus",
    ".spx", ".m4a", ".m4b", ".mp4", ".aac", ".alac", ".aif", ".aiff", ".aifc", ".caf", ".au", ".snd",
    ".wma", ".ape", ".wv", ".mpc", ".tta", ".mka", ".webm", ".ac3", ".dts", ".amr", ".3gp",
})

_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"),
    (b"MThd", "a MIDI file (notes, not audio)"), (b"\x7fELF", "a program"), (b"<?xml", "an XML document"),
    (b"BM", "a BMP image"),
]


def describe_content(head: bytes) -> str:
    """A guess at what a non-audio file is, for the failure reason."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if not head.strip(b"\x00"):
        return "only zero bytes"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unrecognised binary data"


@dataclass(frozen=True)
class AudioInfo:
    container: str        # WAV, FLAC, OGG, MP3, MP4, ...
    codec: str            # PCM_16, VORBIS, OPUS, MPEG_LAYER_III, mp4a.40.2, ...
    sample_rate: int
    channels: int
    frames: int | None    # samples per channel, when the decoder knows
    duration_s: float
    decode_checked: bool  # head and tail decoded, not just the header read


# Formats whose frame count is an estimate from the header (MP3 without an exact Xing/LAME
# count); a file that decodes to at least this fraction of it is taken at its decoded length.
_ESTIMATED_LENGTH = frozenset({"MP3"})
_KEEP_FRACTION = 0.98


def _decoded_frames(handle: Any) -> int:
    handle.seek(0)
    total = 0
    while block := len(handle.read(1 << 16, dtype="float32", always_2d=True)):
        total += block
    return total


def _probe_soundfile(path: str, verify_s: float) -> AudioInfo | None:
    """libsndfile: WAV/AIFF/FLAC/OGG/Opus/MP3. Decodes `verify_s` at both ends to catch truncation."""
    import soundfile as sf  # here, not at the top: `etl status` must not load audio libraries
    try:
        handle = sf.SoundFile(path)
    except sf.LibsndfileError:
        return None
    with handle:
        frames, rate = handle.frames, handle.samplerate
        if frames <= 0:
            raise BadInput("contains no audio: the stream holds 0 samples")
        if rate <= 0 or handle.channels <= 0:
            raise BadInput(f"invalid header: {rate} Hz, {handle.channels} channels")
        if verify_s <= 0:
            return AudioInfo(handle.format, handle.subtype, rate, handle.channels, frames, frames / rate, False)
        check = min(frames, max(1, int(verify_s * rate)))
        try:
            head = handle.read(check, dtype="float32", always_2d=True)
            handle.seek(frames - check)
            tail = handle.read(check, dtype="float32", always_2d=True)
            truncated = len(head) < check or len(tail) < check
            if truncated and len(head) == check and handle.format in _ESTIMATED_LENGTH:
                # The header only estimated the length: decode to the end to learn the truth.
                decoded = _decoded_frames(handle)
                if decoded >= _KEEP_FRACTION * frames:
                    frames, truncated = decoded, False
        except (sf.LibsndfileError, RuntimeError) as error:
            raise BadInput(f"truncated or corrupt {handle.format} data: {error}") from None
        if truncated:
            raise BadInput(
                f"truncated or corrupt {handle.format}: the header promises {handle.frames / rate:.1f} s "
                "but the audio data ends early"
            )
        return AudioInfo(handle.format, handle.subtype, rate, handle.channels, frames, frames / rate, True)


def _probe_mutagen(path: str) -> AudioInfo | None:
    """Containers libsndfile cannot decode (MP4/AAC, WMA, APE...): header only."""
    import mutagen

    try:
        parsed = mutagen.File(path)
    except mutagen.MutagenError:
        return None
    info = getattr(parsed, "info", None)
    if info is None or not getattr(info, "length", 0) or not getattr(info, "sample_rate", 0):
        return None
    codec = getattr(info, "codec", None) or type(parsed).__name__
    return AudioInfo(type(parsed).__name__.upper(), str(codec), int(info.sample_rate),
                     int(getattr(info, "channels", 0) or 0), None, float(info.length), False)


def probe(path: str, verify_s: float = 1.0) -> AudioInfo:
    """What the audio in `path` is; raises BadInput with a readable reason when it is not audio."""
    info = _probe_soundfile(path, verify_s) or _probe_mutagen(path)
    if info is not None:
        return info
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        raise BadInput("empty file (0 bytes)")
    raise BadInput(f"not an audio file: the content looks like {describe_content(head)}")


def sha256_file(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def has_audio_extension(path: str) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def resample(signal: Any, from_rate: int, to_rate: int) -> Any:
    """Polyphase resampling with an anti-aliasing filter (scipy), along the first axis."""
    if from_rate == to_rate:
        return signal
    from math import gcd

    from scipy.signal import resample_poly

    divisor = gcd(from_rate, to_rate)
    return resample_poly(signal, to_rate // divisor, from_rate // divisor, axis=0).astype(signal.dtype, copy=False)


def open_audio(path: str) -> Any:
    """A soundfile handle for decoding; a file libsndfile cannot decode is bad input, not a bug.

    libsndfile's errors carry no errno: after a failure the file itself is checked, so a vanished
    or unreadable file fails with its OS reason (retryable), and only a readable one as undecodable.
    """
    import soundfile as sf

    try:
        return sf.SoundFile(path)
    except sf.LibsndfileError as error:
        unreadable = source_error(path)
        if unreadable is not None:
            raise unreadable from None
        raise BadInput(f"cannot decode the audio with libsndfile ({error}); MP4/AAC, WMA and APE files "
                       "are ingested from their headers only") from None


NON_FINITE = "the audio holds NaN or infinite samples"


def read_block(handle: Any, frames: int = -1) -> Any:
    """`frames` samples (all: -1) from an open handle as float32 (samples, channels). Float files can
    hold NaN or infinite samples, which no measurement survives (a NaN reads as silence to some,
    fails others deep inside): such audio is bad input, with that reason. Values beyond full scale
    are returned as they are (crops record them: crops.over_full_scale)."""
    import numpy as np

    block = handle.read(frames, dtype="float32", always_2d=True)
    if handle.subtype in _FLOAT_SUBTYPES and not np.isfinite(block).all():
        raise BadInput(NON_FINITE)
    return block


# Only float encodings can carry NaN / inf; integer PCM and lossy codecs decode to finite values.
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


def read_mono_at(path: str, sample_rate: int) -> Any:
    """A whole file downmixed to mono and resampled to `sample_rate` (what the models' front ends
    take), float32."""
    with open_audio(path) as handle:
        block, rate = read_block(handle), handle.samplerate
    return resample(block.mean(axis=1), rate, sample_rate)


def read_mono(path: str, start_frame: int, frames: int) -> tuple[Any, int]:
    """`frames` samples from `start_frame` (fewer at the end), downmixed to mono float32."""
    with open_audio(path) as handle:
        if start_frame:
            handle.seek(start_frame)
        block = read_block(handle, frames)
        return block.mean(axis=1), handle.samplerate
