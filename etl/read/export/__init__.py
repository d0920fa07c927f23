"""`etl export`: hand a training run exactly the crops chosen, in the format its loader reads.

    export(db, ExportRequest(out=Path("house"), format="jsonl", where="genre ILIKE '%house%'",
                             split="90/5/5", placement="link"))

The rows are `SELECT ... FROM crops_v WHERE <where>`, read through the same read-only gate and
sandbox as `etl query` (the sandbox may write only into the staging folder). Everything is written
into a staging folder beside --out and renamed into place at the end, so --out never holds a
half-written export. An `export.json` records what was asked and what came out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from etl.engine.errors import ExportError, QueryError
from etl.engine.resources import sql, used_binds
from etl.read.export.files import staged
from etl.read.export.record import check_replaceable, record_bytes, written_files
from etl.read.export.formats import FORMATS
from etl.read.export.plan import GROUP_KEYS, ExportPlan, duplicate_units, parse_split, register_units
from etl.read.export_formats import CARRIES_AUDIO, NEEDS_PLACED_AUDIO, PATHS
from etl.read.protected import check_out, protected_paths
from etl.read.readonly import bind, check_condition, open_sandbox


@dataclass
class ExportRequest:
    out: Path
    format: str
    where: str | None = None
    params: dict[str, Any] | None = None
    split: str | None = None          # "90/5/5"
    group_by: str = "track"           # track | album | artist
    placement: str | None = None      # "link" | "copy" | None (the format's default)
    absolute_paths: bool | None = None  # None: the format's default (absolute where its loader resolves from the cwd)
    force: bool = False
    shard_bytes: int = 1 << 30        # webdataset
    include_missing: bool = False     # also the crops of tracks whose source files are all gone
    include_source_paths: bool = False  # track_path / source_path in csv, parquet and hf tables
    dedupe: bool = False              # one copy per near-duplicate group (the fingerprint stage's)


@dataclass
class SplitSummary:
    split: str | None
    crops: int
    percent: float | None = None      # achieved share of the crops (with --split)
    target: float | None = None       # the share asked for

    @property
    def off_by(self) -> float:
        return abs(self.percent - self.target) if self.percent is not None and self.target is not None else 0.0


SHARE_TOLERANCE = 5.0  # percentage points a split may miss its target by before a warning


def empty_splits(summaries: list[SplitSummary]) -> list[str]:
    """The splits no crop fell into: every format leaves them out (no empty manifest, folder or config)."""
    return [s.split for s in summaries if s.split and not s.crops]


def share_warnings(summaries: list[SplitSummary]) -> list[str]:
    """One line per empty split, and per split whose achieved share is off its target by more than
    SHARE_TOLERANCE points."""
    empty = [f"{split} has no crops: no {split} files were written (splits are drawn per group; "
             "see export.json's empty_splits)" for split in empty_splits(summaries)]
    return empty + [f"{s.split} got {s.percent:.1f} % of the crops, asked {s.target:g} % "
                    f"(off by {s.off_by:.1f} points): splits are drawn per group, so few groups give uneven "
                    "shares" for s in summaries if s.off_by > SHARE_TOLERANCE and s.crops]


def _plan(db_path: Path, request: ExportRequest) -> ExportPlan:
    if request.format not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}")
    if request.group_by not in GROUP_KEYS:
        raise ExportError(f"--group-by must be one of {', '.join(GROUP_KEYS)}")
    if request.placement not in (None, "link", "copy"):
        raise ExportError("placement must be link or copy")
    where = request.where.strip() if request.where and request.where.strip() else "true"
    if request.placement and request.format in CARRIES_AUDIO:
        raise ExportError(f"--{request.placement}: a {request.format} export carries the audio inside its "
                          "shards, it places no files beside them; drop --link / --copy")
    placement = request.placement or ("link" if request.format in NEEDS_PLACED_AUDIO else None)
    resolution = PATHS[request.format]
    absolute = request.absolute_paths if request.absolute_paths is not None else resolution == "cwd"
    if absolute and resolution == "manifest":
        raise ExportError(f"--absolute-paths: {request.format} files name their audio relative to the manifest "
                          "(Hugging Face audiofolder requires file_name relative and inside its folder); "
                          "drop --absolute-paths")
    if not absolute and resolution == "cwd" and not placement:
        raise ExportError(f"--relative-paths: without --link or --copy a {request.format} export names the "
                          "store's crop files, and a path from --out into the store breaks when either moves; "
                          "add --link (or --copy) to place the audio in the export, or keep absolute paths")
    plan = ExportPlan(out=request.out.resolve(), where=where, params={}, splits=parse_split(request.split),
                      group_by=request.group_by, placement=placement, absolute_paths=absolute,
                      relative_to_manifest=resolution == "manifest",
                      include_source_paths=request.include_source_paths,
                      extra={"shard_bytes": request.shard_bytes},
                      view="crops_all_v" if request.include_missing else "crops_v", dedupe=request.dedupe)
    try:  # the condition is parsed alone, as one expression, and gated inside the statement it joins
        plan.params = bind(check_condition(where, "crops_v AS c"), request.params or {})
    except QueryError as error:
        raise ExportError(f"--where: {error}") from None
    return plan


def copies_left_out(con: Any, plan: ExportPlan) -> int:
    """How many of the selected tracks --dedupe leaves out; refused where nothing was fingerprinted
    (every track would look unique)."""
    if not con.execute(sql("export/rows.sql", "any_fingerprint")).fetchall()[0][0]:
        raise ExportError("--dedupe: no track has a fingerprint yet, so no copy can be told apart: run the "
                          "fingerprint stage first (`etl run --stage fingerprint`; `etl status` says if it "
                          "cannot run here)")
    text = sql("export/rows.sql", "copies_left_out").replace("{rows_without_dedupe}", plan.rows_sql(dedupe=False))
    return con.execute(text, used_binds(text, plan.params)).fetchall()[0][0]


def export(db_path: Path, request: ExportRequest) -> list[SplitSummary]:
    plan = _plan(db_path, request)
    with open_sandbox(db_path) as con:
        check_out(plan.out, protected_paths(con, db_path), ExportError)
    if request.force:
        check_replaceable(plan.out)
    with staged(plan.out, request.force) as staging, open_sandbox(db_path, writable_dirs=[staging]) as con:
        units = duplicate_units(con, plan.group_by) if plan.splits else {}
        if units:  # near-duplicates join their keys' split units
            register_units(con, units)
            plan.duplicate_units = True
        try:
            left_out = copies_left_out(con, plan) if plan.dedupe else None
            counts = FORMATS[request.format](con, plan, staging)
        except (ExportError, OSError):
            raise
        except Exception as error:  # duckdb's errors: the first line says it
            raise ExportError(str(error).splitlines()[0]) from None
        if not sum(counts.values()):  # raising here discards the staging folder
            raise ExportError("no crops match: nothing exported (check --where with `etl query`)")
        total = sum(counts.values())
        targets = {s.name: s.percent for s in plan.splits}
        summaries = [SplitSummary(split, counts.get(split, 0),
                                  round(100 * counts.get(split, 0) / total, 2) if split else None, targets.get(split))
                     for split in plan.split_names]
        record = {
            "format": request.format, "out": str(plan.out),  # where it was written: read by --relocate
            "where": request.where, "params": request.params or {},
            "split": request.split, "group_by": request.group_by,
            # splits also kept near-duplicate recordings together (fingerprint stage): how many keys
            # were drawn under another's unit
            "group_by_duplicates": bool(plan.splits),
            "keys_joined_by_duplicates": sum(key != unit for key, unit in units.items()),
            # --dedupe: one copy per near-duplicate group; how many tracks the condition selected
            # were left out as copies (duplicate_copies_v says which copy stays)
            "dedupe": plan.dedupe, "copies_left_out": left_out,
            "placement": plan.placement,
            "absolute_paths": plan.absolute_paths, "include_source_paths": request.include_source_paths,
            "splits": [asdict(s) for s in summaries], "empty_splits": empty_splits(summaries),
            "files": written_files(staging),  # what a later --force may replace, and nothing else
        }
        (staging / "export.json").write_bytes(record_bytes(record))
    return summaries


__all__ = ["ExportRequest", "SplitSummary", "export", "record_bytes", "share_warnings"]
