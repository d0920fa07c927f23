"""The export formats by name: which place the audio beside their manifest and how each one's
loader resolves a relative path. A module of constants, so that `etl export --help` says what the
writers (etl/read/export/formats.py) do without importing them (or DuckDB)."""

from __future__ import annotations

# In the order `--format` lists them.
NAMES = ("jsonl", "stable-audio", "hf", "lhotse", "webdataset", "csv", "parquet", "folders")
# Formats whose readers look for the audio (or, for audiocraft, its MusicInfo JSON) beside the
# manifest or the audio file: placed by hard link unless told.
NEEDS_PLACED_AUDIO = ("jsonl", "stable-audio", "hf", "folders")
# Formats that carry the audio itself (tar shards): --link / --copy do not apply.
CARRIES_AUDIO = ("webdataset",)
# How each format's loader resolves a relative path: from the working directory ("cwd": audiocraft's
# load_audio_meta, lhotse's Recording, stable-audio-tools' dataset config, a script reading CSV or
# Parquet) or from the manifest ("manifest": datasets' audiofolder, the folders' index). Paths are
# absolute by default for the first kind and relative for the second; relative ones of the first
# kind start at the export folder (run the loader from there). webdataset carries the bytes.
PATHS = {"jsonl": "cwd", "lhotse": "cwd", "stable-audio": "cwd", "csv": "cwd", "parquet": "cwd",
         "hf": "manifest", "folders": "manifest", "webdataset": None}
