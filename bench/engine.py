"""Engine overhead: a no-op stage over N items (claim + commit bookkeeping only).

    python bench/engine.py [--items 100000] [--batch-size 1000]

Prints items/s for the engine and, side by side in the same process, for a bare loop of the
engine's own SQL statements without the engine around it (so the difference is the framework).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from etl import stages as registry
from etl.engine.config import Config
from etl.engine.runner import RunOptions, StageRunner, stage_sql
from etl.engine.resources import execute
from etl.engine.stage import Stage
from etl.engine.store import open_writer


def noop(item: dict, params: object) -> None:
    return None


NOOP = Stage(name="noop", description="does nothing", process=noop,
             items_sql="SELECT id AS item_id, '' AS input_fp FROM bench_items")
BARE = Stage(name="bare", description="the same items for the bare loop", process=noop, items_sql=NOOP.items_sql)


def make_db(path: Path, items: int) -> None:
    writer = open_writer(path, create=True)
    writer.con.execute("CREATE TABLE bench_items AS SELECT 'item-' || lpad(CAST(i AS VARCHAR), 9, '0') AS id "
                       "FROM range(?) t(i)", [items])
    writer.close()


def bench_engine(path: Path, batch_size: int) -> float:
    config = Config.load({**registry.params_types(), "noop": NOOP.Params},
                         cli={"run.batch_size": batch_size, "run.executor": "inline"})
    writer = open_writer(path, create=False)
    started = time.perf_counter()
    report = StageRunner(writer, NOOP, config, RunOptions(run_id="bench", executor="inline")).run()
    elapsed = time.perf_counter() - started
    writer.close()
    assert report.done == report.pending, report
    return report.done / elapsed


def bench_bare(path: Path, batch_size: int) -> float:
    """The engine's own statements (select pending, then per batch: commit the previous batch's
    state and claim the next in one transaction), driven by a plain loop with no engine around it."""
    con = duckdb.connect(str(path))
    binds = {"stage": "bare", "params_hash": "p", "run_id": "r", "max_attempts": 3, "retry_failed": False,
             "limit": 2**62}
    started = time.perf_counter()
    pending = con.sql(stage_sql(BARE, "pending"), params={k: v for k, v in binds.items() if k != "run_id"}).fetchall()
    ids = [row[0] for row in pending]
    previous = None
    for start in range(0, len(ids) + batch_size, batch_size):
        batch = ids[start:start + batch_size]
        con.execute("BEGIN")
        if previous is not None:
            finished_batch = pa.table({"item_id": previous, "status": ["done"] * len(previous),
                                       "fingerprint": ["f"] * len(previous), "error": [None] * len(previous),
                                       "retryable": [False] * len(previous), "elapsed_s": [0.0] * len(previous)})
            con.register("finished_batch", finished_batch)
            execute(con, "engine/state.sql", "finish", binds)
            con.unregister("finished_batch")
        if batch:
            claimed_batch = pa.table({"item_id": batch, "has_state": [False] * len(batch)})
            con.register("claimed_batch", claimed_batch)
            execute(con, "engine/state.sql", "claim_new", binds)
            execute(con, "engine/state.sql", "claim_existing", binds)
            con.unregister("claimed_batch")
        con.execute("COMMIT")
        previous = batch or None
    elapsed = time.perf_counter() - started
    done = con.execute("SELECT count(*) FROM stage_items WHERE stage = 'bare' AND status = 'done'").fetchone()[0]
    con.close()
    assert done == len(ids)
    return len(ids) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        make_db(path, args.items)
        bare = bench_bare(path, args.batch_size)
        engine = bench_engine(path, args.batch_size)
    print(f"no-op stage, {args.items:,} items, batches of {args.batch_size}:")
    print(f"  bare loop of the same SQL:     {bare:>10,.0f} items/s")
    print(f"  engine (StageRunner):          {engine:>10,.0f} items/s   ({bare / engine:.2f}x the bare loop's time)")


if __name__ == "__main__":
    main()
