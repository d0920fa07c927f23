"""Finding 1 (issue 10): a tag value that does not fit its typed column never stops a run."""

from __future__ import annotations

from pathlib import Path

from tests.audio_files import tag_file, write_format
from tests.helpers import etl, rows


def test_a_date_typed_into_the_track_number_is_kept_raw_and_the_run_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "music"
    odd_flac = write_format(src, "flac", "odd.flac", seconds=0.5)
    tag_file(odd_flac, "flac", {"artist": "Odd", "title": "Dated", "tracknumber": "20230101123"})
    odd_ogg = write_format(src, "ogg", "odd.ogg", seconds=0.6)
    tag_file(odd_ogg, "ogg", {"artist": "Odd", "title": "Dated Ogg", "tracknumber": "20230101123",
                              "date": "99999999", "bpm": "1e400"})
    fine = write_format(src, "flac", "fine.flac", seconds=0.7)
    tag_file(fine, "flac", {"artist": "Fine", "title": "Normal", "tracknumber": "3/12", "date": "2001"})
    db = tmp_path / "etl.duckdb"

    result = etl("run", "--source", str(src), "--stage", "ingest", "--stage", "metadata", "--workers", "1", db=db)
    assert result.returncode == 0, result.stderr
    assert "unexpected" not in result.stderr

    tags = {Path(r["path"]).name: r for r in rows(db, "SELECT v.path, v.artist, v.title, v.year, v.track_number, "
                                                      "g.track_total, v.bpm_tag, v.raw_tags FROM tracks_v v "
                                                      "JOIN track_tags g USING (track_id)")}
    assert set(tags) == {"odd.flac", "odd.ogg", "fine.flac"}
    for name in ("odd.flac", "odd.ogg"):
        assert tags[name]["artist"] == "Odd"
        assert tags[name]["track_number"] is None
        assert tags[name]["raw_tags"]["track"] == "20230101123"
    assert tags["odd.ogg"]["year"] is None and tags["odd.ogg"]["bpm_tag"] is None
    assert tags["odd.ogg"]["raw_tags"]["bpm"] == "1e400"
    assert (tags["fine.flac"]["title"], tags["fine.flac"]["track_number"], tags["fine.flac"]["track_total"],
            tags["fine.flac"]["year"]) == ("Normal", 3, 12, 2001)
    states = rows(db, "SELECT status, count(*) AS n FROM stage_items WHERE stage = 'metadata' GROUP BY status")
    assert states == [{"status": "done", "n": 3}]
