"""`etl report` on a 1M-crop store: the whole command against its SQL alone, and the page's size.

    python bench/report.py [--tracks 50000] [--crops-per-track 20] [--repeats 3] [--keep DIR]

Builds bench/query.py's synthetic store, then times from fresh processes, median of --repeats:
  - `etl report --out DIR` (the Vega bundle already in the user cache: the first run builds it);
  - a bare `python -c` that opens the database read-only with duckdb alone and runs exactly the
    statements the report ran, with the same binds (recorded from one in-process report).
The difference is what the report adds to its queries: `etl status`, Altair's specs, the page.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _bench_query() -> Any:
    spec = importlib.util.spec_from_file_location("bench_query", HERE / "query.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recorder:
    """A connection that notes every statement and its binds before running it."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.statements: list[tuple[str, dict[str, Any]]] = []

    def execute(self, text: str, binds: dict[str, Any] | None = None) -> Any:
        self.statements.append((text, dict(binds or {})))
        return self.con.execute(text, binds or {})


def record_statements(db: Path) -> list[tuple[str, dict[str, Any]]]:
    from etl.read.readonly import open_sandbox
    from etl.read.report.gather import Selection, gather

    with open_sandbox(db) as con:
        recorder = Recorder(con)
        gather(recorder, Selection.of(None, None), [], "bpm", "loudness_integrated_lufs", 15, 2000, 12, 5)
    return recorder.statements


def median_s(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=50_000)
    parser.add_argument("--crops-per-track", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the store in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "store.duckdb"
    try:
        if not db.exists():
            started = time.perf_counter()
            _bench_query().build_store(db, args.tracks, args.crops_per_track)
            print(f"built {args.tracks * args.crops_per_track:,} crops in {time.perf_counter() - started:.1f} s")
        statements = record_statements(db)
        recorded = folder / "statements.json"
        recorded.write_text(json.dumps(statements))
        bare = [sys.executable, "-c",
                "import duckdb, json, sys\n"
                "con = duckdb.connect(sys.argv[1], read_only=True)\n"
                "for text, binds in json.load(open(sys.argv[2])):\n"
                "    con.execute(text, binds).fetchall()\n", str(db), str(recorded)]
        out = folder / "report"
        command = [sys.executable, "-m", "cli.main", "--db", str(db), "report", "--out", str(out)]
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)  # warm: the Vega bundle cached
        report_s, bare_s = median_s(command, args.repeats), median_s(bare, args.repeats)
        size = (out / "index.html").stat().st_size
        print(f"etl report: {report_s:.2f} s; its {len(statements)} statements in a bare duckdb process: "
              f"{bare_s:.2f} s ({report_s / bare_s:.2f}x); page {size / 1e6:.2f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
