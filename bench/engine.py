"""Engine overhead: a no-op stage over N items (claim + commit bookkeeping only).

    python bench/engine.py [--items 100000] [--batch-size 1000]

Prints items/s for the engine and, side by side in the same process, for a bare loop of the
same DuckDB work (claim a batch, upsert its state rows) without the engine around it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from etl import stages as registry
from etl.config import Config
from etl.engine import RunOptions, StageRunner
from etl.stage import Stage
from etl.store import open_writer


def noop(item: dict, params: object) -> None:
    return None


NOOP = Stage(name="noop", description="does nothing", process=noop,
             items_sql="SELECT id AS item_id, '' AS input_fp FROM bench_items")


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
    """The same claim + commit statements, driven by a plain loop."""
    con = duckdb.connect(str(path))
    started = time.perf_counter()
    ids = [r[0] for r in con.execute("SELECT id FROM bench_items ORDER BY id").fetchall()]
    for start in range(0, len(ids), batch_size):
        batch = pa.table({"item_id": ids[start:start + batch_size]})
        con.execute("BEGIN")
        con.execute("INSERT INTO stage_items (stage, item_id, status, run_id, claimed_at) "
                    "SELECT 'bare', item_id, 'running', 'r', now() FROM batch "
                    "ON CONFLICT (stage, item_id) DO UPDATE SET status = 'running'")
        con.execute("COMMIT")
        con.execute("BEGIN")
        con.execute("INSERT INTO stage_items (stage, item_id, status, fingerprint, attempts, finished_at) "
                    "SELECT 'bare', item_id, 'done', 'x', 1, now() FROM batch "
                    "ON CONFLICT (stage, item_id) DO UPDATE SET status = 'done', attempts = stage_items.attempts + 1")
        con.execute("COMMIT")
    elapsed = time.perf_counter() - started
    con.close()
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
    print(f"  bare DuckDB claim+commit loop: {bare:>10,.0f} items/s")
    print(f"  engine (StageRunner):          {engine:>10,.0f} items/s   ({bare / engine:.2f}x the bare loop's time)")


if __name__ == "__main__":
    main()
