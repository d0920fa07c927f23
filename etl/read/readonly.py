"""User SQL, read-only by construction: a gate on what a statement is, and a sandboxed connection.

Two independent walls. The gate parses the text with sqlglot and lets through exactly one
statement that is a query (SELECT / WITH / UNION / VALUES / DESCRIBE / SHOW / SUMMARIZE / PIVOT)
with nothing that writes or configures anywhere inside it. The connection is opened read-only,
with external access off (so `read_csv('/etc/passwd')`, ATTACH, COPY TO and INSTALL fail) except
for the output files we name, and its configuration locked so SQL cannot switch that back on.
Parameters are bound by name, never spliced into the text.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from etl.engine.errors import Interrupted, QueryError
from etl.engine.signals import handling_stop_signals
from etl.app.store import open_reader

_READ_STATEMENTS = ("Query", "Describe", "Show", "Summarize", "Pivot", "Values")
_WRITE_NODES = ("DML", "DDL", "Command", "Attach", "Detach", "Pragma", "Set", "Install", "Use", "Transaction",
                "Drop", "Alter", "Export", "Commit", "Rollback")
# Table functions that run a SQL string the gate never sees: `query('DELETE ...')`, `query_table(...)`.
_SQL_STRING_FUNCTIONS = {"query", "query_table"}


def warm_up() -> None:
    """Import sqlglot and its DuckDB dialect (~70 ms): run in a thread while a connection opens."""
    import sqlglot

    sqlglot.parse("SELECT 1", read="duckdb")


def _statement_kind(statement: Any) -> str:
    from sqlglot import exp

    if isinstance(statement, exp.Command):  # sqlglot's catch-all: `this` is the leading keyword
        return str(statement.this).upper()
    return statement.key.upper()


def check_read_only(sql_text: str) -> list[str]:
    """Refuse anything but one read-only query; return the names of its `$name` parameters."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to Command" warnings
    try:
        statements = [s for s in sqlglot.parse(sql_text, read="duckdb") if s is not None]
    except SqlglotError as error:
        raise QueryError(f"cannot parse the query: {str(error).splitlines()[0]}") from None
    if not statements:
        raise QueryError("the query is empty")
    if len(statements) > 1:
        kinds = ", ".join(_statement_kind(s) for s in statements)
        raise QueryError(f"one statement at a time, got {len(statements)} ({kinds})")
    statement = statements[0]
    read_types = tuple(getattr(exp, name) for name in _READ_STATEMENTS)
    write_types = tuple(getattr(exp, name) for name in _WRITE_NODES)
    if not isinstance(statement, read_types) or isinstance(statement, write_types):
        raise QueryError(f"only read-only queries are allowed (SELECT, WITH, DESCRIBE, ...), "
                         f"not {_statement_kind(statement)}")
    for node in statement.walk():
        if isinstance(node, write_types):
            raise QueryError(f"only read-only queries are allowed: found {_statement_kind(node)} inside the query")
        function = (node.name if isinstance(node, exp.Anonymous) else node.key) if isinstance(node, exp.Func) else ""
        if function.lower() in _SQL_STRING_FUNCTIONS:
            raise QueryError(f"{function}() runs SQL from a string, which the read-only gate cannot check: "
                             "write the query itself")
    names = [str(p.args.get("this") or "") for p in statement.find_all(exp.Placeholder)]
    if any(not name or name.isdigit() for name in names):
        raise QueryError("use named parameters ($name with --param name=value), not `?` or `$1`")
    return sorted(set(names))


def check_condition(condition: str, view: str) -> list[str]:
    """Gate a WHERE condition that is spliced into `SELECT * FROM <view> WHERE (<condition>)`.

    The condition must parse alone as one expression (so it cannot close the bracket and go on with
    `) UNION ALL SELECT ... WHERE (`), and the statement it makes must be that one SELECT whose WHERE
    is exactly the parsed condition, through the same gate as `etl query`. Returns its `$name`s.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    try:
        parsed = [e for e in sqlglot.parse(condition, read="duckdb") if e is not None]
    except SqlglotError as error:
        raise QueryError(f"cannot parse the condition: {str(error).splitlines()[0]}") from None
    if len(parsed) != 1 or isinstance(parsed[0], (exp.Query, exp.Command, exp.DDL, exp.DML)) \
            or not isinstance(parsed[0], exp.Expression):
        raise QueryError("expected one condition over the rows (e.g. \"bpm > 120 AND genre ILIKE '%house%'\")")
    statement_text = f"SELECT * FROM {view}\nWHERE ({condition}\n)"
    names = check_read_only(statement_text)
    statement = sqlglot.parse_one(statement_text, read="duckdb")
    where = statement.args.get("where") if isinstance(statement, exp.Select) else None
    body = where.this.this if where is not None and isinstance(where.this, exp.Paren) else None
    if body is None or body != parsed[0] or statement.args.get("from_") is None:
        raise QueryError("the condition does not stay a condition inside the query: write one expression")
    return names


def parse_params(assignments: Iterable[str]) -> dict[str, Any]:
    """`k=v` pairs; a value that reads as a JSON scalar (120, 1.5, true, null, "120") is bound as one."""
    params: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or not name.strip():
            raise QueryError(f"--param expects NAME=VALUE, got {assignment!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        params[name.strip()] = value if value is None or isinstance(value, (str, int, float, bool)) else text
    return params


def bind(names: list[str], params: dict[str, Any]) -> dict[str, Any]:
    """The binds a query needs: every parameter it names given, and nothing it does not use."""
    missing = [n for n in names if n not in params]
    if missing:
        raise QueryError("the query needs " + " ".join(f"--param {n}=VALUE" for n in missing))
    unused = sorted(set(params) - set(names))
    if unused:
        raise QueryError(f"the query does not use parameter(s): {', '.join(unused)}")
    return {n: params[n] for n in names}


def _lock_down(con: duckdb.DuckDBPyConnection, writable_files: list[Path], writable_dirs: list[Path]) -> None:
    # Allowed paths must be set before external access goes off; locking stops SQL undoing either.
    def quoted(paths: list[Path], suffix: str = "") -> str:
        return "[" + ", ".join("'" + (str(p) + suffix).replace("'", "''") + "'" for p in paths) + "]"

    if writable_files:
        con.execute(f"SET allowed_paths = {quoted(writable_files)}")
    if writable_dirs:
        con.execute(f"SET allowed_directories = {quoted(writable_dirs, '/')}")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


@contextlib.contextmanager
def gated_sandbox(db_path: Path, sql_text: str, params: dict[str, Any],
                  writable_files: Iterable[Path] = ()) -> Iterator[tuple[duckdb.DuckDBPyConnection, dict[str, Any]]]:
    """The sandboxed connection and the statement's binds; the statement has passed the gate
    before the caller runs anything. sqlglot loads in a thread meanwhile (opening the connection
    releases the GIL): ~30 ms of the ~0.45 s a whole `etl query` process takes."""
    loader = threading.Thread(target=warm_up, daemon=True)
    loader.start()
    with open_sandbox(db_path, writable_files) as con:
        loader.join()
        yield con, bind(check_read_only(sql_text), params)


@contextlib.contextmanager
def open_sandbox(db_path: Path, writable_files: Iterable[Path] = (),
                 writable_dirs: Iterable[Path] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection that can read nothing outside the database and write only where told.

    Like `etl status`, it asks a running `etl run` to step aside while it is open.
    """
    files = [Path(p).resolve() for p in writable_files]
    dirs = [Path(p).resolve() for p in writable_dirs]
    with open_reader(db_path, setup=lambda con: _lock_down(con, files, dirs)) as con:
        yield con


class StatementStop:
    """Ctrl-C, SIGTERM or SIGHUP during `etl query`: DuckDB's `interrupt()` on the running statement.

    `installed()` puts the handler in place for the whole command (main thread only). While a
    statement runs inside `running(con)`, the first signal interrupts it and its error becomes
    `Interrupted` (the CLI exits 128 + the signal's number with one line); at any other moment, or
    at a second signal, the handler raises KeyboardInterrupt, which `interrupted()` turns into the
    same. A SIGHUP ignored at start (nohup) stays ignored.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[StatementStop]:
        with handling_stop_signals(self._handle):
            yield self

    def _handle(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        self.signum = signum
        if first and self._con is not None:
            self._con.interrupt()  # the statement raises; `running` makes that `Interrupted`
            return
        raise KeyboardInterrupt

    def interrupted(self) -> Interrupted:
        name = signal.Signals(self.signum).name if self.signum else "interrupted"
        return Interrupted(f"{name}: the query was interrupted", self.signum)

    @contextlib.contextmanager
    def running(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """While the block runs a statement on `con`, a signal interrupts that statement."""
        self._con = con
        try:
            yield
        except Exception:
            if self.signum is not None:
                raise self.interrupted() from None
            raise
        finally:
            self._con = None
        if self.signum is not None:  # it came just as the statement ended
            raise self.interrupted()


def running(stop: StatementStop | None, con: duckdb.DuckDBPyConnection) -> contextlib.AbstractContextManager:
    return stop.running(con) if stop is not None else contextlib.nullcontext()
