"""The report page: one HTML file with everything inline (styles, the Vega JavaScript, each chart's spec
and data), so it opens from file:// with no server and no network. Audio and MIDI are relative links
to the store's files, or the files' bytes themselves as data: URIs with --embed-audio.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from etl.read.report.gather import CropList, ReportData

GENERATOR = "music-etl report"  # the page's <meta name="generator">: what `--out` may replace
_MIME = {"flac": "audio/flac", "wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "mid": "audio/midi"}


def script_json(value: Any) -> str:
    """JSON to put inside a <script> element: `<`, `>` and `&` escaped, so a tag value holding
    `</script>` cannot close it."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def file_link(path: str | None, out_dir: Path, embed: bool, mime: str) -> str | None:
    """A URL for a store file seen from the page: relative to the page's folder, or the file's bytes."""
    if not path:
        return None
    if embed:
        try:
            payload = Path(path).read_bytes()
        except OSError:
            return None  # the page says the file is missing rather than failing the whole report
        return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"
    if not Path(path).is_file():
        return None  # a dangling link would only fail in the player
    return quote(os.path.relpath(path, out_dir))


def _number(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _labels(value: Any) -> str:
    if value is None:
        return ""
    return ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def crop_rows(crop_list: CropList, out_dir: Path, embed: bool) -> list[dict[str, Any]]:
    """What a crop table shows per crop: a player, who and where, and the facts its columns hold."""
    shown = []
    for row in crop_list.rows:
        fmt = str(row.get("format") or Path(str(row.get("path", ""))).suffix.lstrip("."))
        relation = row.get("bpm_relation")
        tempo = _number(row.get("bpm"))
        if row.get("bpm_crop") is not None:
            tempo += f" (crop {_number(row['bpm_crop'])}{', ' + relation if relation else ''})"
        loudness = " · ".join(part for part in (
            _number(row.get("loudness_integrated_lufs"), 1, " LUFS"), _number(row.get("loudness_range_lu"), 1, " LU"),
            _number(row.get("true_peak_dbtp"), 1, " dBTP"),
            f"clip {100 * row['clipping_ratio']:.3f} %" if row.get("clipping_ratio") else "") if part)
        labels = " · ".join(part for part in (
            _labels(row.get("genre")), _labels(row.get("genre_top")), _labels(row.get("moods")),
            _labels(row.get("instruments")), _labels(row.get("voice"))) if part)
        aesthetics = " ".join(f"{name.upper()} {row[f'aes_{name}']:.2f}" for name in ("ce", "cu", "pc", "pq")
                              if row.get(f"aes_{name}") is not None)
        shown.append({
            "crop_id": row.get("crop_id"),
            "audio": file_link(row.get("path"), out_dir, embed, _MIME.get(fmt, f"audio/{fmt}")),
            "who": " — ".join(str(v) for v in (row.get("artist"), row.get("title")) if v) or "(untagged)",
            "where": f"crop {row.get('crop_index')} at {_number(row.get('start_s'))} s, "
                     f"{_number(row.get('duration_s'))} s",
            "tempo": tempo,
            "key": f"{row['key_name']} ({row.get('key_camelot')})" if row.get("key_name") else "",
            "loudness": loudness,
            "labels": labels,
            "aesthetics": aesthetics,
            "caption": row.get("caption") or "",
            "chords": row.get("chords") or "",
            "midi": file_link(row.get("midi_path"), out_dir, embed, _MIME["mid"]),
            "midi_name": Path(str(row["midi_path"])).name if row.get("midi_path") else "",
        })
    return shown


def render(data: ReportData, specs: dict[str, dict[str, Any]], bundle: tuple[str, str], out_dir: Path,
           embed_audio: bool, db_path: Path) -> str:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    vl_version, javascript = bundle
    crop_tables = {crop_list.key: crop_rows(crop_list, out_dir, embed_audio)
                   for section in data.sections for crop_list in section.crop_lists}
    optional = {column: any(row[column] for rows in crop_tables.values() for row in rows)
                for column in ("aesthetics", "caption", "chords", "midi")}
    return environment.get_template("page.html.j2").render(
        data=data, specs={key: script_json(spec) for key, spec in specs.items()}, crop_tables=crop_tables,
        optional=optional, generator=GENERATOR, vl_version=vl_version,
        # An inline script ends at the first `</script`; the bundle is JavaScript, where `<\/` means `</`.
        javascript=javascript.replace("</script", "<\\/script"),
        db_name=db_path.name, embed_audio=embed_audio, params=script_json(data.params) if data.params else "")
