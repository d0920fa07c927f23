"""What a command that writes files (export, report, query --out) may never replace, hold, or write
into: the database, its data folder, and the source folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etl.engine.errors import EtlError


def protected_paths(con: Any, db_path: Path) -> list[tuple[Path, str]]:
    """(path, what it is) for the database, the data folder and every source folder."""
    [(data,)] = con.execute("SELECT data_folder()").fetchall()
    folders = [(db_path.resolve(), "the database"), (Path(data).resolve(), "the data folder")]
    sources = con.execute("SELECT path FROM sources").fetchall()
    return folders + [(Path(p).resolve(), "a source folder") for (p,) in sources]


def check_out(out: Path, protected: list[tuple[Path, str]], error: type[EtlError]) -> None:
    """Refuse an --out that is, holds, or (but for the database's own folder) lies inside a protected path."""
    for path, what in protected:
        if out == path or out in path.parents:
            raise error(f"--out {out} is or holds {what} ({path}): choose a place of its own")
        if what != "the database" and path in out.parents:
            raise error(f"--out {out} is inside {what} ({path}): choose a place outside it")
