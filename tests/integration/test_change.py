"""The store after a change equals a fresh run with the new settings, and only what had to change
was recomputed (issue 10's change test).

Real music, every stage (stems with a small random demucs model built by the test). After each
change, one `etl run` on the existing store is compared, table by table and artifact file by
content hash, with a run from scratch into a new store over the same files and settings.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.audio_files import tag_file
from tests.helpers import corpus, require

pytestmark = pytest.mark.slow

# Tables as a user sees them, minus wall-clock and per-run columns.
TABLES = {
    "files": "SELECT path, size_bytes, mtime_ns, scan_error, present, track_id, sha256, sample_hash, "
             "ingested_size_bytes, ingested_mtime_ns FROM files",
    "tracks": "SELECT * EXCLUDE (ingested_at) FROM tracks",
    "track_tags": "SELECT * EXCLUDE (read_at) FROM track_tags",
    "beat_grids": "SELECT * EXCLUDE (created_at) FROM beat_grids",
    "track_stems": "SELECT * EXCLUDE (created_at) FROM track_stems",
    "crops": "SELECT * EXCLUDE (created_at) FROM crops",
    "crop_stems": "SELECT * FROM crop_stems",
    "crop_features": "SELECT * FROM crop_features",
    "crop_stem_features": "SELECT * FROM crop_stem_features",
    # Ingest's input is a path's stat version, a count of the changes the scan saw (a fresh store
    # starts at 0): its fingerprint differs for a file that changed, and says nothing about results.
    "stage_items": "SELECT stage, item_id, status, CASE WHEN stage = 'ingest' THEN NULL ELSE fingerprint END, "
                   "params_hash, attempts, last_error, files FROM stage_items",
    "stage_outputs": "SELECT stage, item_id, key, output_fp FROM stage_outputs",
    "superseded_files": "SELECT path FROM superseded_files",
}


def _plain(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace(base, "BASE")
    if isinstance(value, list):
        return tuple(_plain(v, base) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v, base)) for k, v in value.items()))
    return value


def snapshot(db: Path) -> dict[str, Any]:
    con = duckdb.connect(str(db), read_only=True)
    base = str(db.parent)
    try:
        tables = {name: sorted((tuple(_plain(v, base) for v in row) for row in con.execute(sql).fetchall()),
                               key=repr)
                  for name, sql in TABLES.items()}
    finally:
        con.close()
    data = db.parent / "etl-data"
    tables["artifact files"] = sorted(
        (str(p.relative_to(data)), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in data.rglob("*") if p.is_file()) if data.exists() else []
    return tables


def failures(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT stage, item_id, last_error FROM stage_items WHERE status = 'failed'").fetchall()
    finally:
        con.close()


def crop_files_hold_their_rows(db: Path) -> None:
    """Finding 3: after a grid change a crop file kept the old audio under a new row."""
    import soundfile as sf

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT artifact_path(path), start_sample, end_sample FROM crops "
                           "UNION ALL SELECT artifact_path(s.path), c.start_sample, c.end_sample FROM crop_stems s "
                           "JOIN crops c USING (crop_id)").fetchall()
    finally:
        con.close()
    for path, start, end in rows:
        assert sf.info(path).frames == end - start, path


def run(db: Path, src: Path, settings: dict[str, str]) -> dict[str, int]:
    """One `etl run` in-process; items processed per stage."""
    from etl.app import pipeline
    from etl.engine.runner import RunOptions

    config = pipeline.load_config(None, {"run.executor": "inline", **settings})
    reports = pipeline.run(db, config, sources=[src], options=RunOptions(run_id=uuid.uuid4().hex[:12],
                                                                         executor="inline"))
    return {r.stage: r.processed for r in reports}


@pytest.fixture(scope="module")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("demucs")
    from etl.stages.stems.testing import write_random_model

    return write_random_model(tmp_path_factory.mktemp("models"))


@pytest.mark.timeout(1500)  # 16 pipeline runs of every stage
def test_every_change_equals_a_fresh_run_and_recomputes_only_what_changed(tmp_path: Path, model_repo: Path) -> None:
    require("madmom")
    require("librosa")
    src = tmp_path / "music"
    src.mkdir()
    shutil.copyfile(corpus("mp3_tagged", "sectoid_feelings_40s_ffmpeg.mp3"), src / "feelings.mp3")
    shutil.copyfile(corpus("mp3_tagged", "wesnoth_traveling_minstrels_30s_lame.mp3"), src / "minstrels.mp3")
    store = tmp_path / "store" / "etl.duckdb"
    # Every stage runs; the per-crop model stages on their cheaper settings (MIDI of the mix only, deep
    # chroma chords), since each change runs the pipeline twice (the store and a fresh one).
    settings = {"crops.bars": "4", "crops.bars_multiple": "4", "features.series": "false",
                "stems.model": "absent", "stems.repo": str(model_repo), "stems.shifts": "0",
                "midi.stems": "", "chords.chord_model": "deepchroma"}
    first = run(store, src, settings)
    assert first["ingest"] == 2 and first["crops"] == 2 and first["features"] > 4

    def crops_of(track_paths: list[str]) -> int:
        con = duckdb.connect(str(store), read_only=True)
        try:
            return con.execute("SELECT count(*) FROM crops JOIN files USING (track_id) WHERE files.path IN "
                               "(SELECT unnest($paths))", {"paths": track_paths}).fetchone()[0]
        finally:
            con.close()

    def grids() -> dict[str, tuple]:
        con = duckdb.connect(str(store), read_only=True)
        try:
            return {r[0]: r[1:] for r in con.execute(
                "SELECT track_id, beat_times_s, beat_positions FROM beat_grids").fetchall()}
        finally:
            con.close()

    n_crops = crops_of([str(src / "feelings.mp3"), str(src / "minstrels.mp3")])

    def retag() -> None:
        tag_file(src / "feelings.mp3", "mp3", {"artist": "Sectoid", "title": "Feelings (re-tagged)"})

    def replace() -> None:
        shutil.copyfile(corpus("mp3_tagged", "singularity_deprecation_30s_mapmeta.mp3"), src / "minstrels.mp3")

    # (what changes, settings after it, expected items per stage; None: checked separately)
    changes: list[tuple[str, Any, dict[str, str], dict[str, Any]]] = [
        ("a setting that changes no result", None, {"ingest.verify_s": "2"},
         {"ingest": 2, "metadata": 0, "beats": 0, "crops": 0, "features": 0}),
        ("a crops parameter", None, {"crops.fade_ms": "20"},
         {"ingest": 0, "metadata": 0, "beats": 0, "crops": 2, "features": n_crops}),
        ("stems added", None, {"stems.model": "tiny"},
         {"ingest": 0, "beats": 0, "stems": 2, "crops": 2, "features": n_crops}),
        # finding 2: re-running features on crops with stem features failed on every such crop
        ("a features group switched on", None, {"features.series": "true"},
         {"ingest": 0, "beats": 0, "stems": 0, "crops": 0, "features": n_crops}),
        # finding 4: stem features went stale after a stems change
        ("a stems setting", None, {"stems.empty_rms_dbfs": "0", "stems.fold_empty": "true"},
         {"ingest": 0, "beats": 0, "stems": 2, "crops": 2, "features": n_crops}),
        ("a beats parameter", None, {"beats.max_bpm": "100"}, {"ingest": 0, "beats": 2, "stems": 0}),
        # The track is its audio: new tags re-read the tags and nothing else (issue 11).
        ("a file re-tagged", retag, {}, {"ingest": 1, "metadata": 1, "beats": 0, "stems": 0, "crops": 0,
                                         "features": 0}),
        ("a file replaced by other audio", replace, {},
         {"ingest": 1, "metadata": 1, "beats": 1, "stems": 1, "crops": 1}),
    ]
    for number, (what, change, new_settings, expected) in enumerate(changes):
        settings = {**settings, **new_settings}
        grids_before = grids()
        if change is not None:
            change()
        done = run(store, src, settings)
        fresh = tmp_path / f"fresh-{number}" / "etl.duckdb"
        run(fresh, src, settings)
        assert snapshot(store) == snapshot(fresh), f"after {what}, the store differs from a fresh run"
        for stage, count in expected.items():
            assert done.get(stage, 0) == count, f"after {what}: {stage} processed {done.get(stage)}, not {count}"
        assert not failures(store), f"after {what}"
        crop_files_hold_their_rows(store)
        if what == "a beats parameter":  # crops recut exactly where the grid changed
            after = grids()
            changed = sum(1 for track, grid in after.items() if grids_before.get(track) != grid)
            assert done["crops"] == changed
        if what == "a file replaced by other audio":
            assert done["features"] == crops_of([str(src / "minstrels.mp3")])
