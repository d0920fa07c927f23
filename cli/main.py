"""`etl`: build and query a music training-data feature store.

Every command takes the database from --db (or $ETL_DB, default ./etl.duckdb) and settings
from --config (or $ETL_CONFIG, default ./etl.toml when it exists). Output meant for machines
(--json) goes to stdout; progress, messages and errors go to stderr.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer

from etl.engine.errors import EtlError, Interrupted
from etl.read import export_formats

app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")
sources_app = typer.Typer(help="The music folders the pipeline scans: list, add, remove, move.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")

class _LazyConsole:
    """A rich Console made on first use: `etl query --format csv` answers without importing rich."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def real(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


# Control characters (C0, DEL, C1) shown as escapes: an ESC or NUL from a tag or file name must not
# reach the terminal (colours, cursor moves, a cleared screen), and a tab or newline would break a row.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"})


def printable(value: object) -> str:
    """`value` as text with its control characters escaped (`\\x1b`, `\\t`)."""
    return str(value).translate(_CONTROL)


def plain(value: object) -> str:
    """Text shown as is: rich would read "[stems]" or "[red]" in a path or reason as markup, and a
    terminal would obey the control characters in it (escaped as `\\x1b`)."""
    from rich.markup import escape

    return escape(printable(value))


def Table(*args: Any, **kwargs: Any) -> Any:  # noqa: N802  (rich's class, imported when a table is drawn)
    from rich.table import Table as RichTable

    return RichTable(*args, **kwargs)


def shorten_left(text: str, width: int) -> str:
    """`text` cut to `width` characters from the left ("…/album/track.flac"): a path's end says most."""
    if len(text) <= width:
        return text
    return "…" + text[len(text) - max(1, width - 1):]


def natural_width(table: Any) -> int:
    """The width `table` takes unwrapped, to decide whether it fits the terminal."""
    from rich.measure import Measurement

    console = out.real()
    return Measurement.get(console, console.options.update(width=10_000), table).maximum


def print_records(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Rows too wide for the terminal, one `column  value` line each (psql's expanded display), each
    value on one line, cut with an ellipsis to the terminal's width."""
    width = out.real().width
    label = min(max(map(len, columns), default=1), 24)
    for number, row in enumerate(rows, 1):
        out.print(f"[dim]── row {number} ──[/]", highlight=False)
        for column, value in zip(columns, row):
            text = printable("" if value is None else value)
            room = max(8, width - label - 2)
            if len(text) <= room:
                shown = text
            elif isinstance(value, str) and value.startswith(("/", "./", "../", "~")):
                shown = shorten_left(text, room)  # a path: its end (the file name) says most
            else:
                shown = text[:room - 1] + "…"
            out.print(f"{plain(shorten_left(column, label)):<{label}}  {plain(shown)}", highlight=False)


out = _LazyConsole(soft_wrap=True)
err = _LazyConsole(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    db: Path = Path("etl.duckdb")
    config_file: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    debug: bool = False


def _state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State)


def handle_errors(fn: F) -> F:
    """User errors become one line on stderr (exit 1; 128 + the signal's number after Ctrl-C, SIGTERM
    or SIGHUP: 130, 143, 129); --debug shows tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")  # every command takes the context, for the global options
        debug = ctx is not None and _state(ctx).debug
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Interrupted as error:
            if debug:
                raise
            err.print(f"[yellow]stopped:[/] {plain(error)}", highlight=False)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            if debug:
                raise
            err.print("[yellow]stopped[/]")
            raise typer.Exit(130) from None
        except EtlError as error:
            if debug:
                raise
            err.print(f"[red]error:[/] {plain(error)}", highlight=False)
            raise typer.Exit(1) from None
        except BrokenPipeError:  # the reader stopped early (`etl status | head -1`): not an error to report
            # stdout goes nowhere from here, so the interpreter's last flush cannot raise it again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(128 + signal.SIGPIPE) from None
        except Exception as error:  # a bug: still one line unless --debug
            if debug:
                raise
            err.print(f"[red]error:[/] unexpected {type(error).__name__}: {plain(error)} (run with --debug for the traceback)",
                      highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _global(
    ctx: typer.Context,
    db: Path = typer.Option(Path("etl.duckdb"), "--db", envvar="ETL_DB", help="The DuckDB database file."),
    config: Path | None = typer.Option(None, "--config", envvar="ETL_CONFIG", readable=False,
                                       help="TOML settings file (default: ./etl.toml when present)."),
    set_: list[str] = typer.Option([], "--set", metavar="TABLE.KEY=VALUE",
                                   help="Override one setting, e.g. --set crops.seconds=10 (repeatable)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and worker stderr."),
) -> None:
    state = _state(ctx)
    state.db = db
    state.debug = debug
    if config is None and Path("etl.toml").exists():  # a folder of that name is an error, not ignored
        config = Path("etl.toml")
    state.config_file = config
    for assignment in set_:
        key, sep, value = assignment.partition("=")
        if not sep:
            err.print(f"[red]error:[/] --set expects TABLE.KEY=VALUE, got {plain(repr(assignment))}")
            raise typer.Exit(2)
        state.overrides[key.strip()] = value


def _config(state: State, extra: dict[str, Any] | None = None) -> Any:
    from etl.app.pipeline import load_config

    config = load_config(state.config_file, {**state.overrides, **(extra or {})})
    for warning in config.warnings:
        err.print(f"[yellow]warning:[/] {plain(warning)}", highlight=False)
    return config


def _finite(value: Any) -> Any:
    """NaN and ±inf become None (JSON null) at any depth: standard JSON has no NaN or Infinity."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(_finite(value), indent=2, default=str, allow_nan=False) + "\n")


@app.command()
@handle_errors
def init(ctx: typer.Context) -> None:
    """Create the database, or apply the schema migrations it is missing."""
    from etl.app.pipeline import init_database

    state = _state(ctx)
    applied = init_database(state.db)
    if applied:
        err.print(f"{state.db}: applied {', '.join(applied)}", highlight=False)
    else:
        err.print(f"{state.db}: schema is up to date", highlight=False)


# `etl run`'s exit status when items failed in this run (the run went on past them; `etl failures`).
ITEMS_FAILED_EXIT = 3


@app.command()
@handle_errors
def run(
    ctx: typer.Context,
    source: list[Path] = typer.Option([], "--source", "-s", help="Folder of music to add (remembered in the database)."),
    stage: list[str] = typer.Option([], "--stage", help="Run only this stage (repeatable). Default: all, in order."),
    skip: list[str] = typer.Option([], "--skip", help="Run every stage but this one (repeatable); its dependants "
                                   "run on what it made before."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="Worker processes for every stage."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Retry failed items (up to \\[run] max_attempts)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Process at most N items per stage."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be processed; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the per-stage summary as JSON on stdout."),
) -> None:
    """Run the pipeline (every stage in order, or --stage ones): resumable, Ctrl-C safe.

    Exit status: 0 when every item processed in this run is done or skipped; 3 when some failed
    (the run still went on past them: `etl failures` lists them); 1 when a stage stopped on an
    error (the stages that do not need it still ran); 128 + N after signal N (130: Ctrl-C).
    """
    import uuid

    from cli import summary
    from cli.progress import RichProgress
    from etl.app import registry
    from etl.app import pipeline
    from etl.engine.runner import RunOptions, StageReport
    from etl.engine.stage import short_reason

    state = _state(ctx)
    config = _config(state)
    registry.select(skip)  # an unknown name is an error
    names = [name for name in (stage or registry.stage_names()) if name not in skip] if skip else stage
    progress = RichProgress(err.real())
    options = RunOptions(
        run_id=uuid.uuid4().hex[:12], limit=limit, retry_failed=retry_failed, dry_run=dry_run,
        workers=workers, executor=config.run.executor, quiet_worker_stderr=not state.debug, progress=progress,
    )
    reports: list[StageReport] = []

    def report_line(report: StageReport) -> None:
        reports.append(report)
        if report.skipped_reason:  # one line (a model stage: the command that fetches it); --json has the whole text
            verb = "stopped" if report.skipped_reason.startswith("stopped") else "skipped"
            reason = short_reason(report.skipped_reason)
            err.print(f"[yellow]{report.stage}: {verb}[/] — {plain(reason.removeprefix('stopped: '))}",
                      highlight=False)
        elif dry_run:
            err.print(f"{report.stage}: {report.pending} pending", highlight=False)
        elif report.pending == 0:
            err.print(f"{report.stage}: nothing to do", highlight=False)
        else:
            rate = report.processed / report.elapsed_s if report.elapsed_s else 0.0
            err.print(f"{report.stage}: {report.done} done, {report.failed} failed, {report.skipped} skipped "
                      f"in {report.elapsed_s:.1f} s ({rate:,.1f} items/s)", highlight=False)

    try:
        pipeline.run(state.db, config, stage_names=names or None, sources=source,
                     options=options, on_stage_done=report_line)
    finally:
        progress.close()
        if reports and not dry_run:
            err.print(plain(summary.line(summary.rows(reports))), highlight=False)
    failed = sum(r.failed for r in reports)
    if as_json:
        _print_json(summary.rows(reports))
    if failed and not dry_run:
        raise typer.Exit(ITEMS_FAILED_EXIT)


def _print_csv(rows: list[dict[str, Any]]) -> None:
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


@app.command()
@handle_errors
def status(
    ctx: typer.Context,
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Per stage: pending, running, done, failed, skipped. Works while a run is going."""
    from etl.app.pipeline import status as stage_status
    from etl.app.pipeline import unreachable_sources

    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("must be table, csv or json", param_hint="--format")
    state = _state(ctx)
    rows = stage_status(state.db, _config(state))
    if as_json or fmt == "json":
        _print_json(rows)
        return
    if fmt == "csv":
        _print_csv(rows)
        return
    counted = ("pending", "running", "done", "failed", "skipped", "missing")

    def table_of(with_notes: bool) -> Any:
        table = Table(title=plain(shorten_left(str(state.db), out.real().width)), title_justify="left")
        for column in ("stage", *counted):
            table.add_column(column, justify="left" if column == "stage" else "right", no_wrap=True)
        if with_notes:
            table.add_column("note", no_wrap=True)
        for row in rows:
            notes = [plain(row["note"] or "")] if with_notes else []
            table.add_row(row["stage"], *(f"{row[c]:,}" for c in counted), *notes)
        return table

    # The short note in its column where it fits; else under the table, one line per stage with one.
    # The whole text (how to install a model) is in --format json and `etl models`.
    table = table_of(with_notes=True)
    noted = [row for row in rows if row["note"]]
    if noted and natural_width(table) > out.real().width:
        out.print(table_of(with_notes=False))
        for row in noted:
            out.print(f"{row['stage']}: {plain(row['note'])}", highlight=False)
    else:
        out.print(table)
    for source in unreachable_sources(state.db):  # an unmounted drive, or a folder that moved
        err.print(f"source {plain(source)} is not reachable: its files are left as they were "
                  "(`etl sources move OLD NEW` if it moved)", highlight=False)


@app.command()
@handle_errors
def gc(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="List the orphaned files; remove nothing."),
    grace_days: float | None = typer.Option(None, "--grace-days", min=0,
                                            help="Forget files missing for longer than this (default: "
                                                 "[run] missing_grace_days, 30)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Forget files missing past the grace period; remove files no row names.

    Files gone from a reachable source for longer than run.missing_grace_days are forgotten, with their tracks, crops, stems and artifact files. Files under the data folder that no row names (left by killed runs) are removed. Refused while a run holds the database.
    """
    from etl.app.pipeline import gc as collect

    state = _state(ctx)
    result = collect(state.db, _config(state), dry_run=dry_run, grace_days=grace_days)
    if as_json:
        _print_json(result)
        return
    for path in result["orphans"]:
        out.print(plain(path), highlight=False)
    verb = "would remove" if dry_run else "removed"
    err.print(f"{'would forget' if dry_run else 'forgot'} {result['forgotten_files']} file(s) missing for over "
              f"{result['missing_grace_days']:g} day(s)", highlight=False)
    err.print(f"{verb} {len(result['orphans'])} orphaned file(s) under {plain(result['data_dir'])}", highlight=False)


@app.command()
@handle_errors
def failures(
    ctx: typer.Context,
    stage: str | None = typer.Option(None, "--stage", help="Only this stage."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Failed items: stage, item, path and reason."""
    from etl.app.pipeline import failures as list_failures

    rows = list_failures(_state(ctx).db, stage)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        err.print("no failures")
        return
    # One line per failure: the path cut from the left (its file name kept), the reason cut with an
    # ellipsis; --json has both whole.
    table = Table()
    stage_width = max(len("stage"), *(len(row["stage"]) for row in rows))
    room = max(30, out.real().width - stage_width - len("attempts") - 13)  # 13: borders and padding
    path_width = room * 11 // 20
    table.add_column("stage", no_wrap=True, width=stage_width)
    table.add_column("path", no_wrap=True, width=path_width)
    table.add_column("reason", no_wrap=True, overflow="ellipsis", width=room - path_width)
    table.add_column("attempts", no_wrap=True, justify="right", width=len("attempts"))
    for row in rows:
        path = shorten_left(repr(row["path"])[1:-1], path_width)
        table.add_row(row["stage"], plain(path), plain(row["reason"]), str(row["attempts"]))
    out.print(table)


@app.command()
@handle_errors
def query(
    ctx: typer.Context,
    sql_text: str | None = typer.Argument(None, metavar="[SQL]", help="One read-only statement, e.g. "
                                          "\"SELECT genre, count(*) FROM crops_v GROUP BY ALL\"."),
    name: str | None = typer.Option(None, "--name", "-n", help="Run a named query from sql/queries/ instead."),
    param: list[str] = typer.Option([], "--param", "-p", metavar="NAME=VALUE",
                                    help="Bind $NAME (repeatable). 120 and 1.5 bind as numbers; '\"120\"' as text."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json | jsonl | parquet."),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="Write to this file (atomically) instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Replace --out when it exists (never the database, nor a "
                               "file in its data folder or a source folder)."),
    max_rows: int = typer.Option(100, "--max-rows", min=1, help="Rows shown by --format table."),
    list_: bool = typer.Option(False, "--list", help="List the named queries and their parameters."),
    as_json: bool = typer.Option(False, "--json", help="With --list: machine-readable list on stdout."),
) -> None:
    """Ask the feature store a question in SQL (read-only; works while `etl run` is going).

    Views: crops_v (one row per crop: tags, beat grid, every feature), tracks_v, stage_status_v,
    failures_v. Anything but a query (INSERT, COPY, ATTACH, SET, several statements, reading
    files, ...) is refused.
    """
    from etl.engine.errors import QueryError
    from etl.read import query as q
    from etl.read.readonly import StatementStop, parse_params

    if list_:
        listing = q.describe(q.named_queries().values())
        if as_json:
            _print_json(listing)
            return
        table = Table()
        for column in ("name", "params", "description"):
            table.add_column(column, overflow="fold")
        for entry in listing:
            table.add_row(entry["name"], " ".join(entry["params"]), plain(entry["description"]))
        out.print(table)
        return
    if (sql_text is None) == (name is None):
        raise QueryError("give either SQL or --name NAME (see --list)")
    if fmt not in q.FORMATS:
        raise QueryError(f"--format must be one of {', '.join(q.FORMATS)}")
    text = q.named_query(name).sql if name else sql_text
    params = parse_params(param)
    db = _state(ctx).db
    stop = StatementStop()
    with stop.installed():  # Ctrl-C / SIGTERM interrupt the running statement (DuckDB's interrupt)
        try:
            if fmt != "table":
                q.run_to_file(db, text, params, fmt, out_file, stop, force)
                return
            if out_file is not None:
                raise QueryError("--out needs a file format: --format csv | json | jsonl | parquet")
            result = q.run_to_table(db, text, params, max_rows, stop)
        except KeyboardInterrupt:
            if stop.signum is None:
                raise
            raise stop.interrupted() from None
    table = Table(show_lines=False)
    for column in result.columns:
        table.add_column(plain(column), overflow="fold")
    for row in result.rows:
        table.add_row(*("" if v is None else plain(v) for v in row))
    if natural_width(table) > out.real().width and len(result.columns) > 1:
        print_records(result.columns, result.rows)  # too wide: one line per column and value
    else:
        out.print(table)
    if result.truncated:
        err.print(f"(first {max_rows:,} rows shown; --max-rows or --format csv for all)", highlight=False)


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _parse_size(text: str) -> int:
    from etl.engine.errors import ExportError

    number, unit = text.strip().upper().rstrip("B"), ""
    if number and number[-1] in _SIZE_UNITS:
        number, unit = number[:-1], number[-1]
    try:
        size = int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, OverflowError):
        size = 0
    if not size > 0:
        raise ExportError(f"--shard-size expects a size above 0 like 500M or 1G, got {text!r}")
    return size


@app.command()
@handle_errors
def export(
    ctx: typer.Context,
    out_dir: Path | None = typer.Option(None, "--out", "-o",
                                        help="Folder to create (refused if not empty, unless --force). Required."),
    fmt: str | None = typer.Option(None, "--format", "-f", help="jsonl (audiocraft) | stable-audio | hf | lhotse | "
                                   "webdataset | csv | parquet | folders. Required."),
    where: str | None = typer.Option(None, "--where", "-w", help="SQL condition over crops_v, e.g. "
                                     "\"genre ILIKE '%house%' AND bpm BETWEEN 120 AND 128\"."),
    param: list[str] = typer.Option([], "--param", "-p", metavar="NAME=VALUE", help="Bind $NAME in --where."),
    split: str | None = typer.Option(None, "--split", help="train/valid/test percentages, e.g. 90/5/5 (or 80/20)."),
    group_by: str = typer.Option("track", "--group-by", help="Keep each track | album | artist | folder (the file's folder name: a song and its stems) in one split."),
    copy: bool = typer.Option(False, "--copy", help="Copy the audio next to the manifest (not for "
                              f"{', '.join(export_formats.CARRIES_AUDIO)}, which carries it)."),
    link: bool = typer.Option(False, "--link", help="Hard-link the audio next to the manifest (copy across devices). "
                              f"Default for {', '.join(export_formats.NEEDS_PLACED_AUDIO)}."),
    absolute: bool | None = typer.Option(None, "--absolute-paths/--relative-paths",
                                         help="How manifests name audio (default: what the format's loader "
                                         "resolves: absolute for jsonl, lhotse, stable-audio, csv, parquet; "
                                         "relative to the manifest for hf and folders). Relative paths of the "
                                         "first kind start at --out (run the loader from there) and need the "
                                         "audio placed (--link or --copy)."),
    shard_size: str = typer.Option("1G", "--shard-size", help="webdataset: largest tar shard, e.g. 500M."),
    force: bool = typer.Option(False, "--force", help="Replace a previous export (a folder holding its export.json)."),
    include_missing: bool = typer.Option(False, "--include-missing",
                                         help="Also export crops of tracks whose source files are gone."),
    dedupe: bool = typer.Option(False, "--dedupe", help="Keep one copy of each recording the fingerprint stage "
                                "found more than once (lossless first, then the highest bit rate, then the "
                                "longest); export.json says how many copies were left out."),
    include_source_paths: bool = typer.Option(False, "--include-source-paths",
                                              help="Keep track_path / source_path (this machine's paths) in "
                                              "csv, parquet and hf tables."),
    relocate: Path | None = typer.Option(None, "--relocate", metavar="DIR",
                                         help="Instead of exporting: rewrite the absolute paths of an export "
                                         "moved to DIR (with --link/--copy) for its new place. No database "
                                         "needed; takes no other option."),
    as_json: bool = typer.Option(False, "--json", help="Print the per-split summary as JSON on stdout."),
) -> None:
    """Write a training manifest of the crops --where selects, with deterministic splits.

    Written into a staging folder and renamed into place: --out never holds a half-written export.
    After moving an export made with --link/--copy, `etl export --relocate NEW` points it at NEW.
    """
    from etl.engine.errors import ExportError
    from etl.read.export import ExportRequest
    from etl.read.export import export as run_export
    from etl.read.readonly import parse_params

    if relocate is not None:
        _relocate_export(ctx, relocate, as_json)
        return
    missing = [flag for flag, value in (("--out", out_dir), ("--format", fmt)) if value is None]
    if missing:
        raise ExportError(f"{' and '.join(missing)} required (or --relocate DIR for a moved export)")
    if copy and link:
        raise ExportError("--copy and --link exclude each other")
    request = ExportRequest(
        out=out_dir, format=fmt, where=where, params=parse_params(param), split=split, group_by=group_by,
        placement="copy" if copy else "link" if link else None, absolute_paths=absolute, force=force,
        shard_bytes=_parse_size(shard_size), include_missing=include_missing,
        include_source_paths=include_source_paths, dedupe=dedupe,
    )
    from etl.read.export import share_warnings

    summaries = run_export(_state(ctx).db, request)
    for warning in share_warnings(summaries):
        err.print(f"warning: {warning}", highlight=False)
    if as_json:
        _print_json([asdict(s) for s in summaries])
        return
    for s in summaries:
        share = f" ({s.percent:.1f} %, asked {s.target:g} %)" if s.percent is not None else ""
        err.print(f"{s.split or 'all'}: {s.crops:,} crops{share}", highlight=False)
    err.print(f"wrote {fmt} export to {out_dir}", highlight=False)


def _relocate_export(ctx: typer.Context, folder: Path, as_json: bool) -> None:
    """`etl export --relocate DIR`: the export's other options describe a new export, so none may come along."""
    from etl.engine.errors import ExportError
    from etl.read.export.relocate import relocate

    flags = {param.name: param.opts[0] for param in ctx.command.params}
    given = [name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"]
    others = [flags[name] for name in given if name not in ("relocate", "as_json")]
    if others:
        raise ExportError(f"--relocate DIR takes no other export option (got {', '.join(others)}): "
                          "it rewrites the export already in DIR")
    result = relocate(folder)
    if as_json:
        _print_json(asdict(result))
    err.print(plain(result.message()), highlight=False)


@app.command()
@handle_errors
def report(
    ctx: typer.Context,
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Folder to write index.html into (created if "
                                        "needed; a previous report there is replaced). Required."),
    where: str | None = typer.Option(None, "--where", "-w", help="SQL condition over crops_v (the same read-only "
                                     "gate as `etl query`), e.g. \"genre ILIKE '%house%'\". Default: every crop."),
    param: list[str] = typer.Option([], "--param", "-p", metavar="NAME=VALUE", help="Bind $NAME in --where."),
    x: str = typer.Option("bpm", "--x", help="Scatter plot: numeric crops_v column on the x axis."),
    y: str = typer.Option("loudness_integrated_lufs", "--y", help="Scatter plot: numeric crops_v column on the y axis."),
    embed_audio: bool = typer.Option(False, "--embed-audio", help="Put the crops' audio (and MIDI) inside the page "
                                     "(base64) instead of linking the store's files relative to it: the page "
                                     "then travels alone, ~1.4x the files' size bigger."),
    samples: int = typer.Option(12, "--samples", help="Sample crops listed with a player."),
    outliers: int = typer.Option(5, "--outliers", help="Crops per outlier list (quietest, loudest, most clipped, "
                                 "tempo disagreements)."),
    top: int = typer.Option(15, "--top", help="Labels per top-N chart, genres in the BPM × genre map."),
    points: int = typer.Option(2000, "--points", help="Most crops drawn per scatter plot (the same ones each time)."),
    force: bool = typer.Option(False, "--force", help="Replace an index.html in --out that etl report did not write."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written (path, size, sections, what was "
                                 "left out) as JSON on stdout."),
) -> None:
    """Write a self-contained HTML page about the store: counts, hours, charts, crops to listen to.

    One file, OUT/index.html, with the charts' JavaScript (Vega-Lite) inside: it opens from disk in any
    browser with no server and no network. Sections follow the columns the store has: one whose
    columns are absent or all NULL (a stage not run, a model not installed) is left out with a note.
    """
    from etl.engine.errors import ReportError
    from etl.app.pipeline import status as stage_status
    from etl.read.readonly import parse_params
    from etl.read.report import ReportRequest, write_report

    if out_dir is None:
        raise ReportError("--out DIR required")
    state = _state(ctx)
    request = ReportRequest(out=out_dir, where=where, params=parse_params(param), x=x, y=y, embed_audio=embed_audio,
                            samples=samples, outliers=outliers, top=top, points=points, force=force)
    summary = write_report(state.db, request, stage_status(state.db, _config(state)))
    if as_json:
        _print_json(asdict(summary))
        return
    for note in summary.left_out:
        err.print(f"  {plain(note)}", highlight=False)
    left_out = f", {len(summary.left_out)} left out (above)" if summary.left_out else ""
    err.print(f"{summary.crops:,} crops, {len(summary.sections)} sections{left_out}; {summary.bytes / 1e6:.1f} MB",
              highlight=False)
    out.print(plain(summary.path), highlight=False, soft_wrap=True)


@sources_app.command("list")
@handle_errors
def sources_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Each source folder: whether it is reachable now, its files, missing files and tracks."""
    from etl.app.pipeline import list_sources

    state = _state(ctx)
    rows = list_sources(state.db)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=str(state.db), title_justify="left")
    for column in ("source", "reachable", "files", "missing", "tracks"):
        table.add_column(column, justify="left" if column in ("source", "reachable") else "right")
    for row in rows:
        table.add_row(plain(shorten_left(row["path"], max(20, out.real().width - 50))),
                      "yes" if row["reachable"] else "[red]no[/] (left as it was)",
                      f"{row['files']:,}", f"{row['missing_files']:,}", f"{row['tracks']:,}")
    out.print(table)


@sources_app.command("add")
@handle_errors
def sources_add(ctx: typer.Context, folder: Path = typer.Argument(..., help="A folder of music.")) -> None:
    """Register a folder: the next `etl run` scans it (as `etl run --source FOLDER` does)."""
    from etl.app.pipeline import change_sources
    from etl.stages.ingest import sources

    path = change_sources(_state(ctx).db, lambda con: sources.add(con, folder))
    err.print(f"added {plain(path)}: `etl run` scans it", highlight=False)


@sources_app.command("remove")
@handle_errors
def sources_remove(ctx: typer.Context, folder: Path = typer.Argument(..., help="A registered source folder.")) -> None:
    """Stop scanning a folder ("that folder is gone").

    Its tracks leave the views now; their rows and files stay until `etl gc` forgets them after run.missing_grace_days (or `etl gc --grace-days 0`).
    """
    from etl.app.pipeline import change_sources
    from etl.stages.ingest import sources

    path = change_sources(_state(ctx).db, lambda con: sources.remove(con, folder))
    err.print(f"removed {plain(path)}: its files count as missing; `etl gc` forgets them after the grace period",
              highlight=False)


@sources_app.command("move")
@handle_errors
def sources_move(
    ctx: typer.Context,
    old: Path = typer.Argument(..., help="The registered source folder (it need not exist any more)."),
    new: Path = typer.Argument(..., help="Where its files are now."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """A source folder moved ("it moved there"): nothing is read or computed again.

    Files found unchanged at the new place (same size, mtime and sampled hash) keep their tracks and everything computed from them; the others are left for the next run to look at.
    """
    from etl.app.pipeline import change_sources
    from etl.stages.ingest import sources

    result = change_sources(_state(ctx).db, lambda con: sources.move(con, old, new))
    if as_json:
        _print_json(result)
        return
    err.print(f"moved {plain(result['old'])} -> {plain(result['new'])}: {result['moved']:,} of {result['files']:,} "
              f"file(s) found unchanged; {result['not_found']:,} left for the next run to look at", highlight=False)


@config_app.command("show")
@handle_errors
def config_show(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Print every effective setting and where it came from (default, file, env, cli)."""
    settings = _config(_state(ctx)).settings()
    if as_json:
        _print_json({table: {key: {"value": s.value, "origin": s.origin} for key, s in values.items()}
                     for table, values in settings.items()})
        return
    table = Table()
    for column in ("setting", "value", "origin"):
        table.add_column(column)
    for name, values in settings.items():
        for key, setting in values.items():
            table.add_row(f"{name}.{key}", plain(json.dumps(setting.value)), setting.origin)
    out.print(table)


models_app = typer.Typer(
    help="Models: what each model-backed stage is configured to use, every model the project knows "
         "(publisher URL, size, sha256, licence, installed or not, where), and `fetch` to download them.")
app.add_typer(models_app, name="models")

_CATALOG_HELP = "Model catalog TOML (default: every stage's models.toml, e.g. etl/stages/stems/models.toml)."
_DIR_HELP = "Where fetched models go (default: $ETL_MODELS_DIR or ~/.cache/music-etl/models)."


@models_app.callback(invoke_without_command=True)
@handle_errors
def models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    catalog: Path | None = typer.Option(None, "--catalog", envvar="ETL_MODEL_CATALOG", help=_CATALOG_HELP),
    directory: Path | None = typer.Option(None, "--dir", envvar="ETL_MODELS_DIR", help=_DIR_HELP),
) -> None:
    """Model-backed stages (the model each uses, whether it is here, licence, install) and the catalog of
    models `etl models fetch` can download."""
    if ctx.invoked_subcommand is not None:
        return
    from cli.models import show

    show(_config(_state(ctx)), as_json, out.real(), _print_json, catalog, directory)


@models_app.command("fetch")
@handle_errors
def models_fetch(
    ctx: typer.Context,
    names: list[str] = typer.Argument(..., help="Catalog model names (see `etl models`)."),
    directory: Path | None = typer.Option(None, "--dir", envvar="ETL_MODELS_DIR", help=_DIR_HELP),
    catalog: Path | None = typer.Option(None, "--catalog", envvar="ETL_MODEL_CATALOG", help=_CATALOG_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Accept the models' licences without asking."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the server at each step."),
) -> None:
    """Download models: licence shown first, resumed when interrupted, checked against the published
    size and sha256, renamed into place only when verified. Honours HTTPS_PROXY / HTTP_PROXY."""
    from cli.models import fetch

    fetch(names, directory, catalog, yes, timeout, err.real())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
