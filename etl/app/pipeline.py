"""`etl run` and friends: lock the database, register sources, run the stages in order."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etl.app import registry
from etl.engine import artifacts
from etl.engine.config import Config
from etl.engine.errors import ConfigError, DatabaseError, Interrupted, StageFailed, StageStopped
from etl.engine.resources import execute, sql
from etl.engine.runner import (
    ExecutorFactory,
    RunOptions,
    StageReport,
    StageRunner,
    stage_counts,
    sweep_superseded,
)
from etl.engine.stage import short_reason
from etl.app.store import RunLock, Writer, open_reader, open_writer


def load_config(config_file: Path | None, cli: dict[str, Any] | None = None) -> Config:
    return Config.load(registry.params_types(), config_file, cli=cli)


def init_database(db_path: Path) -> list[str]:
    """Create or upgrade the database; returns the names of the migrations applied."""
    with RunLock(db_path):
        writer = open_writer(db_path, create=True)
        writer.close()
    return writer.applied_migrations


def _register_sources(writer: Writer, sources: list[Path]) -> None:
    from etl.stages.ingest import sources as source_folders

    with writer.transaction() as con:
        for folder in sources:
            source_folders.add(con, folder)


def change_sources(db_path: Path, change: Callable[[Any], Any]) -> Any:
    """Run `change(con)` (etl/stages/ingest/sources.py) under the run lock, in one transaction."""
    with RunLock(db_path):
        writer = open_writer(db_path, create=True)
        try:
            with writer.transaction() as con:
                return change(con)
        finally:
            writer.close()


def unreachable_sources(db_path: Path) -> list[str]:
    """Registered source folders that are not there now, or cannot be listed (cheap: no file counts)."""
    from etl.stages.ingest import unreachable

    with open_reader(db_path) as con:
        return [row[0] for row in con.execute(sql("pipeline.sql", "list_sources")).fetchall()
                if unreachable(row[0]) is not None]


def list_sources(db_path: Path) -> list[dict[str, Any]]:
    from etl.stages.ingest import sources as source_folders

    with open_reader(db_path) as con:
        return source_folders.listing(con)


def _record_data_dir(writer: Writer, db_path: Path, config: Config) -> None:
    """Rows name artifacts relative to the data folder: it must stay the one they were written to."""
    configured = config.run.data_dir
    with writer.transaction() as con:
        row = execute(con, "pipeline.sql", "stored_data_dir").fetchone()
        if row is not None and row[0] != configured:
            before, now = (db_path.parent / row[0]).resolve(), (db_path.parent / configured).resolve()
            if before != now and (before.exists() or not now.exists()):
                raise ConfigError(f"this store's data folder is {before} (data_dir = {row[0]!r}), not {now}: "
                                  f"set [run] data_dir back, or move the folder there first")
        execute(con, "pipeline.sql", "record_data_dir", {"data_dir": configured})


def run(
    db_path: Path,
    config: Config,
    *,
    stage_names: list[str] | None = None,
    sources: list[Path] | None = None,
    options: RunOptions | None = None,
    executor_factory: ExecutorFactory | None = None,
    on_stage_done: Callable[[StageReport], None] | None = None,
) -> list[StageReport]:
    """Run the selected stages (all by default) in dependency order; resumable at any point."""
    options = options or RunOptions(run_id=uuid.uuid4().hex[:12], executor=config.run.executor)
    selected = registry.select(stage_names)
    reports: list[StageReport] = []
    with RunLock(db_path) as lock, options.stop.installed():
        writer = open_writer(db_path, create=True, on_wait=options.progress.waiting, stop=options.stop)
        try:
            if not options.dry_run:  # files a killed run superseded but did not get to remove
                with writer.transaction() as con:
                    sweep_superseded(con, data_dir(db_path, config))
            _register_sources(writer, sources or [])
            _record_data_dir(writer, db_path, config)
            with writer.transaction() as con:
                if any(s.name == "ingest" for s in selected) and not con.execute(
                        sql("pipeline.sql", "count_sources")).fetchone()[0]:
                    raise ConfigError("no source folders registered yet: pass --source DIR (it is remembered)")
                con.execute(sql("pipeline.sql", "start_run"), {
                    "run_id": options.run_id, "pid": os.getpid(), "host": socket.gethostname(),
                    "argv": " ".join(sys.argv), "started_at": lock.holder["started_at"],
                })
            outcome = "error"
            try:
                # A stage that stops on an unexpected error (a bug, its write raising) is recorded
                # and its dependants (via `needs`, transitively) are skipped; stages that do not
                # need it still run. Ctrl-C (Interrupted) and a lost database stop everything.
                crashed: dict[str, str] = {}   # stage -> one-line error
                blocked: dict[str, str] = {}   # stage -> the crashed stage it needs
                for stage in selected:
                    if options.stop.requested:
                        raise Interrupted(f"{options.stop.name}: finished work is committed; run again to continue",
                                          options.stop.signum)
                    cause = next((blocked.get(n, n) for n in stage.upstream if n in crashed or n in blocked), None)
                    if cause is not None:
                        blocked[stage.name] = cause
                        report = StageReport(stage.name, skipped_reason=f"not run: it needs {cause}, which failed")
                    else:
                        report = _run_stage(writer, stage, config, options, executor_factory, crashed)
                    reports.append(report)
                    if on_stage_done is not None:
                        on_stage_done(report)
                if crashed:
                    raise StageFailed("; ".join(f"stage {name} failed: {error}" for name, error in crashed.items())
                                      + (f" (not run: {', '.join(blocked)})" if blocked else ""))
                outcome = "finished"
            except Interrupted:
                outcome = "interrupted"
                raise
            finally:
                if not options.dry_run:
                    with writer.transaction() as con:
                        con.execute(sql("pipeline.sql", "finish_run"), {"run_id": options.run_id, "outcome": outcome})
        finally:
            writer.close()
    return reports


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, StageStopped):  # says what happened itself
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _run_stage(writer: Writer, stage: Any, config: Config, options: RunOptions,
               executor_factory: ExecutorFactory | None, crashed: dict[str, str]) -> StageReport:
    """Run one stage; an unexpected error is recorded in `crashed` instead of ending the run."""
    runner = None
    try:
        runner = StageRunner(writer, stage, config, options, executor_factory)
        return runner.run()
    except (Interrupted, DatabaseError):
        raise
    except Exception as error:  # a bug in the stage, its write raising, ...: the others go on
        crashed[stage.name] = _one_line(error)
        report = runner.report if runner is not None else StageReport(stage.name)
        report.skipped_reason = (f"stopped: {crashed[stage.name]}" if isinstance(error, StageStopped)
                                 else f"stopped by an error: {crashed[stage.name]}")
        if not options.dry_run:
            # Items it claimed and did not commit go back to the queue (the failed transaction
            # was rolled back; the claims were committed before).
            try:
                writer.close()  # a fresh connection: the failed one may be unusable
                with writer.transaction() as con:
                    execute(con, "engine/state.sql", "release", {"stage": stage.name, "run_id": options.run_id})
            except Exception:  # the next run resets them anyway (reset_running)
                pass
        return report


def status(db_path: Path, config: Config) -> list[dict[str, Any]]:
    """Per stage: pending / running / done / failed / skipped, plus why a stage cannot run here."""
    rows = []
    with open_reader(db_path) as con:
        for stage in registry.all_stages():
            params = config.params(stage.name)
            row: dict[str, Any] = {"stage": stage.name, **stage_counts(con, stage, params)}
            reason = stage.why_unavailable(params)
            row["note"] = short_reason(reason)  # one line: `etl status`
            row["detail"] = str(reason) if reason is not None else None  # how to install it
            rows.append(row)
    return rows


def failures(db_path: Path, stage: str | None = None) -> list[dict[str, Any]]:
    if stage is not None:
        registry.select([stage])  # validates the name
    with open_reader(db_path) as con:
        result = con.execute(sql("engine/state.sql", "failures"), {"stage": stage})
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]


def data_dir(db_path: Path, config: Config) -> Path:
    """The store's data folder: a folder of its own, never one holding the database (gc removes what
    no row names in the stages' folders under it)."""
    folder = (db_path.parent / config.run.data_dir).resolve()
    if db_path.resolve().parent.is_relative_to(folder):
        raise ConfigError(f"[run] data_dir = {config.run.data_dir!r} is {folder}, which holds the database: "
                          "the data folder must be a folder of its own (the default is 'etl-data')")
    return folder


def _forget_missing(writer: Writer, config: Config, grace_days: float, dry_run: bool) -> int:
    """Forget the paths missing for longer than the grace period, then retire, stage by stage,
    what no longer has a file (tracks, their crops, stems...; their files are removed)."""
    from etl.stages.ingest import sources as source_folders

    with writer.transaction(rollback=dry_run) as con:
        forgotten = source_folders.forget_missing(con, grace_days)
    if forgotten and not dry_run:
        for stage in registry.all_stages():
            StageRunner(writer, stage, config, RunOptions(run_id="gc")).retire_gone()
    return forgotten


def gc(db_path: Path, config: Config, dry_run: bool = False, grace_days: float | None = None) -> dict[str, Any]:
    """Forget files missing for longer than [run] missing_grace_days (with what hangs off them), and
    remove files under the data folder that no committed row names (what killed runs' workers
    wrote, files superseded but not yet removed). Holds the run lock: never races a run."""
    folder = data_dir(db_path, config)
    grace = config.run.missing_grace_days if grace_days is None else grace_days
    with RunLock(db_path):
        writer = open_writer(db_path, create=False)
        try:
            forgotten = _forget_missing(writer, config, grace, dry_run)
            with writer.transaction() as con:
                referenced = {row[0] for row in con.execute(sql("engine/lineage.sql", "referenced_files")).fetchall()}
                # Only the stages' own folders: whatever else lies in the data folder is not the store's.
                stages = {row[0] for row in con.execute(sql("engine/lineage.sql", "stages_with_items")).fetchall()}
                stages |= {stage.name for stage in registry.all_stages()}
                orphans = sorted(path for stage in stages for path in artifacts.walk(folder / stage, folder)
                                 if path not in referenced)
                if not dry_run:
                    artifacts.remove(orphans, folder)
                    sweep_superseded(con, folder)
        finally:
            writer.close()
    size = sum((folder / p).stat().st_size for p in orphans if (folder / p).exists()) if dry_run else None
    return {"data_dir": str(folder), "orphans": orphans, "removed": not dry_run, "bytes": size,
            "forgotten_files": forgotten, "missing_grace_days": grace}
