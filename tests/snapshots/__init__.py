"""Checked-in snapshots of what the registry and the migrations make, so that a change to the
store's shape is a reviewed diff rather than a list typed into a test.

    python -m tests.snapshots          # rewrite tests/snapshots/store.json from the code as it is

tests/unit/test_migrations.py compares a freshly built store with it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("store.json")
UPDATE = "python -m tests.snapshots"


def current() -> dict[str, Any]:
    """The stage order, every table's columns and the main views' columns (in order) of a fresh store."""
    from etl.app import registry
    from etl.app.store import open_writer

    with tempfile.TemporaryDirectory() as folder:
        writer = open_writer(Path(folder) / "snapshot.duckdb", create=True)
        try:
            rows = writer.con.execute(
                "SELECT c.table_name, c.column_name, t.table_type FROM information_schema.columns AS c "
                "JOIN information_schema.tables AS t USING (table_schema, table_name) "
                "ORDER BY c.table_name, c.ordinal_position").fetchall()
        finally:
            writer.close()
    tables: dict[str, list[str]] = {}
    views: dict[str, list[str]] = {}
    for table, column, kind in rows:
        (tables if kind == "BASE TABLE" else views).setdefault(table, []).append(column)
    return {"stages": registry.stage_names(),
            "tables": {name: sorted(columns) for name, columns in tables.items()},
            "views": views}


def stored() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def main() -> int:
    SNAPSHOT.write_text(json.dumps(current(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
