"""`etl export`: hand a training run exactly the crops chosen, in the format its loader reads.

    export(db, ExportRequest(out=Path("house"), format="jsonl", where="genre ILIKE '%house%'",
                             split="90/5/5", placement="link"))

The rows are `SELECT ... FROM crops_v WHERE <where>`, read through the same read-only gate and
sandbox as `etl query` (the sandbox may write only into the staging folder). Everything is written
into a staging folder beside --out and renamed into place at the end, so --out never holds a
half-written export. An `export.json` records what was asked and what came out.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from etl.engine.errors import ExportError, QueryError
from etl.engine.resources import sql
from etl.read.api import select_from
from etl.read.export.files import staged
from etl.read.export.formats import FORMATS, NEEDS_PLACED_AUDIO
from etl.read.export.plan import GROUP_KEYS, ExportPlan, parse_split
from etl.read.readonly import bind, check_read_only, open_sandbox


@dataclass
class ExportRequest:
    out: Path
    format: str
    where: str | None = None
    params: dict[str, Any] | None = None
    split: str | None = None          # "90/5/5"
    group_by: str = "track"           # track | album | artist
    placement: str | None = None      # "link" | "copy" | None (the format's default)
    absolute_paths: bool = False
    force: bool = False
    shard_bytes: int = 1 << 30        # webdataset
    include_missing: bool = False     # also the crops of tracks whose source files are all gone


@dataclass
class SplitSummary:
    split: str | None
    crops: int


def _plan(db_path: Path, request: ExportRequest) -> ExportPlan:
    if request.format not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}")
    if request.group_by not in GROUP_KEYS:
        raise ExportError(f"--group-by must be one of {', '.join(GROUP_KEYS)}")
    if request.placement not in (None, "link", "copy"):
        raise ExportError("placement must be link or copy")
    where = request.where.strip() if request.where and request.where.strip() else "true"
    placement = request.placement or ("link" if request.format in NEEDS_PLACED_AUDIO else None)
    plan = ExportPlan(out=request.out.resolve(), where=where, params={}, splits=parse_split(request.split),
                      group_by=request.group_by, placement=placement, absolute_paths=request.absolute_paths,
                      extra={"shard_bytes": request.shard_bytes},
                      view="crops_all_v" if request.include_missing else "crops_v")
    try:  # the user's condition alone goes through the gate; our own splices are constants and binds
        plan.params = bind(check_read_only(select_from("crops_v AS c", where)), request.params or {})
    except QueryError as error:
        raise ExportError(f"--where: {error}") from None
    return plan


def _store_root(con: Any) -> str:
    """The deepest folder holding every crop file (relative manifest paths start there)."""
    [(first, last)] = con.execute(sql("export/rows.sql", "path_range")).fetchall()
    return os.path.commonpath([os.path.dirname(first), os.path.dirname(last)]) if first else ""


def export(db_path: Path, request: ExportRequest) -> list[SplitSummary]:
    plan = _plan(db_path, request)
    with staged(plan.out, request.force) as staging, open_sandbox(db_path, writable_dirs=[staging]) as con:
        try:
            plan.store_root = _store_root(con)
            counts = FORMATS[request.format](con, plan, staging)
        except (ExportError, OSError):
            raise
        except Exception as error:  # duckdb's errors: the first line says it
            raise ExportError(str(error).splitlines()[0]) from None
        if not sum(counts.values()):  # raising here discards the staging folder
            raise ExportError("no crops match: nothing exported (check --where with `etl query`)")
        summaries = [SplitSummary(split, counts.get(split, 0)) for split in plan.split_names]
        record = {
            "format": request.format, "where": request.where, "params": request.params or {},
            "split": request.split, "group_by": request.group_by, "placement": plan.placement,
            "absolute_paths": request.absolute_paths, "splits": [asdict(s) for s in summaries],
        }
        # No timestamp: the same export twice gives byte-identical folders.
        (staging / "export.json").write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
    return summaries
