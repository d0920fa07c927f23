"""features (per crop): loudness, spectral, tonal, rhythm and time-series feature groups.

Each crop is decoded once and transformed once (etl/stages/features/extractors.py shares the signal and the STFT
across extractors). The engine re-queues a crop when its audio, its stems or the parameters
change. Within it, each group stores a hash of its own parameters and of the audio it was
computed from (the crop file's sha256), and the worker computes only the groups whose stored hash
differs — so switching a group on later computes just that group, and new stems just their stats.
Stem crops (when the stems stage has made them) get the loudness and spectral stats.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.engine.config import ranged
from etl.engine.pool import Outcome
from etl.engine.resources import execute, registered
from etl.engine.stage import Read, Reason, Stage
from etl.engine.tables import rows_like, update_from
from etl.stages.features import extractors as features

if TYPE_CHECKING:
    import duckdb

GROUPS = ("loudness", "spectral", "tonal", "rhythm", "series")


@dataclass(frozen=True)
class Params:
    loudness: bool = True
    spectral: bool = True
    tonal: bool = True
    rhythm: bool = True
    series: bool = True
    n_mfcc: int = ranged(13, 1, 128)  # spectral
    bpm_agree_tolerance: float = ranged(0.04, 0, 1)  # rhythm: crop / grid BPM within this share of 1, 2, ½, 3, ⅓ (bpm_relation)
    # rhythm: essentia RhythmExtractor2013 method; "degara" is ~4x faster than "multifeature" and
    # gave the same BPM on the test material (the grid BPM from madmom is carried down anyway).
    rhythm_method: str = "degara"
    series_steps: int = ranged(256, 1, 100_000)  # series: points per crop


# Which parameters belong to which group (a group's hash covers only its own).
_GROUP_FIELDS = {"spectral": ("n_mfcc",), "rhythm": ("bpm_agree_tolerance", "rhythm_method"),
                 "series": ("series_steps",)}


# Bumped when a group's algorithm changes its results, so stored values are recomputed.
# loudness 2, series 2: one EBU R128 meter (etl/dsp/loudness.py) replaces pyloudnorm (integrated, within
# 0.11 LU) and essentia (range, short-term, momentary: within 0.3 LU); a mono crop is metered as one
# channel, not two (its short-term and momentary levels 3 dB lower, as its integrated level was).
# loudness 3: integrated loudness by pyloudnorm again (the library the store documents).
# loudness 4, spectral 2, tonal 2, rhythm 2, series 3: too quiet to measure (no 400 ms block above
# -70 LUFS) is NULL in every group, a weak key is NULL, series hold NULL for silent frames (not a
# -120 floor); every channel layout is metered per BS.1770 (weights, no LFE); the rhythm group
# compares the crop's estimate with the grid tempo over the crop's own beats (bpm_relation).
_GROUP_VERSIONS = {"loudness": 4, "spectral": 2, "tonal": 2, "rhythm": 2, "series": 3}


def group_hash(params: Params, group: str, audio_sha256: str | None) -> str:
    """What a group's stored values were computed from: its parameters, version and the audio."""
    values = {name: getattr(params, name) for name in _GROUP_FIELDS.get(group, ())}
    key: list[Any] = [group, values, audio_sha256]
    if group in _GROUP_VERSIONS:
        key.append(_GROUP_VERSIONS[group])
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def unavailable(params: Params) -> str | None:
    needs = {"librosa": "pip install 'music-etl[features]'"}
    if uses_essentia(params):
        needs["essentia"] = "pip install --pre 'essentia-tensorflow==2.1b6.dev1389'"
    absent = [module for module in needs if importlib.util.find_spec(module) is None]
    if not absent:
        return None
    return Reason(f"not installed: {', '.join(f'{module} ({needs[module]})' for module in absent)}",
                  f"{' and '.join(absent)} not installed — `etl status --json` says how")


def stem_hash(stem_sha256: str | None) -> str:
    """Stem crops get fixed loudness and spectral stats (no parameters) of their audio."""
    return group_hash(Params(), "stems", stem_sha256)


def uses_essentia(params: Params) -> bool:
    """Key, crop BPM and danceability are essentia's (loudness is etl/dsp/loudness.py)."""
    return params.tonal or params.rhythm


def init_worker(params: Params) -> None:
    features.worker_setup(with_essentia=uses_essentia(params))


def stale_groups(item: dict[str, Any], params: Params) -> list[str]:
    done = item.get("group_hashes") or {}
    return [g for g in GROUPS if getattr(params, g) and done.get(g) != group_hash(params, g, item.get("sha256"))]


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    todo = stale_groups(item, params)
    signal = features.read(item["path"])
    values: dict[str, Any] = {}
    if "loudness" in todo:
        values.update(features.loudness(signal))
    if "spectral" in todo:
        values.update(features.spectral(signal, params.n_mfcc))
    if "tonal" in todo:
        values.update(features.tonal(signal))
    if "rhythm" in todo:
        values.update(features.rhythm(signal, item.get("bpm_grid"), params.bpm_agree_tolerance,
                                      params.rhythm_method))
    if "series" in todo:
        values.update(features.series(signal, params.series_steps))
    stems = []
    if params.loudness or params.spectral:
        # A list of {stem, hash} structs (a DuckDB MAP would reach the worker as a list of pairs).
        done = {row["stem"]: row["hash"] for row in item.get("stem_hashes") or []}
        for stem in item.get("stems") or []:
            if done.get(stem["stem"]) == stem_hash(stem.get("sha256")):
                continue  # stem crops added later get theirs without recomputing the rest
            stem_signal = features.read(stem["path"])
            stems.append({"stem": stem["stem"], "params_hash": stem_hash(stem.get("sha256")),
                          "loudness_integrated_lufs": features.integrated_lufs(stem_signal),
                          **features.level_stats(stem_signal), **features.stem_spectral(stem_signal)})
    return {"groups": {g: group_hash(params, g, item.get("sha256")) for g in todo}, "values": values,
            "stems": stems, "enabled": [g for g in GROUPS if getattr(params, g)]}


def outputs(result: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """What the crop's stored features were computed from (every current group and stem hash)."""
    params_groups = {g: h for g, h in (item.get("group_hashes") or {}).items() if h}
    params_groups.update(result["groups"])
    stems = {row["stem"]: row["hash"] for row in item.get("stem_hashes") or []}
    stems.update({row["stem"]: row["params_hash"] for row in result["stems"]})
    current = {s["stem"] for s in item.get("stems") or []}
    return {item["item_id"]: {"groups": {g: h for g, h in params_groups.items() if g in result["enabled"]},
                              "stems": {s: h for s, h in stems.items() if s in current}}}


# crop_features columns per group: the one place that says which group a column belongs to (the
# migrations say its type; tests/unit check that every column belongs to one group). A group's
# columns and its `<group>_hash` are updated together.
GROUP_COLUMNS = {
    "loudness": ("loudness_integrated_lufs", "loudness_range_lu", "loudness_short_term_max_lufs",
                 "true_peak_dbtp", "sample_peak_dbfs", "rms_dbfs", "crest_factor_db", "clipping_ratio"),
    "spectral": ("spectral_centroid_hz", "spectral_bandwidth_hz", "spectral_rolloff_hz", "spectral_flatness",
                 "spectral_flux", "zero_crossing_rate", "mfcc_mean", "band_bass_rms_dbfs",
                 "band_low_mid_rms_dbfs", "band_mid_rms_dbfs", "band_air_rms_dbfs"),
    "tonal": ("chroma_mean", "key_tonic", "key_mode", "key_strength", "key_name", "key_camelot"),
    "rhythm": ("bpm_grid", "bpm_crop", "bpm_relation", "bpm_agrees", "onset_rate_hz", "danceability"),
    "series": ("series_loudness_lufs", "series_rms_dbfs", "series_centroid_hz"),
}


def write(con: duckdb.DuckDBPyConnection, outcomes: list[Outcome], params: Params) -> None:
    import pyarrow as pa

    done = [o for o in outcomes if o.status == "done"]
    crops = pa.table({"crop_id": pa.array([o.item_id for o in done], pa.string()),
                      "track_id": pa.array([o.item["track_id"] for o in done], pa.string())})
    current_stems = pa.table({
        "crop_id": pa.array([o.item_id for o in done for _ in o.item.get("stems") or []], pa.string()),
        "stem": pa.array([s["stem"] for o in done for s in o.item.get("stems") or []], pa.string())})
    with registered(con, feature_crops=crops, current_stems=current_stems):
        execute(con, "stages/features/write.sql", "ensure_rows")
        execute(con, "stages/features/write.sql", "drop_stale_stems")
    for group, columns in GROUP_COLUMNS.items():
        # A group switched off is NULL, as a fresh run would leave it.
        rows = [{"crop_id": o.item_id, f"{group}_hash": o.result["groups"].get(group),
                 **{c: o.result["values"].get(c) for c in columns}}
                for o in done if group in o.result["groups"] or group not in o.result["enabled"]]
        if rows:
            update_from(con, "crop_features", "crop_id", pa.Table.from_pylist(rows))
    stems = [{"crop_id": o.item_id, **row} for o in done for row in o.result["stems"]]
    if stems:
        with registered(con, stem_features=rows_like(con, "crop_stem_features", stems, omit=frozenset())):
            execute(con, "stages/features/write.sql", "upsert_stems")


STAGE = Stage(
    name="features",
    description="loudness, spectral, tonal, rhythm and time-series features per crop",
    process=process,
    write=write,
    reads=(Read("crops"), Read("beats", "track_id")),
    outputs=outputs,
    Params=Params,
    unavailable=unavailable,
    init_worker=init_worker,
    batch_size=32,
    chunk_size=2,
)
