"""Print one example query over a store (the demo's last step): tracks with their tags."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from etl.store import open_reader

QUERY = """
SELECT coalesce(artist, '?') AS artist, coalesce(title, regexp_extract(path, '[^/]+$')) AS title,
       genre, container, codec, round(duration_s, 1) AS duration_s, sample_rate, n_paths
FROM tracks_v ORDER BY duration_s DESC
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
