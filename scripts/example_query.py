"""Print one example query over a store (the demo's last step): per track, its crops' features."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from etl.store import open_reader

QUERY = """
SELECT coalesce(title, regexp_extract(track_path, '[^/]+/[^/]+$')) AS track,
       round(any_value(track_bpm), 1) AS bpm, any_value(meter) AS meter, count(*) AS crops,
       mode(key_name) AS key, round(avg(loudness_integrated_lufs), 1) AS lufs,
       round(avg(spectral_centroid_hz)) AS centroid_hz, round(avg(danceability), 2) AS danceability
FROM crops_v
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
    Console(width=max(Console().width, 120)).print(table)


if __name__ == "__main__":
    main()
