"""`etl report` on the store built by the real pipeline from real music: every number on the page is
checked against the store itself, what a section needs and lacks is said in a note, and the page
names no resource outside itself and the store's files. Rendering in a real browser: test_report_browser.py.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.helpers import ITEMS_FAILED, crops, etl, rows

_SPEC = re.compile(r'<script type="application/json" id="spec-([^"]+)">(.*?)</script>', re.S)
_AUDIO = re.compile(r'<audio controls preload="metadata" src="([^"]+)">')


def report(store: Path, out: Path, *args: str, check: bool = True) -> Any:
    result = etl("report", "--out", str(out), "--json", *args, db=store, check=check, timeout=300)
    return json.loads(result.stdout) if check else result


def specs(page: Path) -> dict[str, dict[str, Any]]:
    return {key: json.loads(text) for key, text in _SPEC.findall(page.read_text(encoding="utf-8"))}


def dataset(spec: Any, field: str) -> list[dict[str, Any]]:
    """The chart's rows holding `field`, wherever Altair put them (`data.values`, or `datasets` by hash)."""
    def walk(node: Any) -> list[list[dict[str, Any]]]:
        if isinstance(node, list):
            if node and isinstance(node[0], dict) and field in node[0]:
                return [node]
            return [found for item in node for found in walk(item)]
        if isinstance(node, dict):
            return [found for value in node.values() for found in walk(value)]
        return []

    found = walk(spec)
    assert len(found) == 1, f"expected one dataset with {field}, got {len(found)}"
    return found[0]


def table_crop_ids(page: Path, key: str) -> list[str]:
    html = page.read_text(encoding="utf-8")
    table = re.search(rf'<table class="crops" id="crops-{key}">(.*?)</table>', html, re.S)
    assert table, f"no crop table {key}"
    return re.findall(r'data-crop-id="([^"]+)"', table.group(1))


def test_page_numbers_are_the_stores(store: Path, tmp_path: Path) -> None:
    summary = report(store, tmp_path / "report")
    page = Path(summary["path"])
    assert page == tmp_path / "report" / "index.html" and page.stat().st_size == summary["bytes"]
    every = crops(store)
    assert summary["crops"] == len(every)
    assert summary["hours"]["crop_hours"] == pytest.approx(sum(r["duration_s"] for r in every) / 3600)
    [tracks] = rows(store, "SELECT count(*) AS n, sum(duration_s) / 3600 AS h FROM tracks_v")
    assert (summary["hours"]["tracks"], summary["hours"]["track_hours"]) == (tracks["n"], pytest.approx(tracks["h"]))
    charts = specs(page)

    # BPM histogram: round bin widths, each bar (and its relation segment) the store's count in that bin.
    bars = dataset(charts["hist-crops-bpm"], "bin_start")
    width = bars[0]["bin_end"] - bars[0]["bin_start"]
    assert round(width / 10 ** math.floor(math.log10(width)), 9) in (1, 2, 5)
    for bar in bars:
        inside = [r for r in every if bar["bin_start"] <= r["bpm"] < bar["bin_end"] + 1e-9
                  and r["bpm_relation"] == bar["group"]]
        assert bar["n"] == len(inside), bar
    assert sum(b["n"] for b in bars) == len(every)

    # Camelot wheel: all 24 keys, counts as in the store.
    wheel = dataset(charts["camelot"], "code")
    assert len(wheel) == 24 and len({w["code"] for w in wheel}) == 24
    counted = Counter(r["key_camelot"] for r in every if r["key_camelot"])
    assert {w["code"]: w["n"] for w in wheel if w["n"]} == counted
    assert all(r["key_name"] == next(w["key_name"] for w in wheel if w["code"] == r["key_camelot"])
               for r in every if r["key_camelot"])

    # Genre tags: top-N bars; the BPM × genre map covers every tagged crop.
    genres = Counter(r["genre"] for r in every if r["genre"])
    assert {b["label"]: b["n"] for b in dataset(charts["top-genre"], "label")} == genres
    assert sum(c["n"] for c in dataset(charts["bpm-genre"], "genre")) == sum(genres.values())

    # The default scatter: bpm against integrated loudness, one point per crop (fewer than --points).
    points = dataset(charts["scatter"], "x")
    assert sorted((p["crop_id"], p["x"], p["y"]) for p in points) == sorted(
        (r["crop_id"], pytest.approx(r["bpm"]), pytest.approx(r["loudness_integrated_lufs"])) for r in every)

    # Outliers: the quietest in order; samples: 12 crops, each a player linked relative to the page.
    quietest = sorted((r for r in every if r["loudness_integrated_lufs"] is not None),
                      key=lambda r: (r["loudness_integrated_lufs"], r["crop_id"]))
    assert table_crop_ids(page, "quietest") == [r["crop_id"] for r in quietest[:5]]
    assert len(table_crop_ids(page, "samples")) == min(12, len(every))
    paths = {r["crop_id"]: r["path"] for r in every}
    sources = _AUDIO.findall(page.read_text(encoding="utf-8"))
    assert sources and all(not s.startswith(("/", "data:", "file:")) for s in sources)
    assert {str((page.parent / unquote(s)).resolve()) for s in sources} <= set(paths.values())


def test_page_needs_nothing_outside(store: Path, tmp_path: Path) -> None:
    """No script, style, font or image from elsewhere: the page works from file:// with no network."""
    page = Path(report(store, tmp_path / "r")["path"])
    html = page.read_text(encoding="utf-8")
    # The markup, with the scripts' bodies taken out (the Vega bundle's JavaScript holds HTML in strings).
    markup = re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S)
    assert not re.search(r"<(script|link|img|iframe|source|object|embed)\b[^>]*\s(src|href|data)=", markup)
    assert not re.search(r'(src|href)="(https?:)?//', markup)
    assert not re.search(r"@import|url\(", markup)
    assert re.search(r"<script>\s*// vega, vega-lite v6", html) and "</html>" in html


def test_sections_left_out_say_why(store: Path, tmp_path: Path) -> None:
    """A column crops_v lacks, or that is NULL for every crop, leaves its part out with a note saying which."""
    summary = report(store, tmp_path / "r")
    notes = summary["left_out"]
    columns = {r["column_name"] for r in rows(store, "DESCRIBE crops_v")}
    every = crops(store)
    for column, title in (("genre_top", "Genre (model)"), ("moods", "Moods"), ("aes_pq", "Aesthetics"),
                          ("caption", "caption"), ("chords", "chords"), ("midi_notes", "MIDI")):
        mentioned = [n for n in notes if n.startswith(title)]
        if column not in columns:
            expected = "crops_v has no column"
        elif all(r[column] is None for r in every):
            expected = "NULL for every selected crop"
        else:
            assert not mentioned, (column, notes)
            continue
        assert len(mentioned) == 1 and expected in mentioned[0] and column in mentioned[0], (column, notes)
    assert "samples" in summary["sections"] and "key" in summary["sections"]


def test_where_selects_the_crops_shown(store: Path, tmp_path: Path) -> None:
    # A struct literal's braces in --where are SQL, not a placeholder of the report's statements.
    summary = report(store, tmp_path / "r", "--where", "artist = $who AND {'b': bpm}.b > $low",
                     "-p", "who=Maxstack", "-p", "low=1", "--samples", "50")
    chosen = crops(store, "artist = 'Maxstack'")
    assert summary["crops"] == len(chosen) > 0 and summary["hours"]["tracks"] == 1
    page = Path(summary["path"])
    assert sorted(table_crop_ids(page, "samples")) == sorted(r["crop_id"] for r in chosen)
    assert "crops where" in page.read_text(encoding="utf-8")

    nothing = report(store, tmp_path / "none", "--where", "false")
    assert nothing["crops"] == 0 and nothing["sections"] == []
    assert any("no crop is selected" in note for note in nothing["left_out"])


def test_scatter_of_chosen_columns(store: Path, tmp_path: Path) -> None:
    summary = report(store, tmp_path / "r", "--x", "spectral_centroid_hz", "--y", "onset_rate_hz", "--points", "5")
    points = dataset(specs(Path(summary["path"]))["scatter"], "x")
    every = crops(store)
    assert len(points) == 5 and all(p["total"] == len(every) for p in points)
    by_id = {r["crop_id"]: r for r in every}
    assert all(p["x"] == pytest.approx(by_id[p["crop_id"]]["spectral_centroid_hz"]) for p in points)
    again = dataset(specs(Path(report(store, tmp_path / "r", "--x", "spectral_centroid_hz", "--y", "onset_rate_hz",
                                      "--points", "5")["path"]))["scatter"], "x")
    assert [p["crop_id"] for p in again] == [p["crop_id"] for p in points], "the sample must not change"


def test_embedded_audio_is_the_crop_files(store: Path, tmp_path: Path) -> None:
    summary = report(store, tmp_path / "r", "--embed-audio", "--samples", "2", "--outliers", "1")
    html = Path(summary["path"]).read_text(encoding="utf-8")
    sources = _AUDIO.findall(html)
    paths = {r["crop_id"]: Path(r["path"]) for r in crops(store)}
    shown = re.findall(r'<tr data-crop-id="([^"]+)">\s*<td><audio controls preload="metadata" src="([^"]+)">', html)
    assert len(shown) == len(sources) >= 2
    for crop_id, source in shown:
        mime, _, payload = source.partition(";base64,")
        assert mime == "data:audio/flac"
        assert base64.b64decode(payload) == paths[crop_id].read_bytes()


def test_refusals_are_one_line(store: Path, tmp_path: Path) -> None:
    def refused(*args: str) -> str:
        result = etl("report", *args, db=store)
        assert result.returncode == 1, result
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result.stderr

    assert "--out DIR required" in refused()
    assert "--where" in refused("--out", str(tmp_path / "a"), "--where", "1=1; DROP TABLE crops")
    assert "choose one of:" in refused("--out", str(tmp_path / "a"), "--x", "artist")
    assert "data folder" in refused("--out", str(store.parent / "etl-data"))
    assert not (tmp_path / "a").exists()

    foreign = tmp_path / "site"
    foreign.mkdir()
    (foreign / "index.html").write_text("<html>someone's page</html>")
    assert "not written by etl report" in refused("--out", str(foreign))
    assert (foreign / "index.html").read_text() == "<html>someone's page</html>"
    report(store, foreign, "--force")
    report(store, foreign)  # a report replaces the previous one without --force
    assert [p.name for p in foreign.iterdir()] == ["index.html"], "the temporary file was left behind"


def test_columns_of_later_stages_are_shown(store: Path, tmp_path: Path) -> None:
    """Columns that later stages add to crops_v (aesthetics, captions, chords, MIDI) appear once they hold
    values. A copy of the store whose crops_v carries such columns (made here from real columns, in the
    shape those stages' views give them) stands in for a store those stages filled."""
    import shutil

    import duckdb

    copy = tmp_path / "store" / "etl.duckdb"
    copy.parent.mkdir()
    shutil.copyfile(store, copy)
    midi = tmp_path / "midi" / "crop.mid"
    midi.parent.mkdir()
    midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0")
    with duckdb.connect(str(copy)) as con:
        # Those stages' columns where the store has them already are replaced.
        present = {name for (name,) in con.execute("SELECT column_name FROM (DESCRIBE crops_all_v)").fetchall()}
        replaced = [c for c in ("aes_pq", "aes_ce", "caption", "chords", "midi_path") if c in present]
        everything = f"* EXCLUDE ({', '.join(replaced)})" if replaced else "*"
        con.execute(f"""CREATE OR REPLACE VIEW crops_v AS
            SELECT {everything}, CASE WHEN crop_index % 2 = 0 THEN loudness_range_lu END AS aes_pq, NULL::DOUBLE AS aes_ce,
                   '<b>' || title || '</b></script> & more' AS caption, key_name AS chords,
                   '{midi}' AS midi_path
            FROM crops_all_v WHERE present""")
    summary = report(copy, tmp_path / "r", "--samples", "3")
    notes = summary["left_out"]
    assert "aesthetics" in summary["sections"]
    assert any(n.startswith("Content enjoyment: left out — aes_ce is NULL") for n in notes), notes
    assert not any(n.startswith(("Production quality", "caption", "chords", "midi_path")) for n in notes), notes
    page = Path(summary["path"])
    html = page.read_text(encoding="utf-8")
    assert "hist-crops-aes_pq" in specs(page)
    every = {r["crop_id"]: r for r in crops(store)}
    for crop_id in table_crop_ids(page, "samples"):
        title, key = every[crop_id]["title"], every[crop_id]["key_name"]
        assert f"&lt;b&gt;{title}&lt;/b&gt;&lt;/script&gt; &amp; more" in html  # text, never markup
        assert f"<td>{key}</td>" in html
    assert '<a href="../midi/crop.mid" download="crop.mid">MIDI</a>' in html
    embedded = Path(report(copy, tmp_path / "e", "--samples", "1", "--outliers", "0", "--embed-audio")["path"])
    assert 'href="data:audio/midi;base64,TVRoZAAAAAYAAAABAeA=" download="crop.mid"' in embedded.read_text()


def test_failures_by_reason(tmp_path: Path) -> None:
    """Failed items are counted by stage and reason, one row per cause whatever the file's name."""
    from tests.helpers import write_tone

    music = tmp_path / "music"
    write_tone(music / "tone.wav")
    for name in ("a.mp3", "b.flac", "c d.ogg"):
        (music / name).write_text("some notes, not audio\n" * 50)
    db = tmp_path / "etl.duckdb"
    etl("run", "--source", str(music), "--stage", "ingest", db=db, check=True, ok=(ITEMS_FAILED,))
    failed = rows(db, "SELECT last_error FROM failures_v WHERE stage = 'ingest'")
    assert len(failed) == 3
    report(db, tmp_path / "r")
    html = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    table = re.search(r'<table class="failures">(.*?)</table>', html, re.S).group(1)
    cells = re.findall(r'<tr><td>ingest</td><td class="num">(\d+)</td><td>([^<]*)</td>', table)
    expected = Counter(r["last_error"].splitlines()[0] for r in failed)
    assert len(expected) == 1, "the three text files fail for one reason (their names differ)"
    assert {reason: int(n) for n, reason in cells} == expected
    assert "no crop is selected" in html
