"""Where basic-pitch's notes live: a notes table (one row per note) against a list column of note structs
(one row per crop and source), on the same synthetic notes, for the queries users run on them.

    python bench/midi_layout.py [--crops 20000] [--notes 60]

The store uses the table (etl/stages/midi/migrations/013_midi.sql): it is faster for every query here but "does any note
of the crop pass a filter", where the list column's per-row lambda wins.
"""

from __future__ import annotations

import argparse
import time

import duckdb

QUERIES = [
    ("notes of one crop and source",
     "SELECT * FROM notes WHERE crop_id = 'c00012345' AND source = 'bass'",
     "SELECT unnest(notes, recursive := true) FROM lists WHERE crop_id = 'c00012345' AND source = 'bass'"),
    ("crops whose bass goes below pitch 35",
     "SELECT DISTINCT crop_id FROM notes WHERE source = 'bass' AND pitch < 35",
     "SELECT crop_id FROM lists WHERE source = 'bass' AND list_bool_or(list_transform(notes, lambda x: x.pitch < 35))"),
    ("notes on a downbeat (4/4), per crop",
     "SELECT crop_id, count(*) FROM notes WHERE start_beat % 4 = 0 GROUP BY crop_id",
     "SELECT crop_id, sum(len(list_filter(notes, lambda x: x.start_beat % 4 = 0))) FROM lists GROUP BY crop_id"),
    ("pitch histogram of everything",
     "SELECT pitch, count(*) FROM notes GROUP BY pitch",
     "SELECT n.pitch, count(*) FROM (SELECT unnest(notes) AS n FROM lists) GROUP BY n.pitch"),
    ("crops sounding C, E and G",
     "SELECT crop_id FROM notes GROUP BY crop_id HAVING count(DISTINCT pitch % 12) FILTER (WHERE pitch % 12 IN (0, 4, 7)) = 3",
     "SELECT crop_id FROM lists GROUP BY crop_id "
     "HAVING list_has_all(flatten(list(list_transform(notes, lambda x: x.pitch % 12))), [0, 4, 7])"),
]


def best_ms(con: duckdb.DuckDBPyConnection, query: str, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        con.execute(query).fetchall()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=20000)
    parser.add_argument("--notes", type=int, default=60, help="notes per crop and source (3 sources)")
    args = parser.parse_args()
    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE notes AS
        SELECT 'c' || lpad(i::VARCHAR, 8, '0') AS crop_id, s AS source, (j * 0.25)::DOUBLE AS start_s,
               (j * 0.25 + 0.2)::DOUBLE AS end_s, (30 + hash(i, s, j) % 60)::UTINYINT AS pitch,
               (1 + hash(j, i) % 127)::UTINYINT AS velocity, (j * 0.5)::DOUBLE AS start_beat
        FROM range({args.crops}) AS t(i), (VALUES ('bass'), ('other'), ('vocals')) AS v(s), range({args.notes}) AS u(j)
        ORDER BY crop_id, source, start_s""")
    con.execute("""
        CREATE TABLE lists AS
        SELECT crop_id, source, list({'start_s': start_s, 'end_s': end_s, 'pitch': pitch, 'velocity': velocity,
                                      'start_beat': start_beat} ORDER BY start_s) AS notes
        FROM notes GROUP BY ALL ORDER BY crop_id, source""")
    total = con.execute("SELECT count(*) FROM notes").fetchone()[0]
    print(f"{total:,} notes, {args.crops:,} crops x 3 sources; best of 5, ms")
    print(f"  {'query':40s} {'table':>8s} {'list':>8s}")
    for name, table, lists in QUERIES:
        print(f"  {name:40s} {best_ms(con, table):8.1f} {best_ms(con, lists):8.1f}")


if __name__ == "__main__":
    main()
