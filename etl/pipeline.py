"""`etl run` and friends: lock the database, register sources, run the stages in order."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etl import stages as registry
from etl.config import Config
from etl.engine import ExecutorFactory, RunOptions, StageReport, StageRunner, stage_counts
from etl.errors import ConfigError, Interrupted
from etl.resources import sql
from etl.store import RunLock, Writer, open_reader, open_writer


def load_config(config_file: Path | None, cli: dict[str, Any] | None = None) -> Config:
    return Config.load(registry.params_types(), config_file, cli=cli)


def init_database(db_path: Path) -> list[str]:
    """Create or upgrade the database; returns the names of the migrations applied."""
    with RunLock(db_path):
        writer = open_writer(db_path, create=True)
        writer.close()
    return writer.applied_migrations


def _register_sources(writer: Writer, sources: list[Path]) -> None:
    resolved = []
    for source in sources:
        folder = source.expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"source {source} is not a folder")
        resolved.append(str(folder))
    with writer.transaction() as con:
        for folder in resolved:
            con.execute(sql("pipeline.sql", "add_source"), {"path": folder})


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
            _register_sources(writer, sources or [])
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
                for stage in selected:
                    if options.stop.requested:
                        raise Interrupted(f"{options.stop.name}: finished work is committed; run again to continue",
                                          options.stop.signum)
                    report = StageRunner(writer, stage, config, options, executor_factory).run()
                    reports.append(report)
                    if on_stage_done is not None:
                        on_stage_done(report)
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


def status(db_path: Path, config: Config) -> list[dict[str, Any]]:
    """Per stage: pending / running / done / failed / skipped, plus why a stage cannot run here."""
    rows = []
    with open_reader(db_path) as con:
        for stage in registry.all_stages():
            params = config.params(stage.name)
            row: dict[str, Any] = {"stage": stage.name, **stage_counts(con, stage, params)}
            row["note"] = stage.unavailable(params) if stage.unavailable else None
            rows.append(row)
    return rows


def failures(db_path: Path, stage: str | None = None) -> list[dict[str, Any]]:
    if stage is not None:
        registry.select([stage])  # validates the name
    with open_reader(db_path) as con:
        result = con.execute(sql("engine/state.sql", "failures"), {"stage": stage})
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]
