"""`etl query`: run one read-only statement (typed by the user or named in sql/queries/) and
write its result as a table, CSV, JSON, JSON lines or Parquet.

File formats are written by DuckDB's own COPY into a temporary name beside the target (the only
path the sandbox may write), then renamed, so a half-written result never has the final name.
Only duckdb and sqlglot are imported here: a query must not pay for audio or model libraries.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.engine.errors import Interrupted, QueryError
from etl.engine.folders import writable_folder
from etl.engine.resources import PARAMETER, sql_dir
from etl.read.protected import check_out, protected_paths
from etl.read.readonly import StatementStop, gated_sandbox, open_sandbox, running

FORMATS = ("table", "csv", "json", "jsonl", "parquet")
_COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "json": "FORMAT json, ARRAY true",
    "jsonl": "FORMAT json",
    "parquet": "FORMAT parquet",
}


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str   # the file's leading comment lines
    params: list[str]  # `$name` parameters, in order of first use
    sql: str


def named_queries() -> dict[str, NamedQuery]:
    """Every sql/queries/<name>.sql, whose leading `--` lines describe it."""
    found = {}
    for path in sorted((sql_dir() / "queries").glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        comments = []
        for line in text.splitlines():
            if not line.startswith("--"):
                break
            comments.append(line[2:].strip())
        params = list(dict.fromkeys(PARAMETER.findall(text)))
        found[path.stem] = NamedQuery(path.stem, " ".join(comments), params, text)
    return found


def named_query(name: str) -> NamedQuery:
    queries = named_queries()
    if name not in queries:
        raise QueryError(f"no query named {name!r}; `etl query --list` shows them: {', '.join(queries)}")
    return queries[name]


def copy_statement(sql_text: str, target: Path, fmt: str) -> str:
    """COPY (query) TO target. The newline keeps a trailing `-- comment` from eating the bracket."""
    quoted = str(target).replace("'", "''")
    return f"COPY (\n{sql_text.strip().rstrip(';')}\n) TO '{quoted}' ({_COPY_OPTIONS[fmt]})"


# DuckDB's JSON writer spells non-finite doubles NaN / Infinity / -Infinity, which standard JSON
# (and most readers: JavaScript, jq, Go, Rust's serde) refuses. Outside strings they become null.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN')


def _null_for_non_finite(match: re.Match[str]) -> str:
    token = match.group(0)
    return token if token.startswith('"') else "null"


def standardise_json(source: Path, target: Path) -> None:
    """Copy DuckDB's JSON / JSON-lines output with NaN and ±Infinity written as null. DuckDB writes
    one record per line (newlines inside strings are escaped), so this goes line by line."""
    with open(source, encoding="utf-8") as lines, open(target, "w", encoding="utf-8", newline="") as out:
        for line in lines:
            if "NaN" in line or "Infinity" in line:
                line = _JSON_TOKEN.sub(_null_for_non_finite, line)
            out.write(line)


def _copy_standard(db_path: Path, sql_text: str, params: dict[str, Any], fmt: str, target: Path,
                   stop: StatementStop | None = None) -> None:
    """`_copy`, then for JSON formats the same file with null for NaN / ±Infinity."""
    if fmt not in ("json", "jsonl"):
        _copy(db_path, sql_text, params, fmt, target, stop)
        return
    raw = target.with_name(target.name + ".raw")
    try:
        _copy(db_path, sql_text, params, fmt, raw, stop)
        standardise_json(raw, target)
    finally:
        if raw.exists():
            raw.unlink()


def temporary_beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


@dataclass
class TableResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool  # more rows than `max_rows` were available


def run_to_table(db_path: Path, sql_text: str, params: dict[str, Any], max_rows: int,
                 stop: StatementStop | None = None) -> TableResult:
    """`stop`: the CLI's signal handler, which interrupts the statement (Ctrl-C, SIGTERM)."""
    with gated_sandbox(db_path, sql_text, params) as (con, binds), running(stop, con):
        try:
            cursor = con.execute(sql_text, binds)
            rows = cursor.fetchmany(max_rows + 1)
        except Exception as error:  # duckdb's errors: one line is what the user needs
            raise QueryError(str(error).splitlines()[0]) from None
        columns = [d[0] for d in cursor.description or []]
    return TableResult(columns, rows[:max_rows], len(rows) > max_rows)


def run_to_file(db_path: Path, sql_text: str, params: dict[str, Any], fmt: str, out: Path | None,
                stop: StatementStop | None = None, force: bool = False) -> None:
    """Write the result to `out` (atomically) or, for text formats, to stdout. `out` may not be the
    database or lie in its data folder or a source folder; an existing file is replaced with `force`."""
    if out is None:
        if fmt == "parquet":
            raise QueryError("--format parquet needs --out FILE")
        # DuckDB writes files, not streams (writing /dev/stdout overwrites a redirected file's
        # start): COPY into a private temporary folder, then stream that to stdout.
        with tempfile.TemporaryDirectory(prefix="etl-query-") as folder:
            target = Path(folder) / f"result.{fmt}"
            _copy_standard(db_path, sql_text, params, fmt, target, stop)
            with open(target, "rb") as result:
                sys.stdout.flush()
                shutil.copyfileobj(result, sys.stdout.buffer)
            sys.stdout.flush()
        return
    out = out.resolve()
    with open_sandbox(db_path) as con:
        check_out(out, protected_paths(con, db_path), QueryError)
    # the folders this makes (deepest first), removed again if the query is refused
    made = [p for p in (out.parent, *out.parent.parents) if not os.path.exists(p)]
    writable_folder(out.parent, QueryError, " (choose another --out)")  # the temporary file goes there
    if out.is_dir():
        raise QueryError(f"--out {out} is a folder; give a file name")
    if out.exists() and not force:
        raise QueryError(f"--out {out} exists: add --force to replace it")
    target = temporary_beside(out)
    try:
        _copy_standard(db_path, sql_text, params, fmt, target, stop)
        os.replace(target, out)
    except BaseException:
        target.unlink(missing_ok=True)
        for folder in made:  # a refused query (bad SQL, Ctrl-C) leaves no folder it made
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        if target.exists():
            target.unlink()


def _copy(db_path: Path, sql_text: str, params: dict[str, Any], fmt: str, target: Path,
          stop: StatementStop | None = None) -> None:
    try:
        with gated_sandbox(db_path, sql_text, params, writable_files=[target]) as (con, binds), running(stop, con):
            con.execute(copy_statement(sql_text, target, fmt), binds)
    except (QueryError, Interrupted):
        raise
    except Exception as error:  # duckdb's errors: one line is what the user needs
        raise QueryError(str(error).splitlines()[0]) from None


def describe(queries: Iterable[NamedQuery]) -> list[dict[str, Any]]:
    return [{"name": q.name, "params": q.params, "description": q.description} for q in queries]
