"""Probing, hashing and the bad-input zoo, on the pure worker function."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from etl.engine.errors import BadInput, SkipItem, TransientError
from etl.stages import ingest
from tests.audio_files import write_format
from tests.helpers import corpus, refuse_listing, write_tone

PARAMS = ingest.Params()


def run(path: Path, scan_error: str | None = None) -> dict:
    return ingest.process({"item_id": str(path), "path": str(path), "scan_error": scan_error}, PARAMS)


@pytest.mark.parametrize("kind, container, codec", [
    ("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"),
    ("opus", "OGG", "OPUS"), ("mp3", "MP3", "MPEG_LAYER_III"), ("m4a", "MP4", "mp4a.40.2"),
])
def test_probes_every_container(tmp_path: Path, kind: str, container: str, codec: str) -> None:
    path = write_format(tmp_path, kind, seconds=2.0)
    result = run(path)
    assert (result["container"], result["codec"]) == (container, codec)
    assert result["duration_s"] == pytest.approx(2.0, abs=0.1)
    assert result["channels"] == 2
    assert result["sample_rate"] in (44100, 48000)
    assert len(result["track_id"]) == 64 and result["size_bytes"] == path.stat().st_size
    assert result["bit_rate_kbps"] > 0
    assert result["decode_checked"] == (kind != "m4a")


def test_recognises_audio_by_content_not_extension(tmp_path: Path) -> None:
    flac = write_format(tmp_path, "flac")
    disguised = tmp_path / "actually_flac.mp3"
    shutil.copyfile(flac, disguised)
    no_extension = tmp_path / "no_extension"
    shutil.copyfile(flac, no_extension)
    assert run(disguised)["container"] == "FLAC"
    assert run(no_extension)["container"] == "FLAC"
    assert run(disguised)["track_id"] == run(flac)["track_id"]


def test_real_recordings(tmp_path: Path) -> None:
    mp3 = run(corpus("mp3_tagged", "sectoid_feelings_40s_ffmpeg.mp3"))
    assert mp3["container"] == "MP3" and mp3["duration_s"] == pytest.approx(40.0, abs=0.2)
    flac = run(corpus("stempeg", "mixture.flac"))
    assert flac["container"] == "FLAC" and flac["codec"] == "PCM_24"
    ogg = run(corpus("librosa_data", "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"))
    assert ogg["codec"] == "VORBIS" and ogg["duration_s"] > 60


def _truncate(src: Path, dest: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


@pytest.mark.parametrize("source", [("mp3_tagged", "wesnoth_traveling_minstrels_30s_lame.mp3"),
                                    ("stempeg", "mixture.flac")])
def test_truncated_files_fail_clearly(tmp_path: Path, source: tuple[str, str]) -> None:
    path = _truncate(corpus(*source), tmp_path / f"cut_{source[1]}", 0.5)
    with pytest.raises(BadInput, match="truncated or corrupt"):
        run(path)


@pytest.mark.parametrize("content, name, expected", [
    (b"", "empty.mp3", "empty file"),
    (b"hello, this is not music\n" * 40, "notes.mp3", "not an audio file: the content looks like text"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, "cover.flac", "looks like a PNG image"),
    (b"\xff\xd8\xff\xe0" + b"\x01" * 500, "photo.wav", "looks like a JPEG image"),
])
def test_non_audio_with_audio_extension_fails(tmp_path: Path, content: bytes, name: str, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadInput, match=expected):
        run(path)


def test_non_audio_with_other_extension_is_skipped_not_failed(tmp_path: Path) -> None:
    path = tmp_path / "cover.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x01" * 500)
    with pytest.raises(SkipItem, match="JPEG"):
        run(path)


def test_zero_length_audio_fails(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "silent.wav", seconds=0.0)
    with pytest.raises(BadInput, match="0 samples"):
        run(path)


def test_vanished_file_fails_as_retryable(tmp_path: Path) -> None:
    # Retryable: the next scan marks the path missing (its track is held, not dropped).
    with pytest.raises(TransientError, match="^file no longer exists: .*gone.wav$"):
        run(tmp_path / "gone.wav")


def test_scan_errors_are_reported_without_opening(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="symlink loop"):
        run(tmp_path / "loop", scan_error="symlink loop: the link resolves back to itself")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without permission; "
                    "tests/integration/test_bad_input.py covers this as an unprivileged user")
def test_unreadable_file_is_retryable(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "locked.wav")
    path.chmod(0)
    with pytest.raises(TransientError, match="permission denied"):
        run(path)


def test_odd_names_are_fine(tmp_path: Path) -> None:
    for name in ["with space.wav", "ünïcødé — 曲.wav", "new\nline.wav", "'quote\".wav"]:
        assert run(write_tone(tmp_path / name))["container"] == "WAV"


def test_scan_follows_folder_links_without_looping(tmp_path: Path) -> None:
    root = tmp_path / "music"
    write_tone(root / "a" / "one.wav")
    write_tone(root / ".hidden.wav")
    (root / "a" / "back_to_root").symlink_to(root)        # folder loop
    (root / "self").symlink_to(root / "self")              # file loop
    (root / "dangling.wav").symlink_to(root / "missing.wav")
    outside = tmp_path / "elsewhere"
    write_tone(outside / "two.wav")
    (root / "linked").symlink_to(outside)                  # a normal folder link is followed
    entries = {Path(e.path).relative_to(root).as_posix(): e.scan_error for e in ingest.scan_folder(str(root))}
    assert entries["a/one.wav"] is None
    assert entries["linked/two.wav"] is None
    assert "points back" in entries["a/back_to_root"]
    assert "symlink loop" in entries["self"]
    assert "broken symlink" in entries["dangling.wav"]
    assert ".hidden.wav" not in entries
    assert ".hidden.wav" in {Path(e.path).name for e in ingest.scan_folder(str(root), include_hidden=True)}


def test_a_folder_that_cannot_be_listed_is_unlisted_not_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 27.2: it was skipped with a warning, as if empty (so its files were marked missing)."""
    root = tmp_path / "music"
    write_tone(root / "a" / "one.wav")
    write_tone(root / "b" / "two.wav")
    outside = tmp_path / "elsewhere"
    write_tone(outside / "three.wav")
    (root / "linked").symlink_to(outside)
    refuse_listing(monkeypatch, root / "b", root / "linked", tmp_path / "locked")
    found = list(ingest.scan_folder(str(root)))
    assert [e.path for e in found if isinstance(e, ingest.ScanEntry)] == [str(root / "a" / "one.wav")]
    # spelt as the paths under it are stored: through the link, not at its target
    assert sorted((u.folder, u.reason) for u in found if isinstance(u, ingest.Unlisted)) == [
        (str(root / "b"), "Permission denied"), (str(root / "linked"), "Permission denied")]
    (tmp_path / "locked").mkdir()
    (tmp_path / "a file").write_text("x")
    assert ingest.unreachable(str(root)) is None
    assert ingest.unreachable(str(tmp_path / "locked")) == "Permission denied"
    assert ingest.unreachable(str(tmp_path / "gone")) == "No such file or directory"
    assert ingest.unreachable(str(tmp_path / "a file")) == "Not a directory"


def test_non_utf8_names_are_kept_visible_and_failed(tmp_path: Path) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/bad\xffname.wav"
    with open(raw, "wb") as handle:
        handle.write(b"x")
    [entry] = list(ingest.scan_folder(str(tmp_path)))
    assert "\\xff" in entry.path and "not valid UTF-8" in entry.scan_error
