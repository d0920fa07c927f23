"""How to store classify's scores: query speed and size of three layouts on a 1M-crop store.

    python bench/classes_layout.py [--crops 1000000] [--tracks 5000] [--repeats 5] [--dir /tmp/classes_layout]
                                   [--rebuild] [--json]

Builds (once; kept in --dir and reused unless --rebuild) a DuckDB file per layout with the same
synthetic scores of four heads (400, 56, 40 and 2 labels; bench/classes_layout.sql):
  list         today's crop_classes: one row per (crop, head) with labels, scores and top as lists;
  long         crop_scores (crop_id, track_id, head, label, score), one row per label, and crop_top
               (crop_id, track_id, head, rank, label, score);
  scores_only  crop_classes without the labels column: scores in the head's label order, the labels
               once per head (class_heads), top as today.
Then times typical queries on each, read-only, warm (one untimed run first), median of --repeats,
results fetched as Arrow: crops whose genre_top is X; crops where the score of 'Electronic---House'
is over 0.5; crops_v's classify columns for 10,000 crops (the crops of 50 tracks) and for all;
track_classes_v (every score averaged per track); the 20 most frequent top genres. Sizes are of the
files after a checkpoint, and of the layout alone (less a file holding only crops and class_heads).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import duckdb

from etl.engine.resources import sql, used_binds

HERE = Path(__file__).resolve().parent
LAYOUTS = ("list", "long", "scores_only")
QUERIES = {  # name: (section of classes_layout.sql, extra binds, what it is)
    "genre_top": ("genre_top", {}, "crops whose genre_top is 'Electronic---House'"),
    "score_over": ("score_over", {}, "crops with score('Electronic---House') > 0.5"),
    "crops_v_10k": ("crops_v", {"all": False}, "crops_v classify columns, 10k crops"),
    "crops_v_all": ("crops_v", {"all": True}, "crops_v classify columns, all crops"),
    "track_avg": ("track_avg", {}, "track_classes_v: scores averaged per track"),
    "top20": ("top20", {}, "the 20 most frequent top genres"),
}
GENRE_HEAD = "genre_discogs400-discogs-effnet-1"


def views() -> dict[str, str]:
    """The list layout's queries are the project's views as they stand: crops_v's subquery over
    crop_classes and track_classes_v's query."""
    crops_v = sql("stages/classify/views.sql", "crops_v.join")
    end = crops_v.index("FROM crop_classes GROUP BY crop_id)") + len("FROM crop_classes GROUP BY crop_id)")
    track_classes_v = sql("stages/classify/views.sql", "views")
    return {"{crops_v_classes}": crops_v[crops_v.rindex("(SELECT crop_id,", 0, end):end],
            "{track_classes_v}": track_classes_v.split("CREATE OR REPLACE VIEW track_classes_v AS", 1)[1].strip()}


def sections() -> dict[str, str]:
    text = (HERE / "classes_layout.sql").read_text()
    for placeholder, query in views().items():
        text = text.replace(placeholder, query)
    return {part.split("\n", 1)[0].strip(): part.split("\n", 1)[1] for part in text.split("-- name: ")[1:]}


def run_section(con: duckdb.DuckDBPyConnection, body: str, binds: dict[str, Any]) -> None:
    for statement in filter(str.strip, body.split(";\n")):
        if any(not line.strip().startswith("--") for line in statement.strip().splitlines()):
            con.execute(statement, used_binds(statement, binds))


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET memory_limit = '8GB'")
    con.execute(f"SET temp_directory = '{path.parent / 'spill'}'")
    return con


def build(folder: Path, crops: int, tracks: int, rebuild: bool) -> dict[str, float]:
    """Each layout's file (kept and reused); returns the seconds each build took (0: reused)."""
    sql, binds = sections(), {"crops": crops, "tracks": tracks}
    folder.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    for name in ("base", *LAYOUTS):
        path = folder / f"{name}.duckdb"
        if path.exists() and not rebuild:
            with connect(path, read_only=True) as con:
                if con.execute("SELECT count(*) FROM crops").fetchone()[0] == crops:
                    seconds[name] = 0.0
                    continue
        path.unlink(missing_ok=True)
        started = time.perf_counter()
        with connect(path) as con:
            if name in ("base", "list"):
                run_section(con, sql["build_base"], binds)
            else:
                con.execute(f"ATTACH '{folder / 'list.duckdb'}' AS list_store (READ_ONLY)")
                run_section(con, sql["copy_base"], binds)
            if name != "base":
                run_section(con, sql[f"build_{name}"], binds)
            con.execute("CHECKPOINT")
        seconds[name] = time.perf_counter() - started
    return seconds


def timed(con: duckdb.DuckDBPyConnection, statement: str, binds: dict[str, Any], repeats: int) -> tuple[float, int]:
    """(median seconds, rows) of a warm query whose result is fetched as Arrow."""
    rows = con.sql(statement, params=binds).to_arrow_table().num_rows  # warm
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        con.sql(statement, params=binds).to_arrow_table()
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def measure(folder: Path, repeats: int) -> dict[str, dict[str, Any]]:
    sql = sections()
    with connect(folder / "list.duckdb", read_only=True) as con:
        genre_labels = con.execute("SELECT labels FROM class_heads WHERE head = ?", [GENRE_HEAD]).fetchone()[0]
        tracks_10k = [r[0] for r in con.execute(
            "SELECT track_id FROM (SELECT track_id, sum(count(*)) OVER (ORDER BY track_id) AS crops FROM crops "
            "GROUP BY track_id) WHERE crops <= 10000").fetchall()]
    binds = {"head": GENRE_HEAD, "label": genre_labels[1], "tracks_10k": tracks_10k}
    base = (folder / "base.duckdb").stat().st_size
    results: dict[str, dict[str, Any]] = {}
    for layout in LAYOUTS:
        size = (folder / f"{layout}.duckdb").stat().st_size
        figures: dict[str, Any] = {"file_mb": size / 1e6, "layout_mb": (size - base) / 1e6}
        with connect(folder / f"{layout}.duckdb", read_only=True) as con:
            for query, (section, extra, _) in QUERIES.items():
                statement = sql.get(f"q_{section}_{layout}") or sql[f"q_{section}_list"]
                figures[query] = timed(con, statement, used_binds(statement, {**binds, **extra}), repeats)
        results[layout] = figures
    for query in QUERIES:  # every layout answers the same
        counts = {layout: results[layout][query][1] for layout in LAYOUTS}
        assert len(set(counts.values())) == 1, (query, counts)
    return results


def report(results: dict[str, dict[str, Any]], crops: int, repeats: int, built: dict[str, float]) -> None:
    print(f"classify scores, {crops:,} crops x 4 heads (400 + 56 + 40 + 2 labels); medians of {repeats} warm runs, "
          f"seconds (rows)")
    print(f"  {'':<46}" + "".join(f"{layout:>20}" for layout in LAYOUTS))
    print(f"  {'file size, MB (layout alone)':<46}" + "".join(
        f"{results[layout]['file_mb']:,.0f} ({results[layout]['layout_mb']:,.0f})".rjust(20) for layout in LAYOUTS))
    for query, (_, _, what) in QUERIES.items():
        cells = "".join(f"{results[layout][query][0]:>11.3f} {'(' + str(results[layout][query][1]) + ')':>8}"
                        for layout in LAYOUTS)
        print(f"  {what:<46}{cells}")
    print(f"  build seconds (0: reused): {', '.join(f'{k} {v:.0f}' for k, v in built.items())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=1_000_000)
    parser.add_argument("--tracks", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/classes_layout"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    built = build(args.dir, args.crops, args.tracks, args.rebuild)
    results = measure(args.dir, args.repeats)
    if args.json:
        print(json.dumps({"crops": args.crops, "tracks": args.tracks, "repeats": args.repeats, "build_s": built,
                          "layouts": results}, indent=2))
    else:
        report(results, args.crops, args.repeats, built)


if __name__ == "__main__":
    main()
