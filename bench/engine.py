"""Engine overhead: no-op stages over N items (claim + commit + lineage bookkeeping only).

    python bench/engine.py [--items 100000] [--batch-size 1000] [--repeats 3]
    python bench/engine.py --noop-rerun [--items 1000000] [--features] [--repeats 3]

Default mode: items/s of the engine (StageRunner, inline executor) for two no-op stages, `noop` and
`noop_down` (which reads `noop`'s outputs, so the lineage join is exercised), and, side by side in
the same process and on the same kind of store, of a bare loop of the engine's own statements
(reset_running, gone, pending with the lineage CTE, then per batch: payload every 10 batches, one
transaction that clears the previous batch's outputs, inserts its outputs, finishes it and claims
the next) without the engine around it: the difference is the framework. Target (issue 10): the
engine keeps >= 0.8x the bare loop's items/s.

--noop-rerun: a store whose N items are all done for both stages (stage_items and stage_outputs
filled by SQL exactly as a finished run leaves them, fingerprints computed by the engine's own
`pending` statement, so nothing is pending), then `StageRunner(...).run()` end to end (reset,
retire check, pending with the lineage joins). With --features, also the real `features` stage
over a synthetic 1M-crop store (bench/synthetic_store.sql, lineage rows as a finished run of
ingest/metadata/beats/crops/features leaves them: bench/lineage_store.py). Target: < 5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from etl.app import registry
from etl.engine import lineage
from etl.engine.config import Config, params_hash
from etl.engine.lineage import stage_sql
from etl.engine.resources import execute, registered
from etl.engine.runner import RunOptions, StageRunner
from etl.engine.stage import NoParams, Read, Stage
from etl.app.store import open_writer

PAYLOAD_BATCHES = 10  # as etl/engine/runner.py's _PAYLOAD_BATCHES


def noop(item: dict, params: object) -> None:
    return None


ITEMS_SQL = "SELECT id AS item_id, '' AS input_fp FROM bench_items"
NOOP = Stage(name="noop", description="does nothing", process=noop, items_sql=ITEMS_SQL)
NOOP_DOWN = Stage(name="noop_down", description="does nothing with noop's output", process=noop,
                  items_sql="SELECT id AS item_id, NULL AS input_fp FROM bench_items", reads=(Read("noop"),))
# The same shapes under other names for the bare loop (its rows never meet the engine's).
BARE = Stage(name="bare", description="", process=noop, items_sql=NOOP.items_sql)
BARE_DOWN = Stage(name="bare_down", description="", process=noop, items_sql=NOOP_DOWN.items_sql,
                  reads=(Read("bare"),))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def make_db(path: Path, items: int) -> None:
    writer = open_writer(path, create=True)
    writer.con.execute("CREATE TABLE bench_items AS SELECT 'item-' || lpad(CAST(i AS VARCHAR), 9, '0') AS id "
                       "FROM range(?) t(i)", [items])
    writer.con.execute("CHECKPOINT")
    writer.close()


def config(batch_size: int = 1000) -> Config:
    return Config.load({**registry.params_types(), "noop": NoParams, "noop_down": NoParams},
                       cli={"run.batch_size": batch_size, "run.executor": "inline"})


def bench_engine(path: Path, stage: Stage, batch_size: int) -> tuple[float, int]:
    writer = open_writer(path, create=False)
    started = time.perf_counter()
    report = StageRunner(writer, stage, config(batch_size), RunOptions(run_id="bench", executor="inline")).run()
    elapsed = time.perf_counter() - started
    writer.close()
    assert report.done == report.pending and report.done > 0, report
    return elapsed, report.done


def bench_bare(path: Path, stage: Stage, batch_size: int) -> tuple[float, int]:
    """The statements StageRunner runs for a stage (see _select_pending, _load_payloads, _sync,
    _commit, _claim in etl/engine/runner.py), each batch's finish + outputs + next claim in one
    transaction, driven by a plain loop."""
    con = duckdb.connect(str(path))
    s_hash = lineage.stage_hash(stage, NoParams())
    binds = {"stage": stage.name, "stage_hash": s_hash, "params_hash": params_hash(NoParams()), "run_id": "r",
             "max_attempts": 3, "retry_failed": False, "limit": 2**62}
    output_fp = lineage.fingerprint(None)  # what a no-op item produced
    started = time.perf_counter()
    con.execute("BEGIN")
    execute(con, "engine/state.sql", "reset_running", binds)
    execute(con, "engine/lineage.sql", "forget_check", binds)
    assert not con.sql(stage_sql(stage, "gone"), params={"stage": stage.name}).fetchall()
    pending_sql = stage_sql(stage, "pending")
    pending = con.sql(pending_sql, params={k: binds[k] for k in ("stage", "stage_hash", "max_attempts",
                                                                    "retry_failed", "limit")}
                      ).to_arrow_table().to_pylist()
    con.execute("COMMIT")
    payload_sql = stage_sql(stage, "payload")
    previous: list[dict] = []
    for n, start in enumerate(range(0, len(pending) + batch_size, batch_size)):
        batch = pending[start:start + batch_size]
        if batch and n % PAYLOAD_BATCHES == 0:
            window = pending[start:start + PAYLOAD_BATCHES * batch_size]
            with registered(con, claimed_batch=pa.table({"item_id": [i["item_id"] for i in window]})):
                rows = {r["item_id"]: r for r in con.sql(payload_sql).to_arrow_table().to_pylist()}
            for item in window:
                item.update(rows[item["item_id"]])
        con.execute("BEGIN")
        if previous:
            ids = pa.array([i["item_id"] for i in previous], pa.string())
            count = len(previous)
            cleared = pa.table({"item_id": ids})
            output_batch = pa.table({"item_id": ids, "key": ids, "output_fp": pa.array([output_fp] * count)})
            finished_batch = pa.table({
                "item_id": ids, "status": ["done"] * count, "fingerprint": [i["fingerprint"] for i in previous],
                "error": pa.array([None] * count, pa.string()), "retryable": pa.array([False] * count),
                "elapsed_s": pa.array([0.0] * count), "files": pa.array([None] * count, pa.list_(pa.string()))})
            with registered(con, cleared=cleared, output_batch=output_batch, finished_batch=finished_batch):
                execute(con, "engine/lineage.sql", "clear_outputs", binds)
                execute(con, "engine/lineage.sql", "insert_outputs", binds)
                execute(con, "engine/lineage.sql", "bump_outputs", binds)
                execute(con, "engine/state.sql", "finish", binds)
        if batch:
            claimed = pa.table({"item_id": [i["item_id"] for i in batch], "has_state": [i["has_state"] for i in batch]})
            with registered(con, claimed_batch=claimed):
                execute(con, "engine/state.sql", "claim_new", binds)
                execute(con, "engine/state.sql", "claim_existing", binds)
        con.execute("COMMIT")
        previous = batch
    elapsed = time.perf_counter() - started
    done = con.execute("SELECT count(*) FROM stage_items WHERE stage = ? AND status = 'done'", [stage.name]).fetchone()[0]
    con.close()
    assert done == len(pending) > 0
    return elapsed, done


def throughput(args: argparse.Namespace) -> None:
    rates: dict[str, list[float]] = {k: [] for k in ("bare", "engine", "bare_down", "engine_down")}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            # Each its own fresh store (like for like: the same table sizes), alternating which goes first.
            order = ("bare", "engine") if repeat % 2 == 0 else ("engine", "bare")
            for kind in order:
                path = Path(tmp) / f"{kind}{repeat}.duckdb"
                make_db(path, args.items)
                run = bench_bare if kind == "bare" else bench_engine
                up, down = (BARE, BARE_DOWN) if kind == "bare" else (NOOP, NOOP_DOWN)
                for stage, key in ((up, kind), (down, f"{kind}_down")):
                    elapsed, done = run(path, stage, args.batch_size)
                    rates[key].append(done / elapsed)
                path.unlink()
            print(f"  repeat {repeat + 1}: " + "  ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items())
                  + f"   ({load()})", flush=True)
    median = {k: statistics.median(v) for k, v in rates.items()}
    print(f"no-op stages, {args.items:,} items, batches of {args.batch_size}, median of {args.repeats} ({load()}):")
    for label, bare, engine in (("noop (no reads)", median["bare"], median["engine"]),
                                ("noop_down (reads noop)", median["bare_down"], median["engine_down"])):
        verdict = "met" if engine / bare >= 0.8 else "NOT met"
        print(f"  {label:<24} bare loop {bare:>9,.0f} items/s   engine {engine:>9,.0f} items/s   "
              f"engine/bare {engine / bare:.2f}  (target >= 0.8: {verdict})")


def fill_done(con: duckdb.DuckDBPyConnection, stage: Stage, params: object, outputs_sql: str | None = None) -> int:
    """Rows a finished run leaves for every item of `stage`: stage_items done with the fingerprint
    the engine computes (its own `pending` statement), stage_outputs per key (default: one key, the
    item's id, with a no-op's output fingerprint)."""
    s_hash = lineage.stage_hash(stage, params)
    pending = stage_sql(stage, "pending")
    con.execute(f"""
        INSERT INTO stage_items (stage, item_id, status, fingerprint, params_hash, attempts, last_error,
                                 retryable, run_id, elapsed_s, claimed_at, finished_at, files)
        SELECT $stage, item_id, 'done', fingerprint, $params_hash, 1, NULL, false, 'synthetic', 0.001,
               now(), now(), NULL
        FROM ({pending})""", {"stage": stage.name, "stage_hash": s_hash, "params_hash": params_hash(params),
                              "max_attempts": 3, "retry_failed": False, "limit": 2**62})
    if outputs_sql is None:
        con.execute("INSERT INTO stage_outputs SELECT $stage, item_id, item_id, $fp FROM stage_items "
                    "WHERE stage = $stage", {"stage": stage.name, "fp": lineage.fingerprint(None)})
    else:
        con.execute(outputs_sql)
    return con.execute("SELECT count(*) FROM stage_items WHERE stage = ?", [stage.name]).fetchone()[0]


def time_rerun(path: Path, stage: Stage, cfg: Config, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        writer = open_writer(path, create=False)
        started = time.perf_counter()
        report = StageRunner(writer, stage, cfg, RunOptions(run_id="rerun", executor="inline")).run()
        times.append(time.perf_counter() - started)
        writer.close()
        assert report.pending == 0 and report.retired == 0 and report.skipped_reason is None, report
    return times


def noop_rerun(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rerun.duckdb"
        started = time.perf_counter()
        make_db(path, args.items)
        writer = open_writer(path, create=False)
        with writer.transaction() as con:
            for stage in (NOOP, NOOP_DOWN):
                fill_done(con, stage, NoParams())
        writer.con.execute("CHECKPOINT")
        writer.close()
        print(f"built {args.items:,} done items of noop and noop_down in {time.perf_counter() - started:.1f} s")
        for stage in (NOOP, NOOP_DOWN):
            times = time_rerun(path, stage, config(), args.repeats)
            verdict = "met" if statistics.median(times) < 5 else "NOT met"
            print(f"  no-op re-run of {stage.name:<10} ({len(stage.reads)} read): median "
                  f"{statistics.median(times):.2f} s of {', '.join(f'{t:.2f}' for t in times)}  "
                  f"(target < 5 s: {verdict})  ({load()})", flush=True)
    if args.features:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/engine.py`
        from bench.lineage_store import build_lineage_store, features_config

        work = args.keep or Path(tempfile.mkdtemp(prefix="etl-bench-rerun-"))
        db = build_lineage_store(work, args.tracks, args.crops_per_track)
        stage = next(s for s in registry.all_stages() if s.name == "features")
        times = time_rerun(db, stage, features_config(), args.repeats)
        verdict = "met" if statistics.median(times) < 5 else "NOT met"
        print(f"  no-op re-run of features   ({len(stage.reads)} reads, {args.tracks * args.crops_per_track:,} crops): "
              f"median {statistics.median(times):.2f} s of {', '.join(f'{t:.2f}' for t in times)}  "
              f"(target < 5 s: {verdict})  ({load()})")
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=None, help="default 100,000; 1,000,000 with --noop-rerun")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noop-rerun", action="store_true", help="time a re-run with nothing pending")
    parser.add_argument("--features", action="store_true", help="with --noop-rerun: the features stage too")
    parser.add_argument("--tracks", type=int, default=50_000)
    parser.add_argument("--crops-per-track", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="with --features: build (or reuse) the store in this folder")
    args = parser.parse_args()
    if args.noop_rerun:
        args.items = args.items or 1_000_000
        noop_rerun(args)
    else:
        args.items = args.items or 100_000
        throughput(args)


if __name__ == "__main__":
    main()
