"""fingerprint (per track): Chromaprint's acoustic fingerprint, and the near-duplicate pairs it finds.

A library holds the same recording more than once (an MP3 and a FLAC rip, a single and its album
version, a remaster, a loop cut from a longer file); the store calls them different tracks. This
stage fingerprints each track with Chromaprint (~8 32-bit sub-fingerprints per second, robust to
re-encoding, resampling and gain) and, in its write, looks the batch's tracks up in an inverted
index of every stored track's sub-fingerprints (write.sql: a hash join on the top `key_bits` bits,
votes per track pair and time shift, then a bit-error check of the best shift). Pairs matching over
`min_share` of the shorter track are stored in `duplicate_pairs`; duplicate groups are their
connected components (views.sql), which `etl export --split` keeps in one split.

The worker decodes the source file block by block (etl/dsp/audio.py), mixes it to mono and feeds
16-bit samples at the file's own rate: Chromaprint resamples to its 11,025 Hz itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from etl.dsp import audio, sourcefile
from etl.engine.config import ranged
from etl.engine.errors import SkipItem
from etl.engine.stage import Read, Reason, Stage
from etl.engine.tables import Rows, Write

# Seconds between Chromaprint's sub-fingerprints (its default algorithm: frames of 4096 samples at
# 11,025 Hz with a hop of a third of a frame); offsets in the pairs are shifts times this.
ITEM_S = 4096 / 3 / 11025
INSTALL = "apt-get install libchromaprint1 (Debian/Ubuntu; brew install chromaprint on macOS)"


@dataclass(frozen=True)
class Params:
    # Two tracks are duplicates when at least this share of the shorter one's sub-fingerprints match
    # at one offset. Measured (tests/integration/test_fingerprint.py): copies and cuts of one
    # recording match 0.97–1.0, distinct recordings (same artist included) at most ~0.2.
    min_share: float = ranged(0.5, 0.01, 1.0)
    # An aligned pair of sub-fingerprints matches when at most this many of their 32 bits differ
    # (unrelated audio differs in ~16; an MP3 128k copy in ~1 on average).
    max_bit_errors: int = ranged(10, 0, 32)
    # Bits of each sub-fingerprint the index keys on: fewer find more candidates for badly degraded
    # copies but make every lookup join more rows.
    key_bits: int = ranged(24, 8, 32)
    min_votes: int = ranged(5, 1, 100000)  # index hits at one shift that make a pair worth verifying
    max_key_tracks: int = ranged(200, 2, 10**9)  # keys held by more tracks are too common to vote
    min_duration_s: float = ranged(3.0, 0, 86400)  # shorter tracks are skipped (too few sub-fingerprints)


def unavailable(params: Params) -> str | None:
    """libchromaprint is a system library: pyacoustid loads it through ctypes, or fails to."""
    import importlib.util

    if importlib.util.find_spec("chromaprint") is None:
        return Reason("pyacoustid is not installed (Chromaprint's Python binding): pip install 'music-etl[fingerprint]'",
                      "pyacoustid is not installed")
    try:
        import chromaprint  # noqa: F401  (loads libchromaprint, or raises ImportError)
    except (ImportError, OSError) as error:
        return Reason(f"libchromaprint cannot be loaded ({error}): {INSTALL}", "libchromaprint cannot be loaded")
    return None


def fingerprint_file(path: str) -> dict[str, Any]:
    """Chromaprint's fingerprint of a whole file: decoded in blocks (bounded memory on long mixes),
    mixed to mono, fed as 16-bit samples at the file's own rate."""
    import chromaprint
    import numpy as np

    from etl.dsp.streaming import READ_FRAMES

    with audio.open_audio(path) as handle:
        printer = chromaprint.Fingerprinter()
        printer.start(handle.samplerate, 1)
        while len(block := audio.read_block(handle, READ_FRAMES)):
            mono = np.clip(np.rint(block.mean(axis=1) * 32767.0), -32768, 32767).astype("<i2")
            printer.feed(mono.tobytes())
        raw = printer.finish()
    items, algorithm = chromaprint.decode_fingerprint(raw)
    # decode_fingerprint gives signed 32-bit values; the store keeps them unsigned (UINTEGER)
    return {"algorithm": int(algorithm), "item_s": ITEM_S, "n_items": len(items),
            "fingerprint": [value & 0xFFFFFFFF for value in items]}


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    if item["duration_s"] < params.min_duration_s:
        raise SkipItem(f"too short to fingerprint ({item['duration_s']:.1f} s < {params.min_duration_s:g} s)")
    with sourcefile.unchanged(item["source"]) as path:
        result = fingerprint_file(path)
    if not result["n_items"]:
        raise SkipItem("Chromaprint made no fingerprint of this audio")
    return result


def binds(params: Params) -> dict[str, Any]:
    return {"min_share": params.min_share, "max_bit_errors": params.max_bit_errors, "key_bits": params.key_bits,
            "min_votes": params.min_votes, "max_key_tracks": params.max_key_tracks, "item_s": ITEM_S}


write = Write(rows=(Rows("new_fingerprints", "track_fingerprints",
                         lambda o, params: [{"track_id": o.item_id, **o.result}]),),
              statements=("insert_fingerprints", "insert_index", "insert_pairs"),
              binds=binds)


STAGE = Stage(
    name="fingerprint",
    description="Chromaprint fingerprint per track, and its near-duplicate pairs",
    process=process,
    write=write,
    reads=(Read("ingest", "track_id"), Read("multitrack", "track_id", optional=True)),
    presence=True,
    Params=Params,
    unavailable=unavailable,
    batch_size=32,
)
