"""An export's record, `export.json`: what was asked, what came out, and every file the export wrote.

The file list is what makes `--force` safe: a later export may replace a folder only when every
file and folder in it is one the record lists (a user's notes or checkpoints put inside an export
are named and left alone). `etl export --relocate` reads the same record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from etl.engine.errors import ExportError
from etl.read.export_formats import PATHS

RECORD = "export.json"
NAMES_SHOWN = 5  # foreign files named in the refusal; the rest counted


def record_bytes(record: dict[str, Any]) -> bytes:
    """export.json's bytes. No timestamp: the same export twice (same command, same --out) gives
    byte-identical folders. `out` is the absolute folder written, which `etl export --relocate` reads."""
    return (json.dumps(record, indent=1, default=str) + "\n").encode("utf-8")


def read_record(folder: Path) -> dict[str, Any]:
    """The export's record in `folder`; an error when there is none or it is not an export's."""
    record_file = folder / RECORD
    if not record_file.is_file():
        raise ExportError(f"{folder} holds no {RECORD}: not an export folder")
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ExportError(f"{record_file} is not an export's record ({error})") from None
    if not isinstance(record, dict) or record.get("format") not in PATHS:
        raise ExportError(f"{record_file} is not an export's record (no known format)")
    return record


def written_files(folder: Path) -> list[str]:
    """Every file under `folder`, relative and sorted (the record itself is not in it yet)."""
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


def foreign_entries(folder: Path, listed: set[str]) -> list[str]:
    """What under `folder` the record does not list: files, links, and folders holding no listed file
    (named once, not their contents); a folder's name ends in '/'."""
    holders = {str(parent) for name in listed for parent in Path(name).parents}
    foreign = []
    for root, folders, names in os.walk(folder):
        relative_root = os.path.relpath(root, folder)
        here = "" if relative_root == "." else relative_root + "/"
        for name in sorted(folders):
            if os.path.islink(os.path.join(root, name)) or f"{here}{name}" not in holders:
                foreign.append(f"{here}{name}/")
        folders[:] = sorted(f for f in folders if f"{here}{f}/" not in foreign)
        foreign += [f"{here}{n}" for n in sorted(names) if f"{here}{n}" not in listed and f"{here}{n}" != RECORD]
    return foreign


def check_replaceable(out: Path) -> None:
    """`--force` may replace `out` only when it is empty or holds nothing but a previous export's files."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        record = read_record(out)
    except ExportError as error:
        raise ExportError(f"--force replaces only a previous export: {error}; choose an empty or new --out") \
            from None
    listed = record.get("files")
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        raise ExportError(f"--force: {out / RECORD} lists no files (written by an older etl), so the export's "
                          "files cannot be told from others: remove the folder yourself or choose a new --out")
    foreign = foreign_entries(out, set(listed))
    if foreign:
        shown = ", ".join(foreign[:NAMES_SHOWN]) + (f" and {len(foreign) - NAMES_SHOWN} more"
                                                    if len(foreign) > NAMES_SHOWN else "")
        raise ExportError(f"--force: {out} holds what the previous export did not write ({shown}): move it "
                          "away or choose another --out; nothing was replaced")
