"""The report's text handling: what goes into a <script>, into a statement, into a link."""

from __future__ import annotations

import json
from pathlib import Path

from etl.read.report.gather import fill
from etl.read.report.page import file_link, script_json


def test_script_json_cannot_close_its_script() -> None:
    value = {"title": "</script><script>alert(1)</script>", "artist": "<!-- & -->", "n": 3}
    text = script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def test_splices_are_filled_once() -> None:
    """Text spliced in (a --where holding a struct literal's braces) is never taken for a placeholder."""
    template = "SELECT {value} FROM ({selected}) WHERE {value} > 0"
    filled = fill(template, {"selected": "SELECT * FROM crops_v WHERE ({'value': bpm}.value > 1)", "value": '"bpm"'})
    assert filled == """SELECT "bpm" FROM (SELECT * FROM crops_v WHERE ({'value': bpm}.value > 1)) WHERE "bpm" > 0"""


def test_links_are_relative_and_quoted(tmp_path: Path) -> None:
    crop = tmp_path / "data" / "crops" / "a b#1.flac"
    crop.parent.mkdir(parents=True)
    crop.write_bytes(b"fLaC-not-really")
    out = tmp_path / "report"
    assert file_link(str(crop), out, embed=False, mime="audio/flac") == "../data/crops/a%20b%231.flac"
    assert file_link(str(crop), out, embed=True, mime="audio/flac") == "data:audio/flac;base64,ZkxhQy1ub3QtcmVhbGx5"
    for embed in (True, False):  # the page says "file missing" rather than link nothing
        assert file_link(str(tmp_path / "gone.flac"), out, embed=embed, mime="audio/flac") is None
    assert file_link(None, out, embed=False, mime="audio/flac") is None
