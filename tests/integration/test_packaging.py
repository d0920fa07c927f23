"""A non-editable install carries schema/ and sql/ inside the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers import REPO


def test_wheel_ships_migrations_and_sql(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for schema in (REPO / "schema").glob("*.sql"):
        assert f"etl/_schema/{schema.name}" in names
    for statement in (REPO / "sql").rglob("*.sql"):
        assert f"etl/_sql/{statement.relative_to(REPO / 'sql').as_posix()}" in names
    assert "cli/main.py" in names and "etl/engine/runner.py" in names and "etl/stages/crops/items.sql" in names and "etl/stages/crops/write.sql" in names
    assert "etl/stages/stems/models.toml" in names  # the table behind `etl models fetch`, per stage
    assert "etl/stages/chords/views.sql" in names and "etl/stages/midi/report.toml" in names  # the stages' parts
    assert "etl/read/report/page.html.j2" in names  # the report page's template
    assert "etl/stages/captions/templates/full.txt" in names and "etl/stages/captions/templates/facts.txt" in names


def test_installed_layout_is_preferred(tmp_path: Path, monkeypatch) -> None:
    import etl.engine.resources as resources

    fake_package = tmp_path / "etl"
    (fake_package / "_schema").mkdir(parents=True)
    monkeypatch.setattr(resources, "_PACKAGE_DIR", fake_package)
    assert resources.schema_dir() == fake_package / "_schema"
