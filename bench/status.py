"""What the lineage check adds to `etl status` on a 1M-crop store.

    python bench/status.py [--tracks 50000] [--crops-per-track 20] [--repeats 5] [--keep DIR]

Builds (or reuses, with --keep) a synthetic store as a finished run of ingest, metadata, beats,
crops and features leaves it (bench/lineage_store.py: bench/synthetic_store.sql plus stage_items
and stage_outputs), then times whole processes, median of --repeats:
  - `etl status` (the CLI);
  - the same CLI started through `python -c` (the launcher of the variant below), unchanged;
  - the same, with every stage's `counts` statement built without its lineage joins and columns
    (`reads` dropped): the counting a store without lineage would do.
Also, in one process, each stage's `counts` statement with and without its lineage joins.
Target (issue 10): the lineage check adds < 10 % to `etl status`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/status.py`
from bench.lineage_store import build_lineage_store, features_config
from bench.query import etl_cli, timed
from etl.app import registry
from etl.engine import lineage
from etl.engine.resources import used_binds

LAUNCH = ("import sys, dataclasses, etl.engine.runner, etl.engine.lineage; {patch}"
          "from cli.main import main; sys.argv = ['etl', '--db', {db!r}, 'status']; main()")
NO_LINEAGE = ("stage_sql = etl.engine.lineage.stage_sql; "
              "etl.engine.runner.stage_sql = lambda stage, name: stage_sql(dataclasses.replace(stage, reads=()), name); ")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def in_process(db: Path, repeats: int) -> None:
    config = features_config()
    con = duckdb.connect(str(db), read_only=True)
    print(f"counts statement per stage, in one process, median of {repeats}:")
    for stage in registry.all_stages():
        params = config.params(stage.name)
        # as `etl status` binds them (lineage.counts): the items query's own `$name`s too (captions' prompts)
        binds = {"stage": stage.name, "stage_hash": lineage.stage_hash(stage, params),
                 **lineage.item_binds(stage, params)}
        times = {}
        for label, s in (("lineage", stage), ("none", dataclasses.replace(stage, reads=()))):
            statement = lineage.stage_sql(s, "counts")
            runs = []
            for _ in range(repeats):
                started = time.perf_counter()
                row = con.execute(statement, used_binds(statement, binds)).fetchone()
                runs.append(time.perf_counter() - started)
            times[label] = (statistics.median(runs), row)
        (with_s, row), (without_s, _) = times["lineage"], times["none"]
        print(f"  {stage.name:<9} {len(stage.reads)} reads  with {with_s:6.3f} s  without {without_s:6.3f} s  "
              f"(+{with_s - without_s:6.3f} s)  counts {row}")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=50_000)
    parser.add_argument("--crops-per-track", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the store in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="etl-bench-status-"))
    db = build_lineage_store(work, args.tracks, args.crops_per_track)
    in_process(db, args.repeats)

    print(f"etl status, whole process, median of {args.repeats}:")
    cli = timed(etl_cli(db, "status"), args.repeats)
    print(f"  etl status (CLI)                  {cli:6.3f} s   ({load()})", flush=True)
    results = {}
    for label, patch in (("with lineage", ""), ("without lineage joins", NO_LINEAGE)):
        results[label] = timed([sys.executable, "-c", LAUNCH.format(patch=patch, db=str(db))], args.repeats)
        print(f"  python -c, {label:<22} {results[label]:6.3f} s   ({load()})", flush=True)
    ratio = results["with lineage"] / results["without lineage joins"]
    verdict = "met" if ratio < 1.10 else "NOT met"
    print(f"lineage adds {100 * (ratio - 1):+.1f} % to etl status (target < 10 %: {verdict})")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
