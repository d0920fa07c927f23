"""`etl report`: a self-contained HTML page about the store, or about the crops a --where selects.

    write_report(db, ReportRequest(out=Path("report"), where="genre ILIKE '%house%'"), stages)

gather.py reads everything through sql/report/*.sql in the read-only sandbox (the --where through the
same gate as `etl query` and `etl export`), charts.py turns each figure into a Vega-Lite spec with
Altair, page.py assembles one HTML file with the Vega JavaScript inline. The page is written under a
temporary name and renamed to OUT/index.html.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.engine.errors import ExportError, ReportError

PAGE_NAME = "index.html"


@dataclass
class ReportRequest:
    out: Path
    where: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    x: str = "bpm"                          # the scatter's axes: numeric columns of crops_v
    y: str = "loudness_integrated_lufs"
    embed_audio: bool = False               # the crops' bytes in the page instead of relative links
    samples: int = 12                       # sample crops with a player
    outliers: int = 5                       # crops per outlier list
    top: int = 15                           # labels per top-N chart, genres in the heat map
    points: int = 2000                      # most points per scatter
    force: bool = False                     # replace an index.html that no report wrote


@dataclass
class ReportSummary:
    path: str
    bytes: int
    crops: int
    hours: dict[str, Any]  # counts and hours of audio: tracks, crops, stems, stem crops
    sections: list[str]
    left_out: list[str]   # whole sections and parts of sections, one line each
    embed_audio: bool


def _need_libraries() -> None:
    missing = [name for name in ("altair", "vl_convert", "jinja2") if _absent(name)]
    if missing:
        raise ReportError(f"etl report needs {', '.join(missing)}: pip install 'music-etl[report]'")


def _absent(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def _check_target(page: Path, force: bool) -> None:
    from etl.read.report.page import GENERATOR

    if page.is_dir():
        raise ReportError(f"{page} is a folder: choose another --out")
    if page.exists() and not force:
        with open(page, "rb") as existing:
            head = existing.read(4096).decode("utf-8", "replace")
        if f'content="{GENERATOR}"' not in head:
            raise ReportError(f"{page} exists and was not written by etl report: choose another --out, "
                              "or --force to replace it")


def write_report(db_path: Path, request: ReportRequest, stages: list[dict[str, Any]]) -> ReportSummary:
    """Write OUT/index.html; `stages` are `etl status`'s rows (counts per stage and why one is skipped)."""
    from etl.engine.folders import check_can_make, writable_folder
    from etl.read.protected import check_out, protected_paths
    from etl.read.readonly import open_sandbox
    from etl.read.report.gather import Selection, gather

    _need_libraries()
    for name, value, low in (("--samples", request.samples, 0), ("--outliers", request.outliers, 0),
                             ("--top", request.top, 1), ("--points", request.points, 1)):
        if value < low:
            raise ReportError(f"{name} must be {low} or more, got {value}")
    out = request.out.resolve()
    selection = Selection.of(request.where, request.params)
    with open_sandbox(db_path) as con:
        # the page's folder may not be, hold, or lie inside the database, data or source folders
        check_out(out, protected_paths(con, db_path), ReportError)
        check_can_make(out, ReportError, " (choose another --out)")  # before the work, not after it
        data = gather(con, selection, stages, request.x, request.y, request.top, request.points,
                      request.samples, request.outliers)
    writable_folder(out, ReportError, " (choose another --out)")  # made once the page can be made
    page = out / PAGE_NAME
    _check_target(page, request.force)

    from etl.read.report import charts
    from etl.read.report.page import render

    specs = {figure.key: charts.spec(figure) for section in data.sections for figure in section.figures}
    html = render(data, specs, charts.javascript_bundle(), out, request.embed_audio, db_path)
    temporary = out / f".{PAGE_NAME}.tmp-{os.getpid()}"
    try:
        temporary.write_text(html, encoding="utf-8")
        os.replace(temporary, page)
    finally:
        if temporary.exists():
            temporary.unlink()
    notes = data.left_out + [note for section in data.sections for note in section.notes]
    return ReportSummary(str(page), page.stat().st_size, data.crops, data.hours, [s.key for s in data.sections],
                         notes, request.embed_audio)
