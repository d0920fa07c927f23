"""Where the SQL lives, whether installed from a wheel or run from a checkout.

The wheel carries schema/ and sql/ as etl/_schema and etl/_sql; a checkout (or an editable
install) has them beside the package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # etl/
_STAGES_DIR = _PACKAGE_DIR / "stages"


def _resource_dir(installed_name: str, checkout_name: str) -> Path:
    installed = _PACKAGE_DIR / installed_name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent / checkout_name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"cannot find {checkout_name}/ next to {_PACKAGE_DIR}")


def schema_dir() -> Path:
    return _resource_dir("_schema", "schema")


def sql_dir() -> Path:
    return _resource_dir("_sql", "sql")


_NAME_LINE = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)


def stage_dir(name: str) -> Path:
    """Where an in-tree stage's folder is (etl/stages/<name>), whether it exists or not."""
    return _STAGES_DIR / name


def _sql_path(relative_file: str) -> Path:
    """"stages/<name>/<file>.sql" is a stage's own SQL, in its folder etl/stages/<name>/; an
    absolute path (a stage kept outside etl/stages) is itself; any other name is under sql/."""
    if Path(relative_file).is_absolute():
        return Path(relative_file)
    return (_STAGES_DIR.parent if relative_file.startswith("stages/") else sql_dir()) / relative_file


def has_sql(relative_file: str) -> bool:
    return _sql_path(relative_file).is_file()


@cache
def named_statements(relative_file: str) -> dict[str, str]:
    """Parse a .sql file holding `-- name: foo` sections into {name: statement}."""
    text = _sql_path(relative_file).read_text(encoding="utf-8")
    parts = _NAME_LINE.split(text)
    if len(parts) == 1:  # a file without name markers is one statement named after the file
        return {Path(relative_file).stem: text.strip()}
    return {name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2])}


def sql(relative_file: str, name: str | None = None) -> str:
    """One named statement: sql("engine/state.sql", "claim_new"), or a whole one-statement file."""
    statements = named_statements(relative_file)
    if name is None:
        if len(statements) != 1:
            raise KeyError(f"{relative_file} holds several statements; name one of {sorted(statements)}")
        return next(iter(statements.values()))
    try:
        return statements[name]
    except KeyError:
        raise KeyError(f"no statement named {name!r} in sql/{relative_file}") from None


PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def used_binds(statement: str, binds: dict[str, Any] | None) -> dict[str, Any]:
    """The binds a statement's `$name` parameters use (DuckDB rejects extra ones)."""
    used = set(PARAMETER.findall(statement))
    return {k: v for k, v in (binds or {}).items() if k in used}


def execute(con: Any, relative_file: str, name: str | None = None, binds: dict[str, Any] | None = None) -> Any:
    """Run a named statement, binding only the parameters it uses."""
    statement = sql(relative_file, name)
    return con.execute(statement, used_binds(statement, binds))


@contextmanager
def registered(con: Any, **tables: Any) -> Iterator[None]:
    """Expose Arrow tables to SQL under the given names for the duration of a block."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


def statement_names(relative_file: str) -> list[str]:
    """The named statements of a .sql file, in file order."""
    return list(named_statements(relative_file))
