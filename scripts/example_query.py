"""Print one example query over a store (the demo's last step): tracks, tempo, meter, crops."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from etl.store import open_reader

QUERY = """
SELECT coalesce(t.title, regexp_extract(t.path, '[^/]+/[^/]+$')) AS track, t.codec,
       round(t.duration_s, 1) AS duration_s, round(b.bpm, 1) AS bpm, b.meter, b.tempo_steady,
       count(c.crop_id) AS crops, round(sum(c.duration_s), 1) AS crop_s
FROM tracks_v AS t
LEFT JOIN beat_grids AS b USING (track_id)
LEFT JOIN crops AS c USING (track_id)
GROUP BY ALL ORDER BY bpm DESC NULLS LAST
"""


def main() -> None:
    db = Path(sys.argv[1] if len(sys.argv) > 1 else "etl.duckdb")
    with open_reader(db) as con:
        result = con.execute(QUERY)
        names = [d[0] for d in result.description]
        rows = result.fetchall()
    table = Table(title=f"{db}: {' '.join(QUERY.split())}", title_justify="left")
    for name in names:
        table.add_column(name)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)


if __name__ == "__main__":
    main()
