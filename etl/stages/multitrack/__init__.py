"""multitrack (per group): a multitrack source becomes one track with its provided stems.

The scan recognises groups by file names (etl/dsp/multitrack_layouts.py); ingest probes and
hashes every member file (a bad stem fails there, as its own item) but a stem makes no track of its
own. This stage turns each group into its track:

- mix is a file (MUSDB18's `mixture.*`, a rule's mix pattern): the track is that file's, as ingest
  made it; the stems are the user's files, read in place.
- mix is the sum (Frets on Fire, `mix = "sum"` rules): the sum of the stems is rendered once into the
  group's folder (FLAC) and is the track; its id hashes the stems' audio hashes (so re-tagging a stem
  changes nothing, new audio in one stem is a new track).
- NI Stems (`*.stem.mp4`, streams libsndfile cannot read): mix and stems are decoded with PyAV and
  rendered to FLAC; the track id hashes the file's audio hash.

Stems go to `track_stems` with `source = 'provided'`, named in the store's vocabulary
(multitrack_layouts.VOCABULARY; `[multitrack] stem_map` folds names further, and stems folded into one name
are rendered as their sum). A stem whose length or rate differs from the mix's is kept with a note
(`alignment`): the reading stages pad it with silence or trim it to the mix, and resample it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.dsp import multitrack_layouts, sourcefile
from etl.dsp.identity import sample_hash
from etl.engine import artifacts
from etl.engine.config import ranged
from etl.engine.errors import BadInput, ConfigError, SkipItem
from etl.engine.pool import Outcome
from etl.engine.stage import Read, Stage
from etl.engine.tables import Rows, Write


@dataclass(frozen=True)
class Params:
    # NAME=STEM entries folding the store's stem names further, e.g. ["guitar=other", "keys=other",
    # "backing=other"] for demucs's four; stems folded into one name are rendered as their sum.
    stem_map: tuple[str, ...] = ()
    bits: int = ranged(16, 16, 24)  # rendered FLAC (sums, NI Stems streams): 16 or 24 bits

    def __post_init__(self) -> None:
        multitrack_layouts.parse_stem_map(self.stem_map)
        if self.bits not in (16, 24):
            raise ConfigError("[multitrack] bits must be 16 or 24")


def _name(member: dict[str, Any]) -> str:
    return os.path.basename(member["path"])


def _usable(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The group's present members, each ingested; a member that failed skips the group with why."""
    members = [m for m in item["members"] if m["present"]]
    for member in members:
        if member["audio_sha256"] is None:
            why = member["ingest_error"] or f"ingest has not run on it ({member['ingest_status'] or 'pending'})"
            raise SkipItem(f"{_name(member)} of this multitrack group could not be ingested: {why}")
    return members


def _alignment(frames: int, rate: int, mix_frames: int, mix_rate: int) -> str | None:
    """How a stem lines up with its mix, when not sample for sample (the readers pad / trim / resample)."""
    notes = []
    if rate != mix_rate:
        notes.append(f"resampled from {rate} Hz to the mix's {mix_rate} Hz when read")
    at_mix_rate = round(frames * mix_rate / rate)
    if at_mix_rate < mix_frames:
        notes.append(f"{mix_frames - at_mix_rate} frames shorter than the mix: padded with silence")
    elif at_mix_rate > mix_frames:
        notes.append(f"{at_mix_rate - mix_frames} frames longer than the mix: trimmed")
    return "; ".join(notes) or None


def _render_rate(rates: list[int]) -> int:
    """The rate a sum is rendered at: the one most stems have (the higher one on a tie)."""
    return max(set(rates), key=lambda r: (rates.count(r), r))


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    from etl.stages.multitrack import render

    folder = Path(item["artifact_dir"])
    members = _usable(item)
    stem_map = multitrack_layouts.parse_stem_map(params.stem_map)
    streams = [m for m in members if m["role"] == multitrack_layouts.STREAMS]
    if streams:
        return _ni_stems(streams[0], folder, params, stem_map)
    mix = next((m for m in members if m["role"] == "mix"), None)
    stems = [m for m in members if m["role"] == "stem"]
    if not stems:
        raise SkipItem("no stem of this multitrack group is left")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for member in sorted(stems, key=lambda m: m["path"]):
        by_name.setdefault(multitrack_layouts.store_stem(member["stem"], stem_map), []).append(member)
    for member in stems + ([mix] if mix else []):
        sourcefile.check(member["source"])

    # The tags stand for the track: the mix file's, else the backing's (Frets on Fire's song.ogg).
    tagged = mix or min(stems, key=lambda m: (multitrack_layouts.store_stem(m["stem"]) != "backing", m["path"]))
    result: dict[str, Any] = {"layout": item["layout"], "tags_path": tagged["path"], "note": None,
                              "folder": str(folder)}
    if mix is not None:
        infos = {m["path"]: render.measure(m["path"]) for m in stems}  # decodes and checks every stem
        mix_levels, _, mix_frames, mix_rate, _ = render.measure(mix["path"])
        result.update(track_id=mix["track_id"], mix="file", render=None)
    else:
        # Each stem is decoded once: measured (and checked) on the pass that renders the sum.
        measures = {m["path"]: render.Measure(*render.header(m["path"])) for m in stems}
        mix_rate = _render_rate([measures[m["path"]].rate for m in stems])
        channels = max(measures[m["path"]].channels for m in stems)
        folder.mkdir(parents=True, exist_ok=True)
        readers = [render.BlockReader(render.file_blocks(m["path"], mix_rate, measures[m["path"]]), channels)
                   for m in stems]
        written = render.write_flac(folder, "mix", render.sum_blocks(readers, channels), mix_rate, channels,
                                    params.bits)
        infos = {path: measured.result() for path, measured in measures.items()}
        mix_frames = written.frames
        hashes = sorted(m["audio_sha256"] for m in stems)
        result.update(track_id=hashlib.sha256(("multitrack-sum:" + ",".join(hashes)).encode()).hexdigest(),
                      mix="sum", render=_rendered(written, "multitrack-sum"),
                      note=render.clip_note(written.clipped, written.levels))

    rows = []
    for name, group in by_name.items():
        if len(group) == 1:
            member = group[0]
            levels, lufs, frames, rate, channels = infos[member["path"]]
            rows.append({"stem": name, "path": member["path"], "format": Path(member["path"]).suffix[1:].lower(),
                         "sample_rate": rate, "channels": channels, "frames": frames,
                         "sha256": member["audio_sha256"], **render.stem_columns(levels, lufs),
                         "given_as": member["stem"], "alignment": _alignment(frames, rate, mix_frames, mix_rate)})
            continue
        # Several stems folded into one name ([multitrack] stem_map): their sum, rendered.
        channels = max(infos[m["path"]][4] for m in group)
        folder.mkdir(parents=True, exist_ok=True)
        readers = [render.BlockReader(render.file_blocks(m["path"], mix_rate), channels) for m in group]
        written = render.write_flac(folder, name, render.sum_blocks(readers, channels), mix_rate, channels,
                                    params.bits)
        rows.append(_rendered_stem(name, "+".join(m["stem"] for m in group), written, mix_frames, mix_rate))
    for member in stems + ([mix] if mix else []):
        sourcefile.check(member["source"])  # still the files ingest saw, after reading them
    return {**result, "stems": rows}


def _rendered(written: Any, identity: str) -> dict[str, Any]:
    """A rendered mix's tracks row and what the reading stages check the file against."""
    info = os.stat(written.path)
    return {"path": written.path, "sha256": written.sha256, "sample_hash": sample_hash(written.path),
            "size_bytes": info.st_size, "mtime_ns": info.st_mtime_ns, "frames": written.frames,
            "sample_rate": written.sample_rate, "channels": written.channels,
            "duration_s": written.frames / written.sample_rate, "identity": identity}


def _rendered_stem(name: str, given_as: str, written: Any, mix_frames: int, mix_rate: int) -> dict[str, Any]:
    from etl.stages.multitrack import render

    return {"stem": name, "path": written.path, "format": "flac", "sample_rate": written.sample_rate,
            "channels": written.channels, "frames": written.frames, "sha256": written.sha256,
            **render.stem_columns(written.levels, written.loudness_lufs), "given_as": given_as,
            "alignment": "; ".join(filter(None, [
                _alignment(written.frames, written.sample_rate, mix_frames, mix_rate),
                render.clip_note(written.clipped, written.levels)])) or None}


def _ni_stems(member: dict[str, Any], folder: Path, params: Params, stem_map: dict[str, str]) -> dict[str, Any]:
    """An NI Stems file: its mix stream and each stem stream rendered to FLAC."""
    from etl.stages.multitrack import render

    folder.mkdir(parents=True, exist_ok=True)
    with sourcefile.unchanged(member["source"]) as path:
        rate, channels, count = render.ni_layout(path)
        names = render.ni_stem_names(path) or list(multitrack_layouts.NI_DEFAULT_STEMS)
        if len(names) != count - 1:
            raise BadInput(f"the NI Stems file has {count - 1} stem streams but its stem atom names {len(names)}")
        mix = render.write_flac(folder, "mix", render.ni_stream_blocks(path, 0, rate, channels), rate, channels,
                                params.bits)
        by_name: dict[str, list[tuple[int, str]]] = {}
        for n, given in enumerate(names, start=1):
            by_name.setdefault(multitrack_layouts.store_stem(given, stem_map), []).append((n, given))
        rows = []
        for name, streams in by_name.items():
            readers = [render.BlockReader(render.ni_stream_blocks(path, n, rate, channels), channels)
                       for n, _ in streams]
            written = render.write_flac(folder, name, render.sum_blocks(readers, channels), rate, channels,
                                        params.bits)
            rows.append(_rendered_stem(name, "+".join(g for _, g in streams), written, mix.frames, rate))
    track_id = hashlib.sha256(f"ni-stems:{member['audio_sha256']}".encode()).hexdigest()
    return {"layout": "ni-stems", "track_id": track_id, "mix": multitrack_layouts.STREAMS,
            "render": _rendered(mix, "ni-stems"), "tags_path": member["path"], "folder": str(folder),
            "note": render.clip_note(mix.clipped, mix.levels), "stems": rows}


def files(result: dict[str, Any]) -> list[str]:
    """The renderings (the user's own stem files are not the stage's)."""
    data = [result["render"]["path"]] if result["render"] else []
    return data + [row["path"] for row in result["stems"] if _rendered_here(row, result)]


def _rendered_here(row: dict[str, Any], result: dict[str, Any]) -> bool:
    """A stem rendered into the item's folder (the user's own files lie elsewhere)."""
    return row["path"].startswith(result["folder"] + os.sep)


def stems_key(track_id: str) -> str:
    """The output key of a track's provided stems (the stages reading them name it `stems_key`)."""
    return f"stems:{track_id}"


def outputs(result: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Two keys, so that what reads only the mix (beats) is not recomputed when a stem changes: under
    the track id the mix (its content hash when rendered), under `stems:<track id>` the stems' rows
    (paths left out: the hashes say what they hold)."""
    render = result["render"]
    return {result["track_id"]: {"mix": result["mix"], "mix_sha256": render and render["sha256"]},
            stems_key(result["track_id"]): [{k: v for k, v in row.items() if k != "path"}
                                            for row in result["stems"]]}


def _group_row(o: Outcome, params: Params) -> list[dict[str, Any]]:
    r, render = o.result, o.result["render"]
    return [{"group_id": o.item_id, "track_id": r["track_id"], "layout": r["layout"], "mix": r["mix"],
             "mix_path": render and artifacts.store_path(render["path"]),
             "mix_sha256": render and render["sha256"], "mix_sample_hash": render and render["sample_hash"],
             "mix_size_bytes": render and render["size_bytes"], "mix_mtime_ns": render and render["mtime_ns"],
             "tags_path": r["tags_path"], "n_stems": len(r["stems"]), "note": r["note"]}]


def _track_row(o: Outcome, params: Params) -> list[dict[str, Any]]:
    """The rendered mix's track (a group with a mix file of its own has ingest's)."""
    r, render = o.result, o.result["render"]
    if not render:
        return []
    return [{"track_id": r["track_id"], "size_bytes": render["size_bytes"], "container": "FLAC",
             "codec": f"PCM_{params.bits}", "duration_s": render["duration_s"],
             "frames": render["frames"], "sample_rate": render["sample_rate"],
             "channels": render["channels"],
             "bit_rate_kbps": render["size_bytes"] * 8 / render["duration_s"] / 1000
             if render["duration_s"] > 0 else None,
             "decode_checked": True, "identity": render["identity"]}]


def _stem_rows(o: Outcome, params: Params) -> list[dict[str, Any]]:
    r = o.result
    return [{**row, "track_id": r["track_id"], "source": "provided",
             "path": artifacts.store_path(row["path"]) if _rendered_here(row, r) else row["path"],
             "folded_into": None} for row in r["stems"]]


write = Write(rows=(Rows("new_groups", "multitrack_groups", _group_row), Rows("new_tracks", "tracks", _track_row),
                    Rows("new_stems", "track_stems", _stem_rows)),
              statements=("insert_groups", "upsert_tracks", "insert_stems"))


STAGE = Stage(
    name="multitrack",
    description="multitrack sources: the mix as a track (rendered where it is a sum), the stems as provided",
    process=process,
    write=write,
    reads=(Read("ingest", "mix_track_id", optional=True),),
    presence=True,
    outputs=outputs,
    shared_keys=True,
    files=files,
    Params=Params,
    artifacts=True,
    batch_size=8,
)
