"""Charts for `etl report`, drawn with Altair (Vega-Lite): each figure's rows (already aggregated in SQL)
become a Vega-Lite spec that vega-embed renders in the page. Altair is imported here only, when a
report is written.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from etl.read.report.gather import Figure

WIDTH_PX = 560
HEIGHT_PX = 240
CAMELOT_RADII_PX = (70, 125, 180)  # inner ring (A, minor) from the first to the second, B to the third


def _data(rows: list[dict[str, Any]]) -> Any:
    import altair as alt

    return alt.Data(values=[{k: _plain(v) for k, v in row.items()} for row in rows])


def _plain(value: Any) -> Any:
    """JSON-ready: a non-finite float (never expected from the SQL, which filters them) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def histogram(figure: Figure) -> Any:
    import altair as alt

    options = figure.options
    group = options.get("group")
    encoding: dict[str, Any] = {
        "x": alt.X("bin_start:Q", bin="binned", title=options["x"]),
        "x2": "bin_end:Q",
        "y": alt.Y("sum(n):Q", title=options["y"], stack="zero"),
        "tooltip": [alt.Tooltip("bin_start:Q", title="from"), alt.Tooltip("bin_end:Q", title="to"),
                    alt.Tooltip("n:Q", title=options["y"])],
    }
    if group:
        encoding["color"] = alt.Color("group:N", title=group)
        encoding["tooltip"].insert(0, alt.Tooltip("group:N", title=group))
    return alt.Chart(_data(figure.rows)).mark_bar().encode(**encoding)


def points(figure: Figure) -> Any:
    import altair as alt

    options = figure.options
    chart = alt.Chart(_data(figure.rows)).mark_circle(size=36, opacity=0.7).encode(
        x=alt.X("x:Q", title=options["x"], scale=alt.Scale(zero=False)),
        y=alt.Y("y:Q", title=options["y"], scale=alt.Scale(zero=False)),
        color=alt.Color("group:N", title=options["group"]),
        tooltip=["artist:N", "title:N", "crop_id:N", alt.Tooltip("x:Q", title=options["x"]),
                 alt.Tooltip("y:Q", title=options["y"])],
    )
    if not options.get("octave_lines") or not figure.rows:
        return chart
    low = min(r["x"] for r in figure.rows)
    high = max(r["x"] for r in figure.rows)
    lines = [{"relation": name, "x": x, "y": x * factor}
             for name, factor in (("same", 1.0), ("double", 2.0), ("half", 0.5)) for x in (low, high)]
    guide = alt.Chart(alt.Data(values=lines)).mark_line(strokeDash=[4, 4], color="#888").encode(
        x="x:Q", y="y:Q", detail="relation:N")
    return alt.layer(guide, chart)


def _short_key(name: str) -> str:
    """"A minor" -> "Am", "C# major" -> "C#"."""
    tonic, _, mode = name.partition(" ")
    return tonic + ("m" if mode == "minor" else "")


def camelot(figure: Figure) -> Any:
    """The Camelot wheel: 12 hours clockwise from the top, minor keys (A) inside, major (B) outside."""
    import altair as alt

    inner, middle, outer = CAMELOT_RADII_PX
    rows = [{**row, "start": row["hour"] - 0.5, "end": row["hour"] + 0.5,
             "r0": inner if row["ring"] == "A" else middle, "r1": middle if row["ring"] == "A" else outer,
             "label_r": (inner + middle) / 2 if row["ring"] == "A" else (middle + outer) / 2,
             "label": f"{row['code']}\n{_short_key(row['key_name'])}"}
            for row in figure.rows]
    base = alt.Chart(_data(rows))
    angle = alt.Scale(domain=[0, 12], range=[0, 2 * math.pi])
    arcs = base.mark_arc(stroke="white", strokeWidth=1.5).encode(
        theta=alt.Theta("start:Q", scale=angle), theta2="end:Q",
        radius=alt.Radius("r0:Q", scale=None), radius2="r1:Q",
        color=alt.Color("n:Q", title="crops", scale=alt.Scale(scheme="blues")),
        tooltip=["code:N", "key_name:N", alt.Tooltip("n:Q", title="crops")],
    )
    labels = base.mark_text(fontSize=11, lineBreak="\n").encode(
        theta=alt.Theta("hour:Q", scale=angle), radius=alt.Radius("label_r:Q", scale=None), text="label:N",
        tooltip=["code:N", "key_name:N", alt.Tooltip("n:Q", title="crops")],
    )
    return alt.layer(arcs, labels).properties(width=2 * outer + 20, height=2 * outer + 20)


def bars(figure: Figure) -> Any:
    import altair as alt

    return alt.Chart(_data(figure.rows)).mark_bar().encode(
        x=alt.X("n:Q", title=figure.options["x"]),
        y=alt.Y("label:N", sort="-x", title=None),
        tooltip=[alt.Tooltip("label:N", title=figure.options["y"]), alt.Tooltip("n:Q", title="crops")],
    ).properties(height=alt.Step(18))


def heatmap(figure: Figure) -> Any:
    import altair as alt

    order = list(dict.fromkeys(r["genre"] for r in figure.rows))  # by crops, as the SQL sorted them
    return alt.Chart(_data(figure.rows)).mark_rect().encode(
        x=alt.X("bpm_start:Q", bin="binned", title=figure.options["x"]),
        x2="bpm_end:Q",
        y=alt.Y("genre:N", sort=order, title=None),
        color=alt.Color("n:Q", title="crops", scale=alt.Scale(scheme="viridis", zero=True)),
        tooltip=["genre:N", alt.Tooltip("bpm_start:Q", title="BPM from"), alt.Tooltip("bpm_end:Q", title="to"),
                 alt.Tooltip("n:Q", title="crops")],
    ).properties(height=alt.Step(20))


_DRAW = {"histogram": histogram, "points": points, "camelot": camelot, "bars": bars, "heatmap": heatmap}


def spec(figure: Figure) -> dict[str, Any]:
    """The figure's Vega-Lite spec (a dict, data inline)."""
    chart = _DRAW[figure.kind](figure)
    if figure.kind not in ("camelot",):
        chart = chart.properties(width=WIDTH_PX)
        if figure.kind in ("histogram", "points"):
            chart = chart.properties(height=HEIGHT_PX)
    return chart.properties(title=figure.title).to_dict()


def javascript_bundle() -> tuple[str, str]:
    """(Vega-Lite version, the vega + vega-lite + vega-embed JavaScript as one script) that vl-convert
    ships, for the version Altair writes: the page needs no network.

    vl-convert builds the bundle on every call (~2 s, 6 s on a busy machine) and always the same for
    one vl-convert and Vega-Lite version, so it is kept in the user's cache folder under those versions.
    """
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    version = vl_version_for_vl_convert()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "music-etl" / "vega"
    cached = cache / f"vega-embed-vl-convert-{vl_convert.__version__}-vl-{version}.js"
    try:
        return version, cached.read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        pass
    bundle = vl_convert.javascript_bundle(vl_version=version)
    try:  # no cache (a read-only home) only costs the time
        cache.mkdir(parents=True, exist_ok=True)
        temporary = cache / f".{cached.name}.tmp-{os.getpid()}"
        temporary.write_text(bundle, encoding="utf-8")
        os.replace(temporary, cached)
    except OSError:
        pass
    return version, bundle
