"""The store's schema, assembled from its parts: the store's own migrations (schema/) and views
(sql/views/), and each stage's from its folder, in registry order:

- `migrations/NNN_name.sql`: the stage's tables (one version sequence across the whole store);
- `views.sql`, whose named sections say where each part goes:
  - `tracks_v.select` / `tracks_v.join`, `crops_v.select` / `crops_v.join`: the columns (and the
    joins they need) the stage adds to `tracks_all_v` / `crops_all_v` (`t` is the track, `c` the crop);
  - `macros`: macros the columns use, created before the views;
  - `views`: views of the stage's own, created after tracks_v and crops_v;
  - `export.long_lists`: per-beat / per-frame list columns that exports' flat tables leave out.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from etl.app import registry
from etl.engine.migrations import Schema, known_migrations
from etl.engine.resources import named_statements, schema_dir, sql_dir

SECTIONS = ("macros", "tracks_v.select", "tracks_v.join", "crops_v.select", "crops_v.join", "views",
            "export.long_lists")
# The views each stage adds columns to: the placeholders in sql/views/*.sql.
# A select part may end in a `--` comment: the comma goes on the next line.
_SPLICES = {"tracks_v.select": "\n       , ", "crops_v.select": "\n       , ", "tracks_v.join": "\n", "crops_v.join": "\n"}


@cache
def fragments() -> dict[str, dict[str, str]]:
    """{stage name: {section: SQL}} from each stage's views.sql, in registry order."""
    found: dict[str, dict[str, str]] = {}
    for name, folder in registry.folders():
        path = folder / "views.sql"
        if not path.is_file():
            continue
        sections = named_statements(str(path))
        unknown = sorted(set(sections) - set(SECTIONS))
        if unknown:
            raise ValueError(f"{path}: unknown section {', '.join(unknown)}; sections are {', '.join(SECTIONS)}")
        found[name] = sections
    return found


def section(name: str) -> list[str]:
    """Every stage's text of one section, in registry order."""
    return [parts[name] for parts in fragments().values() if parts.get(name, "").strip()]


def _fill(template: str) -> str:
    for placeholder, separator in _SPLICES.items():
        parts = section(placeholder)
        text = separator.join(parts)
        if placeholder.endswith(".select") and parts:
            text = separator + text  # after the view's own last column
        template = template.replace("{" + placeholder + "}", text)
    return template


def long_lists() -> list[str]:
    """Columns of crops_v that exports' flat tables leave out (the stages' `export.long_lists`; read
    without importing the stages: their order does not matter here)."""
    texts = [named_statements(str(path)).get("export.long_lists", "")
             for path in (folder / "views.sql" for folder in registry.stage_folders()) if path.is_file()]
    lines = [line.split("--")[0] for text in texts for line in text.splitlines()]
    return [column.strip() for line in lines for column in line.split(",") if column.strip()]


def migration_folders() -> list[Path]:
    return [schema_dir(), *(folder / "migrations" for folder in registry.stage_folders()
                            if (folder / "migrations").is_dir())]


@cache
def migrations() -> Schema:
    """The migrations alone: what a reader checks (found without importing any stage)."""
    return Schema(migrations=tuple(known_migrations(migration_folders())))


@cache
def schema() -> Schema:
    """The migrations and the view statements: the store's own macros (sql/views/00_*), the stages'
    macros, the store's views with the stages' columns filled in, then the stages' own views."""
    core = sorted((sql_dir() / "views").glob("*.sql"))
    first = [p.read_text(encoding="utf-8") for p in core if p.name.startswith("00_")]
    rest = [_fill(p.read_text(encoding="utf-8")) for p in core if not p.name.startswith("00_")]
    views = (*first, *section("macros"), *rest, *section("views"))
    return Schema(migrations=migrations().migrations, views=views)
