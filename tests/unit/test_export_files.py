"""Placing crop files into an export (etl/read/export/files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.engine.errors import ExportError
from etl.read.export.files import place


@pytest.mark.parametrize("mode", ["link", "copy"])
def test_a_missing_crop_file_is_a_one_line_export_error(tmp_path: Path, mode: str) -> None:
    """A store whose data folder lost a crop file gave `unexpected FileNotFoundError` (found by
    bench/query.py's synthetic store): the export says which file is missing and why it stops."""
    missing = tmp_path / "etl-data" / "crops" / "ab" / "crop0.flac"
    with pytest.raises(ExportError, match=r"crop file .*crop0\.flac.* is missing"):
        place(missing, tmp_path / "out" / "audio" / "crop0.flac", mode)


def test_a_crop_file_is_linked(tmp_path: Path) -> None:
    source = tmp_path / "crop.flac"
    source.write_bytes(b"fLaC")
    place(source, tmp_path / "out" / "crop.flac", "link")
    assert (tmp_path / "out" / "crop.flac").stat().st_ino == source.stat().st_ino
