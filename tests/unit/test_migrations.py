from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from etl.engine import migrations
from etl.engine.errors import DatabaseError
from etl.app.schema import migration_folders, schema
from etl.app.store import open_reader, open_writer
from etl.engine.resources import schema_dir
from tests import snapshots



def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) WHERE t.table_type = 'BASE TABLE'"
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def test_the_store_is_what_its_snapshot_says() -> None:
    """The stage order, every table's columns and the views' columns (in order), against the checked-in
    tests/snapshots/store.json: a change to the store's shape shows as a diff of that file."""
    built, expected = snapshots.current(), snapshots.stored()
    for part in ("stages", "tables", "views"):
        assert built[part] == expected[part], (
            f"the store's {part} differ from tests/snapshots/store.json: if the change is meant, "
            f"run `{snapshots.UPDATE}` and commit the diff")


def test_all_migrations_build_the_schema(db: Path) -> None:
    writer = open_writer(db, create=True)
    try:
        assert _columns(writer.con) == {name: set(columns) for name, columns in snapshots.stored()["tables"].items()}
        applied = writer.con.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        assert [(m.version, m.name) for m in schema().migrations] == applied
        # the store's own tables and the stages' (from their folders' migrations/)
        assert {"tracks", "crop_features", "crop_captions"} <= set(_columns(writer.con))
    finally:
        writer.close()


def test_applying_twice_is_a_no_op(db: Path) -> None:
    open_writer(db, create=True).close()
    writer = open_writer(db, create=True)
    assert writer.applied_migrations == []
    writer.close()


def test_migrations_are_numbered_and_unique() -> None:
    found = list(schema().migrations)
    assert found and [m.version for m in found] == sorted({m.version for m in found})


def test_database_newer_than_the_code_is_refused(db: Path) -> None:
    open_writer(db, create=True).close()
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'from_the_future', 'x')")
    con.close()
    with pytest.raises(DatabaseError, match="newer|only knows up to"):
        open_writer(db, create=True)
    with pytest.raises(DatabaseError, match="newer etl"):
        with open_reader(db):
            pass


def _copied_migrations(tmp_path: Path) -> list[Path]:
    """Copies of the store's and the stages' migration folders."""
    folders = []
    for n, source in enumerate(migration_folders()):
        folders.append(tmp_path / f"migrations{n}")
        shutil.copytree(source, folders[-1])
    return folders


def test_edited_migration_is_refused(db: Path, tmp_path: Path) -> None:
    folders = _copied_migrations(tmp_path)
    con = duckdb.connect(str(db))
    migrations.apply_pending(con, migrations.known_migrations(folders))
    first = sorted(folders[0].glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(DatabaseError, match="changed after it was applied"):
        migrations.check(con, migrations.known_migrations(folders))
    con.close()


def test_two_migrations_with_one_version_are_refused(tmp_path: Path) -> None:
    folders = _copied_migrations(tmp_path)
    (folders[-1] / "001_again.sql").write_text("SELECT 1;")
    with pytest.raises(DatabaseError, match="share a version number"):
        migrations.known_migrations(folders)


def test_a_failing_migration_leaves_nothing_applied(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "schema"
    shutil.copytree(schema_dir(), folder)
    (folder / "900_broken.sql").write_text("CREATE TABLE ok_table (x INTEGER);\nTHIS IS NOT SQL;")
    con = duckdb.connect(str(db))
    with pytest.raises(duckdb.Error):
        migrations.apply_pending(con, migrations.known_migrations(folder))
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "ok_table" not in tables and "tracks" not in tables
    con.close()


def test_missing_and_corrupt_databases_get_clear_messages(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no database at"):
        with open_reader(tmp_path / "absent.duckdb"):
            pass
    corrupt = tmp_path / "corrupt.duckdb"
    corrupt.write_bytes(b"this is not a database" * 1000)
    with pytest.raises(DatabaseError, match="corrupt.duckdb"):
        open_writer(corrupt, create=True)
    with pytest.raises(DatabaseError, match="corrupt.duckdb"):
        with open_reader(corrupt):
            pass
