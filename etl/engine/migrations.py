"""Numbered, append-only schema migrations (NNN_name.sql), recorded with checksums.

The store's own tables' migrations are in schema/; a stage's are in its folder's migrations/
(etl/app/schema.py collects both). Version numbers are one sequence across all of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from etl.engine.errors import DatabaseError
from etl.engine.resources import schema_dir

_FILE_NAME = re.compile(r"^(\d{3,})_([A-Za-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    checksum   VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        # Line endings normalised so a checkout on Windows does not look "edited".
        return hashlib.sha256(self.sql.replace("\r\n", "\n").encode()).hexdigest()


@dataclass(frozen=True)
class Schema:
    """What a store is made of: its migrations (in version order) and the statements that create its
    views and macros (run in order after every upgrade). The application layer assembles it from
    schema/, sql/views/ and the stages' folders (etl/app/schema.py)."""

    migrations: tuple[Migration, ...]
    views: tuple[str, ...] = ()


def known_migrations(directories: Sequence[Path] | Path | None = None) -> list[Migration]:
    """The migrations in these folders (default: schema/ alone), in version order."""
    if directories is None:
        directories = [schema_dir()]
    elif isinstance(directories, Path):
        directories = [directories]
    found: list[Migration] = []
    for directory in directories:
        for path in sorted(directory.glob("*.sql")):
            match = _FILE_NAME.match(path.name)
            if not match:
                raise DatabaseError(f"schema file {path} is not named NNN_name.sql")
            found.append(Migration(int(match.group(1)), match.group(2), path))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        twice = sorted({str(m.path) for m in found if versions.count(m.version) > 1})
        raise DatabaseError(f"two schema files share a version number: {', '.join(twice)}")
    return found


def _applied(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[str, str]]:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()[0]
    if not exists:
        return {}
    rows = con.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {version: (name, checksum) for version, name, checksum in rows}


def check(con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration]) -> list[Migration]:
    """Refuse a database that is newer than the code or whose applied migrations were edited.

    Returns the migrations still to apply.
    """
    known = {m.version: m for m in migrations}
    applied = _applied(con)
    newest_known = max(known, default=0)
    for version, (name, checksum) in sorted(applied.items()):
        if version not in known:
            raise DatabaseError(
                f"the database records migration {version:03d}_{name}, which this etl does not have (this etl "
                f"knows up to {newest_known}): it was made by a newer etl (upgrade: pip install -U music-etl) "
                f"or by a stage this installation lacks (see docs/adding-a-stage.md)")
        if known[version].checksum != checksum:
            raise DatabaseError(
                f"{known[version].path} was changed after it was applied to this database "
                "(checksum differs); migrations are append-only: restore the file and add a new one"
            )
    return [m for m in migrations if m.version not in applied]


def apply_pending(con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply every pending migration in one transaction; returns what was applied."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_CREATE_TABLE)
        pending = check(con, migrations)
        for migration in pending:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
                [migration.version, migration.name, migration.checksum],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return pending
