"""The same stage on the local process pool and on Ray: items/s and the per-item overhead of each.

    python bench/executors.py [--items 400] [--work-ms 20] [--workers 2] [--address ADDR]

A synthetic stage whose `process` spins the CPU for `--work-ms` per item (real work, not a sleep,
so a worker's core is as busy as with audio) runs through the real engine (StageRunner: claim,
commit, lineage) on the same N items, once per executor, with the same number of workers, each on a
fresh copy of the store; pools are started and the work is timed from the first claim. The per-item
overhead is what a worker-slot spends per item beyond the work:

    overhead_ms = wall_s * workers / items * 1000 - work_ms

so it counts the engine, the transport of items and outcomes, and the idle time of a slot waiting
for its next chunk. Target (issue 17): Ray's overhead ≤ 5 ms per item (a 1 s item loses ≤ 0.5 %).
Ray: a local cluster (`ray.init`) unless --address (or $RAY_ADDRESS) names one; pool and actor
start-up are reported apart, not in the per-item figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from etl.app import registry
from etl.engine.config import Config
from etl.engine.runner import RunOptions, StageRunner, default_executor_factory
from etl.engine.stage import NoParams, Stage
from etl.app.store import open_writer

sys.path.insert(0, str(Path(__file__).parent))
from engine import make_db  # noqa: E402  (bench/engine.py: a store of N bench_items)


def spin(item: dict, params: object) -> int:
    """Busy work for item["work_ms"] milliseconds of this process's CPU time."""
    deadline = time.process_time() + item["work_ms"] / 1000
    count = 0
    while time.process_time() < deadline:
        count += 1
    return count > 0


def stage(work_ms: float) -> Stage:
    return Stage(name="spin", description="busy work", process=spin,
                 items_sql=f"SELECT id AS item_id, '' AS input_fp, CAST({work_ms} AS DOUBLE) AS work_ms FROM bench_items")


class Timed:
    """An executor factory that times the pool's start apart from the work."""

    def __init__(self, kind: str, address: str) -> None:
        from etl.engine.ray_pool import RayResources

        self._make = default_executor_factory(kind, resources=RayResources(address=address))
        self.start_s = 0.0

    def __call__(self, stage: Stage, params: object, workers: int):  # noqa: ANN204
        started = time.perf_counter()
        executor = self._make(stage, params, workers)
        self.start_s += time.perf_counter() - started
        return executor


def run(kind: str, db: Path, work_ms: float, workers: int, batch_size: int, address: str) -> dict:
    config = Config.load({**registry.params_types(), "spin": NoParams},
                         cli={"run.batch_size": batch_size, "run.workers": workers})
    factory = Timed(kind, address)
    writer = open_writer(db, create=False)
    started = time.perf_counter()
    report = StageRunner(writer, stage(work_ms), config, RunOptions(run_id=kind, executor=kind),
                         executor_factory=factory).run()
    wall_s = time.perf_counter() - started - factory.start_s
    errors = writer.con.execute("SELECT DISTINCT last_error FROM stage_items WHERE status = 'failed'").fetchall()
    writer.close()
    assert report.done == report.pending > 0, (report, errors)
    return {"executor": kind, "items": report.done, "workers": workers, "work_ms": work_ms,
            "pool_start_s": round(factory.start_s, 2), "wall_s": round(wall_s, 2),
            "items_per_s": round(report.done / wall_s, 1),
            "overhead_ms_per_item": round(wall_s * workers / report.done * 1000 - work_ms, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--work-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS", ""))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.duckdb"
        make_db(template, args.items)
        for kind in ("process", "ray"):
            db = Path(tmp) / f"{kind}.duckdb"
            shutil.copy(template, db)
            results.append(run(kind, db, args.work_ms, args.workers, args.batch_size, args.address))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.items} items of {args.work_ms:g} ms CPU work, {args.workers} workers, batch {args.batch_size}")
    print(f"{'executor':<10}{'pool start s':>14}{'wall s':>9}{'items/s':>10}{'overhead ms/item':>18}")
    for r in results:
        print(f"{r['executor']:<10}{r['pool_start_s']:>14}{r['wall_s']:>9}{r['items_per_s']:>10}"
              f"{r['overhead_ms_per_item']:>18}")


if __name__ == "__main__":
    main()
