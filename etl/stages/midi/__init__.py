"""midi (per crop and source): notes with basic-pitch, as a beat-aligned MIDI file and in DuckDB.

One item per (crop, source): the mix crop, and each stem crop cut beside it. Which sources are
transcribed is a setting (`mix`, `stems`: bass, other and vocals by default; drums are unpitched):
any other source, and a stem the stems stage flagged empty, is recorded as skipped with the reason,
so changing the setting brings exactly those items back. The model (basic-pitch's bundled
ICASSP-2022 network on onnxruntime, no TensorFlow) is loaded once per worker; the crop is read as
basic-pitch reads audio (etl/stages/midi/transcribe.py), so the stage's model output is `predict`'s.

Each item writes `<crop_id>.<source>-<sha12>.mid` in its own folder (temporary name, then renamed),
whose tempo map is the crop's beats (etl/stages/midi/grid.py): notes sit on the crop's beats and bars in any
MIDI reader and land at their seconds. `crop_midi` holds per (crop, source) the note statistics,
`crop_midi_notes` every note with its seconds, beats and bar (a table rather than a list column:
faster for the queries that matter, see bench/midi_layout.py).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.engine import artifacts
from etl.engine.config import ranged
from etl.engine.errors import ConfigError, SkipItem, file_error
from etl.engine.stage import Read, Reason, Stage
from etl.engine.tables import Rows, Write
from etl.engine.worker_model import WorkerModel

INSTALL = ("pip install --no-deps basic-pitch==0.4.0 && pip install 'music-etl[midi]' "
           "(basic-pitch's declared dependencies pull TensorFlow and numpy<2; its ONNX model needs neither)")
LICENCE = "Apache-2.0 (basic-pitch and its bundled ICASSP-2022 model, Spotify)"
MODEL = "basic-pitch ICASSP-2022 (nmp.onnx)"


@dataclass(frozen=True)
class Params:
    mix: bool = True                                   # transcribe the mix crop
    stems: tuple[str, ...] = ("bass", "other", "vocals")  # stem crops transcribed where cut (drums: unpitched)
    onset_threshold: float = ranged(0.5, 0, 1)         # basic-pitch's defaults
    frame_threshold: float = ranged(0.3, 0, 1)
    minimum_note_length_ms: float = ranged(127.70, 0, 10000)
    pitch_min: int = ranged(21, 21, 108)               # MIDI numbers; the model covers 21 (A0) to 108 (C8)
    pitch_max: int = ranged(108, 21, 108)
    melodia_trick: bool = True
    ticks_per_beat: int = ranged(480, 24, 32767)
    threads: int = ranged(1, 0, 1024, hashed=False)    # onnxruntime threads per worker; 0: every core

    def __post_init__(self) -> None:
        if self.pitch_min > self.pitch_max:
            raise ConfigError(f"[midi] pitch_min ({self.pitch_min}) is above pitch_max ({self.pitch_max})")


def unavailable(params: Params) -> str | None:
    from etl.stages.midi import transcribe

    missing = [m for m in ("basic_pitch", "onnxruntime", "mido", "soxr", "librosa")
               if importlib.util.find_spec(m) is None]
    if missing:
        return Reason(f"{', '.join(missing)} not installed: {INSTALL}", f"{', '.join(missing)} not installed — "
                      "`etl models` says how")
    path = transcribe.model_path()
    if not path.is_file():
        return Reason(f"basic-pitch's model file {path} is missing: reinstall it ({INSTALL})",
                      "basic-pitch's model file is missing — `etl models` says how")
    return None


def models(params: Params, checksums: bool = True) -> list[dict[str, Any]]:
    """What `etl models` shows: the ONNX model that ships inside the basic-pitch wheel."""
    from etl.stages.midi import transcribe

    path = transcribe.model_path() if importlib.util.find_spec("basic_pitch") else None
    found = path is not None and path.is_file()
    files = []
    if found:
        entry: dict[str, Any] = {"path": str(path), "size_bytes": path.stat().st_size}
        if checksums:
            entry["sha256"] = artifacts.sha256_file(path)
        files.append(entry)
    return [{"model": MODEL, "library": "basic-pitch 0.4.0 on onnxruntime", "found": found,
             "where": str(path) if path else "inside the basic-pitch package", "files": files, "licence": LICENCE,
             "problem": None if found else "basic-pitch not installed",
             "install": None if found else INSTALL}]


def _load(params: Params) -> Any:
    from etl.stages.midi import transcribe

    return transcribe.load_model(params.threads)


_model = WorkerModel(_load, lambda params: params.threads)


def init_worker(params: Params) -> None:
    """Load the model once per worker process."""
    _model.get(params)


def wanted(source: str, params: Params) -> bool:
    return params.mix if source == "mix" else source in params.stems


def transcribe_file(path: str, params: Params) -> list[tuple[float, float, int, float]]:
    """Note events of an audio file with the stage's settings (the model held by this process)."""
    from etl.stages.midi import transcribe

    output = transcribe.model_output(_model.get(params), transcribe.mono_22k(path))
    return transcribe.notes(output, params.onset_threshold, params.frame_threshold, params.minimum_note_length_ms,
                            params.pitch_min, params.pitch_max, params.melodia_trick)


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    from etl.stages.midi import grid

    source = item["source"]
    if not wanted(source, params):
        raise SkipItem(f"source {source} is not transcribed ([midi] mix / stems)")
    if item.get("empty"):
        raise SkipItem(f"stem {source} is flagged empty by the stems stage")
    tempo = grid.tempo_map(item["beat_times_s"], item["beat_positions"], item["bpm"], params.ticks_per_beat)
    rows = grid.note_rows(transcribe_file(item["path"], params), tempo)
    folder = Path(item["artifact_dir"])
    name = item["item_id"]
    temporary, shown = artifacts.temporary_name(folder, f"{name}.mid"), folder / f"{name}.mid"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        grid.write_midi(temporary, rows, tempo, name=f"{item['crop_id']} {source}",
                        program=grid.PROGRAMS.get(source, grid.DEFAULT_PROGRAM))
        path, sha256 = artifacts.publish(temporary, name, "mid")
    except OSError as error:
        raise file_error(error, shown, "writing") from None
    finally:
        temporary.unlink(missing_ok=True)
    return {"path": str(path), "sha256": sha256, "notes": rows, **grid.statistics(rows, item["duration_s"])}


def files(result: dict[str, Any]) -> list[str]:
    return [result["path"]]


def outputs(result: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """The notes and statistics with the file's content hash; not its path, which names the data
    folder (a store and a fresh run of the same music must agree)."""
    return {item["item_id"]: {k: v for k, v in result.items() if k != "path"}}


write = Write(rows=(Rows("new_midi", "crop_midi", lambda o, params: [
                  {"crop_id": o.item["crop_id"], "source": o.item["source"], "track_id": o.item["track_id"],
                   **{k: v for k, v in o.result.items() if k != "notes"},
                   "path": artifacts.store_path(o.result["path"])}]),
                    Rows("new_notes", "crop_midi_notes", lambda o, params: [
                  {"crop_id": o.item["crop_id"], "source": o.item["source"], "note_index": i, **note}
                  for i, note in enumerate(o.result["notes"])])),
              statements=("insert_midi", "insert_notes"))


STAGE = Stage(
    name="midi",
    description="notes per crop and stem with basic-pitch: beat-aligned MIDI files and note statistics",
    process=process,
    write=write,
    # The stems' rows too: whether a stem is flagged empty decides whether its crop is transcribed.
    reads=(Read("crops", "crop_id"), Read("stems", "track_id")),
    files=files,
    outputs=outputs,
    Params=Params,
    init_worker=init_worker,
    unavailable=unavailable,
    models=models,
    artifacts=True,
    batch_size=32,
)
