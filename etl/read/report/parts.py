"""What each stage adds to the report page, from its folder's report.toml (in registry order):

    [[sections]]                      # a section of histograms, one per column found
    key = "aesthetics"
    title = "Aesthetics (AudioBox)"
    histograms = [{column = "aes_ce", title = "Content enjoyment", unit = "score"}]

    [[labels]]                        # a top-N bar chart in "Genre, mood, instruments"
    column = "moods"
    title = "Moods"
    list = true                       # a list column: each value counts

    crop_columns = ["aes_ce"]         # shown in the crop tables (samples, outliers) when crops_v has them
    crop_facts = ["aes_pq"]           # ... and a note says why when one cannot be shown
    fills = ["bpm_crop"]              # other crops_v columns the built-in sections read (for that note)

Every key is optional. The built-in sections (tempo, duration, key, labels, BPM × genre, the scatter,
outliers, samples) are gather.py's; the stages' sections follow them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache


@dataclass(frozen=True)
class Histogram:
    column: str
    title: str
    unit: str
    group: str | None = None  # a column whose values split each bar


@dataclass(frozen=True)
class HistogramSection:
    key: str
    title: str
    histograms: tuple[Histogram, ...]


@dataclass(frozen=True)
class Label:
    column: str
    title: str
    is_list: bool = False


@dataclass(frozen=True)
class ReportParts:
    sections: tuple[HistogramSection, ...] = ()
    labels: tuple[Label, ...] = ()
    crop_columns: tuple[str, ...] = ()
    crop_facts: tuple[str, ...] = ()
    filled_by: dict[str, str] = field(default_factory=dict)  # crops_v column -> the stage that fills it


_KEYS = {"sections", "labels", "crop_columns", "crop_facts", "fills"}


def _stage_parts(stage: str, text: str, path: str) -> dict[str, list]:
    data = tomllib.loads(text)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key {', '.join(unknown)}; keys are {', '.join(sorted(_KEYS))}")
    sections = [HistogramSection(s["key"], s["title"], tuple(Histogram(**h) for h in s["histograms"]))
                for s in data.get("sections", [])]
    labels = [Label(label["column"], label["title"], bool(label.get("list", False))) for label in data.get("labels", [])]
    named = [h.column for s in sections for h in s.histograms] + [label.column for label in labels]
    columns = [*named, *data.get("crop_columns", []), *data.get("crop_facts", []), *data.get("fills", [])]
    return {"sections": sections, "labels": labels, "crop_columns": list(data.get("crop_columns", [])),
            "crop_facts": list(data.get("crop_facts", [])), "filled_by": [(c, stage) for c in columns]}


@cache
def report_parts() -> ReportParts:
    from etl.app import registry

    found: dict[str, list] = {"sections": [], "labels": [], "crop_columns": [], "crop_facts": [], "filled_by": []}
    for stage, folder in registry.folders():
        path = folder / "report.toml"
        if path.is_file():
            for name, values in _stage_parts(stage, path.read_text(encoding="utf-8"), str(path)).items():
                found[name].extend(values)
    return ReportParts(tuple(found["sections"]), tuple(found["labels"]), tuple(dict.fromkeys(found["crop_columns"])),
                       tuple(dict.fromkeys(found["crop_facts"])), dict(found["filled_by"]))
