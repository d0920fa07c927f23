"""A synthetic store as a finished run leaves it, lineage included (for bench/engine.py --noop-rerun
--features and bench/status.py).

bench/synthetic_store.sql's tracks, files, tags, grids, crops and features, plus, for ingest,
metadata, beats, crops and features (stems not run, as on a machine without its model), the
stage_items rows (done, with the fingerprint the engine computes: its own `pending` statement) and
stage_outputs rows (ingest: per path under its track; metadata, beats: per track; crops: per crop
under its track's item, files listed; features: per crop) that a finished run writes.
"""

from __future__ import annotations

import time
from pathlib import Path

from etl.app import registry
from etl.engine.config import Config
from etl.engine.resources import execute
from etl.engine.runner import RunOptions, StageRunner
from etl.app.store import open_writer

# Per stage: its outputs as a finished run records them (output_fp: a 16-hex hash, as lineage.fingerprint).
OUTPUTS = {
    "ingest": "SELECT 'ingest', path, track_id, substr(md5('ingest:' || track_id), 1, 16) FROM files WHERE present",
    "metadata": "SELECT 'metadata', track_id, track_id, substr(md5('metadata:' || track_id), 1, 16) FROM tracks",
    "beats": "SELECT 'beats', track_id, track_id, substr(md5('beats:' || track_id), 1, 16) FROM beat_grids",
    "crops": "SELECT 'crops', track_id, crop_id, substr(md5('crops:' || crop_id), 1, 16) FROM crops",
    "features": "SELECT 'features', crop_id, crop_id, substr(md5('features:' || crop_id), 1, 16) FROM crop_features",
}


def features_config() -> Config:
    from etl.app.pipeline import load_config

    return load_config(None, {"run.executor": "inline"})


def build_lineage_store(work: Path, tracks: int, crops_per_track: int) -> Path:
    from bench.engine import fill_done
    from bench.query import build_store

    work.mkdir(parents=True, exist_ok=True)
    db = work / "lineage.duckdb"
    if db.exists():
        return db
    started = time.perf_counter()
    build_store(db, tracks, crops_per_track)
    config = features_config()
    writer = open_writer(db, create=False)
    with writer.transaction() as con:
        for stage in registry.all_stages():
            if stage.name not in OUTPUTS:
                continue
            fill_done(con, stage, config.params(stage.name), f"INSERT INTO stage_outputs {OUTPUTS[stage.name]}")
            if stage.name == "crops":  # an artifact stage lists its item's files
                con.execute("UPDATE stage_items SET files = c.files FROM "
                            "(SELECT track_id, list(path ORDER BY crop_id) AS files FROM crops GROUP BY track_id) AS c "
                            "WHERE stage_items.stage = 'crops' AND stage_items.item_id = c.track_id")
        for stage_name in OUTPUTS:  # each stage's outputs were committed once
            execute(con, "engine/lineage.sql", "bump_outputs", {"stage": stage_name})
    # Then the pass a finished run ends with: nothing pending, so each stage records its check.
    for stage in registry.all_stages():
        if stage.name in OUTPUTS:
            report = StageRunner(writer, stage, config, RunOptions(run_id="built", executor="inline")).run()
            assert report.pending == 0, report
    writer.con.execute("CHECKPOINT")
    counts = writer.con.execute("SELECT stage, count(*) FROM stage_items GROUP BY ALL ORDER BY ALL").fetchall()
    writer.close()
    print(f"built {db} ({db.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{stage} {n:,}" for stage, n in counts), flush=True)
    return db
