"""What the report shows, read from the store: every number comes from a statement of sql/report/*.sql,
run in the read-only sandbox over the crops `--where` selects, aggregated there (a page about a million
crops stays the size of one about ten).

Which sections appear follows the columns this store's crops_v has, and what each stage's report.toml
adds (parts.py): its histogram sections, label charts and crop-table columns. A section, chart or crop column whose columns are
absent, or NULL for every selected crop, is left out with a one-line note saying which and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from etl.engine.errors import QueryError
from etl.engine.resources import sql, used_binds
from etl.read.readonly import bind, check_condition
from etl.read.report.parts import Histogram, report_parts

_NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|"
                      r"REAL|DECIMAL.*)$")
# Per-beat and per-frame lists (beat times, time series, MFCC and chroma means): no chart reads them.
_NUMBER_LIST = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|FLOAT|DOUBLE)\[\]$")
HISTOGRAM_BINS = 40
BPM_STEP = 5  # BPM bins of the BPM × genre heat map


@dataclass(frozen=True)
class CropListSpec:
    statement: str  # in sql/report/crops.sql
    title: str
    needs: tuple[str, ...]
    caption: str


OUTLIERS = [
    CropListSpec("quietest", "Quietest", ("loudness_integrated_lufs",), "lowest integrated loudness"),
    CropListSpec("loudest", "Loudest", ("loudness_integrated_lufs",), "highest integrated loudness"),
    CropListSpec("most_clipped", "Most clipped", ("clipping_ratio", "true_peak_dbtp"),
                 "largest share of samples at or above −0.01 dBFS"),
    CropListSpec("tempo_disagreements", "Tempo disagreements", ("bpm_relation", "bpm_crop", "bpm"),
                 "the crop's own BPM estimate against the beat grid's: unrelated first, then octave errors"),
]
# The crop columns every crop table starts with; the stages' (their report.toml's crop_columns) follow,
# and those crops_v lacks are left out of the SELECT.
CROP_COLUMNS = ["crop_id", "path", "format", "crop_index", "start_s", "duration_s", "bpm"]


@dataclass
class Figure:
    """One chart: its kind (how charts.py draws it), its rows (from SQL) and its labels."""

    key: str
    kind: str  # histogram | points | camelot | bars | heatmap
    title: str
    rows: list[dict[str, Any]]
    caption: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class CropList:
    key: str
    title: str
    caption: str
    rows: list[dict[str, Any]]


@dataclass
class Section:
    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    crop_lists: list[CropList] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # parts left out, one line each

    @property
    def empty(self) -> bool:
        return not self.figures and not self.crop_lists


@dataclass
class ReportData:
    where: str | None
    params: dict[str, Any]
    columns: dict[str, str]       # crops_v's columns and types
    non_null: dict[str, int]      # selected crops with a value, per column
    hours: dict[str, Any]
    stages: list[dict[str, Any]]  # `etl status` rows
    failures: list[dict[str, Any]]
    sections: list[Section] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # whole sections left out, one line each

    @property
    def crops(self) -> int:
        return int(self.hours.get("crops") or 0)


@dataclass(frozen=True)
class Selection:
    """The crops a report is about: a condition over crops_v (through the read-only gate) and its binds."""

    where: str
    params: dict[str, Any]
    filtered: bool

    @classmethod
    def of(cls, where: str | None, params: dict[str, Any] | None) -> Selection:
        condition = where.strip() if where and where.strip() else "true"
        try:
            binds = bind(check_condition(condition, "crops_v AS c"), params or {})
        except QueryError as error:
            raise QueryError(f"--where: {error}") from None
        return cls(condition, binds, condition != "true")


def quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(template: str, splices: dict[str, str]) -> str:
    """Put the splices into the template's `{name}`s in one pass, so that text spliced in (a --where
    holding a `{...}` struct) is never taken for a placeholder."""
    return _PLACEHOLDER.sub(lambda m: splices[m.group(1)], template)


class Gatherer:
    """Runs the report's statements over one sandboxed connection."""

    def __init__(self, con: Any, selection: Selection, top: int, points: int) -> None:
        self.con = con
        self.selection = selection
        self.binds = {**selection.params, "report_filtered": selection.filtered, "report_top": top,
                      "report_points": points, "report_bins": HISTOGRAM_BINS,
                      "report_bpm_step": BPM_STEP}
        self.selected = "SELECT * FROM report_selected"  # made by `probe`
        self.columns: dict[str, str] = {}
        self.non_null: dict[str, int] = {}

    def statement(self, file: str, name: str, **splices: str) -> str:
        tracks = fill(sql("report/store.sql", "selected_tracks"), {"selected": self.selected})
        return fill(sql(f"report/{file}", name), {"selected": self.selected, "selected_tracks": tracks, **splices})

    def tuples(self, file: str, name: str, binds: dict[str, Any] | None = None,
               **splices: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        text = self.statement(file, name, **splices)
        try:
            cursor = self.con.execute(text, used_binds(text, {**self.binds, **(binds or {})}))
            return [d[0] for d in cursor.description], cursor.fetchall()
        except Exception as error:  # duckdb's errors (a --where naming no column): one line
            raise QueryError(str(error).splitlines()[0]) from None

    def rows(self, file: str, name: str, binds: dict[str, Any] | None = None, **splices: str) -> list[dict[str, Any]]:
        names, found = self.tuples(file, name, binds, **splices)
        return [dict(zip(names, row)) for row in found]

    # --- what the store holds ----------------------------------------------------------------------

    def probe(self) -> None:
        """What crops_v holds, the selected crops into `report_selected`, and how many values each column has."""
        columns = {r["column_name"]: r["column_type"] for r in self.rows("store.sql", "columns")}
        unshown = [quoted(c) for c, kind in columns.items() if _NUMBER_LIST.match(kind)]
        self.rows("store.sql", "select", where=self.selection.where,
                  projection=f"* EXCLUDE ({', '.join(unshown)})" if unshown else "*")
        # By position: the counts come in the temporary table's column order (names may repeat).
        kept = [name for (name, _kind) in self.tuples("store.sql", "selected_columns")[1]]
        _names, [counts] = self.tuples("store.sql", "non_null")
        self.columns = {name: columns[name] for name in kept}
        self.non_null = dict(zip(kept, counts))

    def missing(self, *columns: str) -> str | None:
        """Why these columns cannot be shown (absent, or NULL for every selected crop); None if they can."""
        absent = [c for c in columns if c not in self.columns]
        if absent:
            filled_by = report_parts().filled_by
            stages = sorted({filled_by[c] for c in absent if c in filled_by})
            by = f" (filled by the {', '.join(stages)} stage{'s' if len(stages) > 1 else ''})" if stages else ""
            return f"crops_v has no column {', '.join(absent)}{by}"
        empty = [c for c in columns if not self.non_null.get(c)]
        if empty:
            return f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} NULL for every selected crop"
        return None

    def is_numeric(self, column: str) -> bool:
        return bool(_NUMERIC.match(self.columns.get(column, "")))

    # --- sections ------------------------------------------------------------------------------------

    def histogram(self, spec: Histogram, source: str = "crops") -> Figure:
        group = quoted(spec.group) if spec.group else "NULL::VARCHAR"
        from_ = self.selected if source == "crops" else self.statement("store.sql", "selected_tracks")
        rows = self.rows("charts.sql", "histogram", value=quoted(spec.column), group=group, source=from_)
        return Figure(f"hist-{source}-{spec.column}", "histogram", spec.title, rows,
                      options={"x": f"{spec.column} ({spec.unit})", "y": source, "group": spec.group})

    def histograms(self, key: str, title: str, specs: list[Histogram]) -> Section | str:
        if all(self.missing(spec.column) for spec in specs):  # the whole section: one line
            return f"{title}: left out — {self.missing(*(spec.column for spec in specs))}"
        section = Section(key, title)
        for spec in specs:
            why = self.missing(spec.column)
            if why:
                section.notes.append(f"{spec.title}: left out — {why}")
            else:
                section.figures.append(self.histogram(spec))
        return section

    def tempo(self) -> Section | str:
        if self.missing("bpm"):
            return f"Tempo: left out — {self.missing('bpm')}"
        section = Section("tempo", "Tempo")
        relation = None if self.missing("bpm_relation") else "bpm_relation"
        section.figures.append(self.histogram(Histogram("bpm", "BPM (beat grid, over each crop's beats)", "BPM",
                                                        relation)))
        why = self.missing("bpm_crop", "bpm_relation")
        if why:
            section.notes.append(f"Tempo-octave relation: left out — {why}")
        else:
            rows = self.rows("charts.sql", "points", x=quoted("bpm"), y=quoted("bpm_crop"),
                             group=quoted("bpm_relation"))
            section.figures.append(Figure(
                "tempo-octave", "points", "The crop's own BPM against the beat grid's", rows,
                caption="Each point a crop; the lines are the same tempo, double and half: points on a side line "
                        "are tempo-octave errors of one estimate or the other.",
                options={"x": "beat grid BPM (bpm)", "y": "crop's own estimate (bpm_crop)", "group": "bpm_relation",
                         "octave_lines": True}))
        return section

    def duration(self) -> Section:
        section = Section("duration", "Duration")
        section.figures.append(self.histogram(Histogram("duration_s", "Crop duration", "s")))
        section.figures.append(self.histogram(Histogram("duration_s", "Track duration", "s"), source="tracks"))
        return section

    def key(self) -> Section | str:
        if self.missing("key_camelot"):
            return f"Key: left out — {self.missing('key_camelot')}"
        section = Section("key", "Key")
        rows = self.rows("charts.sql", "camelot")
        section.figures.append(Figure("camelot", "camelot", "Keys on the Camelot wheel", rows,
                                      caption="Inner ring minor (A), outer ring major (B); neighbours are a fifth "
                                              "apart. Colour: crops in that key (NULL keys, too weak to call, "
                                              f"left out: {self.non_null.get('key_camelot', 0):,} of "
                                              f"{self.non_null.get('crop_id', 0):,} crops have one)."))
        return section

    def labels(self) -> Section:
        section = Section("labels", "Genre, mood, instruments")
        for label in report_parts().labels:
            why = self.missing(label.column)
            if why:
                section.notes.append(f"{label.title}: left out — {why}")
                continue
            rows = self.rows("charts.sql", "top_list_values" if label.is_list else "top_values",
                             value=quoted(label.column))
            section.figures.append(Figure(f"top-{label.column}", "bars", label.title, rows,
                                          options={"x": "crops", "y": label.column}))
        return section

    def bpm_by_genre(self) -> Section | str:
        if self.missing("bpm"):
            return f"BPM × genre: left out — {self.missing('bpm')}"
        # The tag, else the model's label as exports write it ("Electronic---House": "Electronic / House").
        parts = [expression for column, expression in (("genre", "genre"),
                                                       ("genre_top", "replace(genre_top, '---', ' / ')"))
                 if not self.missing(column)]
        if not parts:
            return f"BPM × genre: left out — {self.missing('genre')} and {self.missing('genre_top')}"
        genre = f"coalesce({', '.join(parts)})"
        rows = self.rows("charts.sql", "bpm_by_genre", genre=genre)
        return Section("bpm-genre", "BPM × genre", figures=[Figure(
            "bpm-genre", "heatmap", "Crops per BPM and genre", rows,
            caption=f"The most frequent genres; the tag where the file has one, else the genre model's top label. "
                    f"BPM bins of {BPM_STEP}.", options={"x": "BPM", "y": "genre"})])

    def check_axes(self, x: str, y: str) -> None:
        for axis, column in (("--x", x), ("--y", y)):
            if column not in self.columns or not self.is_numeric(column):
                numeric = [c for c in self.columns if self.is_numeric(c)]
                raise QueryError(f"{axis} {column!r} is not a numeric column of crops_v; choose one of: "
                                 f"{', '.join(numeric)}")

    def scatter(self, x: str, y: str) -> Section:
        section = Section("scatter", f"{x} × {y}")
        why = self.missing(x, y)
        if why:
            section.notes.append(f"Scatter of {x} and {y}: left out — {why}")
            return section
        group = "coalesce(genre, 'untagged')" if "genre" in self.columns else "NULL::VARCHAR"
        rows = self.rows("charts.sql", "points", x=quoted(x), y=quoted(y), group=group)
        section.figures.append(Figure("scatter", "points", f"{y} against {x}", rows,
                                      options={"x": x, "y": y, "group": "genre (tag)"}))
        return section

    def crop_columns(self) -> str:
        shown = dict.fromkeys([*CROP_COLUMNS, *report_parts().crop_columns])
        return ", ".join(quoted(c) for c in shown if c in self.columns)

    def outliers(self, count: int) -> Section:
        section = Section("outliers", "Outliers worth a listen")
        for spec in OUTLIERS:
            why = self.missing(*spec.needs)
            if why:
                section.notes.append(f"{spec.title}: left out — {why}")
                continue
            rows = self.rows("crops.sql", spec.statement, {"report_rows": count}, columns=self.crop_columns())
            if not rows:
                section.notes.append(f"{spec.title}: no selected crop qualifies ({spec.caption})")
                continue
            section.crop_lists.append(CropList(spec.statement, spec.title, spec.caption, rows))
        return section

    def samples(self, count: int) -> Section:
        section = Section("samples", "Sample crops")
        rows = self.rows("crops.sql", "samples", {"report_rows": count}, columns=self.crop_columns())
        section.crop_lists.append(CropList("samples", "Sample", "the same crops every time (by a hash of their id)",
                                           rows))
        for column in report_parts().crop_facts:
            why = self.missing(column)
            if why:
                section.notes.append(f"{column} column: left out — {why}")
        return section


def gather(con: Any, selection: Selection, stages: list[dict[str, Any]], x: str, y: str, top: int, points: int,
           samples: int, outliers: int) -> ReportData:
    g = Gatherer(con, selection, top, points)
    g.probe()
    g.check_axes(x, y)
    [hours] = g.rows("store.sql", "hours")
    data = ReportData(selection.where if selection.filtered else None, selection.params, g.columns, g.non_null,
                      hours, stages, g.rows("store.sql", "failures"))
    if not data.crops:
        data.left_out.append("Every chart and crop table: left out — no crop is selected"
                             + (" (check --where with `etl query`)" if selection.filtered else " (run the crops stage)"))
        return data

    def add(section: Section | str) -> None:
        if isinstance(section, str):  # the whole section left out: the line says why
            data.left_out.append(section)
        elif section.empty:  # every part of it left out: their lines
            data.left_out.extend(section.notes)
        else:
            data.sections.append(section)

    add(g.tempo())
    add(g.duration())
    add(g.key())
    add(g.labels())
    add(g.bpm_by_genre())
    add(g.scatter(x, y))
    for part in report_parts().sections:  # the stages' own, in registry order
        add(g.histograms(part.key, part.title, list(part.histograms)))
    if outliers:
        add(g.outliers(outliers))
    else:
        data.left_out.append("Outliers worth a listen: left out — --outliers 0")
    if samples:
        add(g.samples(samples))
    else:
        data.left_out.append("Sample crops: left out — --samples 0")
    return data
