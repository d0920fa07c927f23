"""`etl models`: model-backed stages, their configured model, and whether it is on this machine."""

from __future__ import annotations

from typing import Any

from rich.console import Console


def show(config: Any, as_json: bool, out: Console, print_json: Any) -> None:
    from etl.engine.models import list_models

    rows = list_models(config)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = "found" if row["found"] else "NOT FOUND"
        out.print(f"{row['stage']}: {row['model']} ({row['library']}) — {state}", markup=False, highlight=False)
        for entry in row["files"]:
            checksum = f", sha256 {entry['sha256']}" if "sha256" in entry else ""
            out.print(f"    {entry['path']} ({entry['size_bytes']:,} bytes{checksum})", markup=False, highlight=False)
        for label in ("problem", "licence", "install"):
            if row[label]:
                out.print(f"    {label}: {row[label]}", markup=False, highlight=False)
