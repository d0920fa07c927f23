"""`etl query` and `etl export` against bare DuckDB, each from a fresh process, on a 1M-crop store.

    python bench/query.py [--tracks 50000] [--crops-per-track 20] [--repeats 5] [--keep DIR]

Builds a synthetic store (bench/synthetic_store.sql: realistic crops_v columns, ~400 genre labels),
then times whole processes, median of --repeats:
  - a genre + BPM range query and a count by key: `etl query` (CSV, and the default table) vs
    `python -c` with duckdb alone (import, connect read-only, run, print the rows);
  - an export of every crop to CSV and to Parquet (the formats that point at the store's files: a
    synthetic store has no audio to link, which jsonl's manifest needs): `etl export` vs the same
    rows written by DuckDB's own COPY from a bare `python -c`.
Targets (issue): query ≤ 2x the bare process, exports ≤ 1.3x DuckDB's COPY.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from etl.engine.resources import used_binds
from etl.app.store import open_writer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GENRE_QUERY = ("SELECT crop_id, path, bpm, key_name FROM crops_v "
               "WHERE genre = 'deep house 7' AND bpm BETWEEN 120 AND 128 ORDER BY crop_id")
KEY_QUERY = "SELECT key_name, count(*) AS crops FROM crops_v GROUP BY ALL ORDER BY crops DESC"


def build_store(db: Path, tracks: int, crops_per_track: int) -> None:
    text = (HERE / "synthetic_store.sql").read_text()
    writer = open_writer(db, create=True)
    con = writer.con
    binds = {"tracks": tracks, "crops_per_track": crops_per_track}
    for statement in text.split("-- name: ")[1:]:
        body = statement.split("\n", 1)[1].strip().rstrip(";")
        con.execute(body, used_binds(body, binds))
    con.execute("CHECKPOINT")
    writer.close()


def timed(command: list[str], repeats: int, before: callable | None = None) -> float:
    times = []
    for _ in range(repeats):
        if before:
            before()
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bare(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def etl_cli(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", "--db", str(db), *args]


def report(label: str, framework_s: float, bare_s: float, target: float) -> None:
    ratio = framework_s / bare_s
    verdict = "met" if ratio <= target else "NOT met"
    print(f"{label:<36} etl {framework_s:6.3f} s   bare {bare_s:6.3f} s   {ratio:4.2f}x  (target ≤ {target}x: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=50_000)
    parser.add_argument("--crops-per-track", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the store in this folder")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="etl-bench-query-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bench.duckdb"
    if not db.exists():
        started = time.perf_counter()
        build_store(db, args.tracks, args.crops_per_track)
        print(f"built {db} ({db.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.1f} s")
    crops = duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM crops_v").fetchone()[0]
    print(f"{crops:,} crops; median of {args.repeats} fresh processes each")

    connect = f"import duckdb; con = duckdb.connect({str(db)!r}, read_only=True); "
    for label, sql in (("query: genre + BPM range", GENRE_QUERY), ("query: count by key", KEY_QUERY)):
        bare_s = timed(bare(connect + f"print(con.sql({sql!r}).fetchall())"), args.repeats)
        for fmt in ("csv", "table"):
            report(f"{label} ({fmt})", timed(etl_cli(db, "query", sql, "--format", fmt), args.repeats), bare_s, 2.0)

    out = work / "export"
    clear = lambda: shutil.rmtree(out, ignore_errors=True)
    for fmt, columns, options in (("csv", "*", "FORMAT csv, HEADER"), ("parquet", "*", "FORMAT parquet")):
        target = work / f"bare.{fmt}"
        copy = f"COPY (SELECT {columns} FROM crops_v) TO {str(target)!r} ({options})"
        report(f"export: {crops:,} rows {fmt}", timed(etl_cli(db, "export", "--format", fmt, "--out", str(out)),
                                                      args.repeats, clear),
               timed(bare(connect + f"con.execute({copy!r})"), args.repeats), 1.3)
    print(f"store kept in {work}" if args.keep else "")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
