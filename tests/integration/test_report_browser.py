"""`etl report`'s page in a real browser: headless Chromium opens it from file:// (no server, no
network) and the tests check that every chart rendered (vega's <svg> with marks in each chart's div),
that nothing was written to the console, and that the crops' audio loads (readyState reaches
HAVE_METADATA), with relative links to the crop files and with --embed-audio. A screenshot of each
page is saved in the test's tmp folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium, console_errors, wait_for
from tests.helpers import etl

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HAVE_METADATA = 1
_CHARTS = """return [...document.querySelectorAll('div.chart')].map(holder => ({
    id: holder.id, rendered: holder.dataset.rendered || null,
    svg: holder.querySelectorAll('svg').length,
    marks: holder.querySelectorAll('svg g.mark-rect path, svg g.mark-symbol path, svg g.mark-arc path').length}))"""
_AUDIO = """return [...document.querySelectorAll('audio')].map(a => ({
    src: a.currentSrc.slice(0, 40), ready: a.readyState, error: a.error && a.error.code,
    duration: a.duration}))"""


def open_report(driver, page: Path, screenshot: Path) -> tuple[list[dict], list[dict]]:
    driver.get(page.as_uri())
    charts = wait_for(lambda: (lambda found: found if found and all(c["rendered"] for c in found) else None)(
        driver.execute_script(_CHARTS)), what="every chart to render")
    audio = wait_for(lambda: (lambda found: found if all(a["ready"] >= HAVE_METADATA or a["error"] for a in found)
                              else None)(driver.execute_script(_AUDIO)), what="the audio's metadata")
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, min(height, 8000))
    driver.save_screenshot(str(screenshot))
    return charts, audio


def check_page(driver, page: Path, screenshot: Path, embedded: bool) -> None:
    charts, audio = open_report(driver, page, screenshot)
    assert len(charts) >= 8, charts  # tempo, octave, loudness ×3, durations ×2, wheel, genre, heat map, scatter
    for chart in charts:
        assert chart["rendered"] == "true" and chart["svg"] >= 1 and chart["marks"] >= 1, chart
    assert len(audio) >= 12, audio
    for player in audio:
        assert player["error"] is None and player["ready"] >= HAVE_METADATA, player
        assert player["duration"] > 1, player  # the crop's length is known: its header was read
        assert player["src"].startswith("data:audio/flac;base64," if embedded else "file:///"), player
    assert console_errors(driver) == []
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_renders_and_plays_in_chromium(store: Path, tmp_path: Path) -> None:
    linked, embedded = tmp_path / "linked", tmp_path / "embedded"
    etl("report", "--out", str(linked), db=store, check=True, timeout=300)
    etl("report", "--out", str(embedded), "--embed-audio", db=store, check=True, timeout=300)
    with chromium() as driver:
        check_page(driver, linked / "index.html", tmp_path / "report.png", embedded=False)
        check_page(driver, embedded / "index.html", tmp_path / "report-embedded.png", embedded=True)


def test_broken_chart_is_seen(store: Path, tmp_path: Path) -> None:
    """The checks above can fail: a spec vega cannot draw is logged to the console and marked."""
    etl("report", "--out", str(tmp_path / "r"), "--samples", "1", "--outliers", "0", db=store, check=True,
        timeout=300)
    page = tmp_path / "r" / "index.html"
    html = page.read_text(encoding="utf-8")
    page.write_text(html.replace('"mark":{"type":"bar"}', '"mark":{"type":"no-such-mark"}', 1), encoding="utf-8")
    with chromium() as driver:
        charts, _ = open_report(driver, page, tmp_path / "broken.png")
        assert [c["rendered"] for c in charts].count("error") == 1
        assert console_errors(driver)
