"""Failure reasons that point the right way: a vanished or unreadable file, a full disk, bad audio."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from etl.dsp import audio
from etl.engine import artifacts
from etl.engine.errors import (
    BadInput,
    ItemError,
    TransientError,
    classify,
    file_error,
    source_error,
)
from etl.stages import crops, metadata
from tests.helpers import (
    REPO,
    WITHOUT_FILE_OVERRIDES,
    skip_unless_ci,
    small_disk,
    write_tone,
)


@pytest.mark.parametrize("code, action, reason", [
    (errno.ENOENT, "reading", "file no longer exists: /m/a.flac"),
    (errno.ENOTDIR, "reading", "file no longer exists: /m/a.flac"),
    (errno.ENOENT, None, "file no longer exists: /m/a.flac"),
    (errno.ENOSPC, "writing", "no space left on device while writing /m/a.flac"),
    (errno.EDQUOT, "writing", "no space left on device while writing /m/a.flac"),
    (errno.EACCES, "reading", "permission denied reading /m/a.flac"),
    (errno.EPERM, "writing", "permission denied writing /m/a.flac"),
    (errno.EROFS, "writing", "permission denied writing /m/a.flac (a read-only file system)"),
    (errno.EIO, "reading", "cannot read /m/a.flac: Input/output error"),
    (errno.EIO, "writing", "cannot write /m/a.flac: Input/output error"),
    (errno.ENOENT, "writing", "cannot write /m/a.flac: No such file or directory"),  # its folder went
])
def test_each_os_error_maps_to_its_reason_and_is_retryable(code: int, action: str | None, reason: str) -> None:
    error = OSError(code, os.strerror(code), "/elsewhere")
    mapped = file_error(error, "/m/a.flac", action)
    assert isinstance(mapped, TransientError) and mapped.retryable
    assert mapped.reason == reason


def test_an_os_error_escaping_a_worker_gets_the_same_reason() -> None:
    for error in (FileNotFoundError(errno.ENOENT, "No such file or directory", "/m/a.flac"),
                  OSError(errno.ENOSPC, "No space left on device", "/d/x.flac"),
                  PermissionError(errno.EACCES, "Permission denied", "/m/a.flac")):
        try:
            raise error
        except OSError as caught:
            assert classify(caught) == (file_error(caught).reason, True)
    assert classify(OSError(errno.ENOSPC, "No space left on device")) == ("no space left on device while writing", True)
    assert classify(FileNotFoundError(errno.ENOENT, "x", "/m/a.flac"))[0] == "file no longer exists: /m/a.flac"


def test_a_missing_file_is_not_a_decode_error(tmp_path: Path) -> None:
    gone = tmp_path / "gone.flac"
    with pytest.raises(TransientError) as caught:
        audio.open_audio(str(gone))
    assert caught.value.reason == f"file no longer exists: {gone}"
    not_a_folder = write_tone(tmp_path / "tone.wav") / "x.flac"  # a path through a file: ENOTDIR
    with pytest.raises(TransientError, match="file no longer exists: "):
        audio.open_audio(str(not_a_folder))
    with pytest.raises(TransientError, match=r"file no longer exists: .* \(a folder is there now\)"):
        audio.open_audio(str(tmp_path))
    with pytest.raises(TransientError, match="file no longer exists: "):
        metadata.read_tags(str(gone), ())
    with pytest.raises(TransientError, match="file no longer exists: "):  # crops open their source here
        crops.first_sound(str(gone), -72.0)


def test_garbage_keeps_the_decode_reason(tmp_path: Path) -> None:
    garbage = tmp_path / "noise.mp3"
    garbage.write_bytes(os.urandom(4096))
    assert source_error(garbage) is None
    with pytest.raises(BadInput, match="cannot decode the audio with libsndfile") as caught:
        audio.open_audio(str(garbage))
    assert not caught.value.retryable


_OPEN_LOCKED = """
import sys
from etl.dsp import audio
from etl.engine.errors import ItemError
try:
    audio.open_audio(sys.argv[1])
except ItemError as error:
    print(error.retryable, error.reason)
"""


def test_a_file_this_user_cannot_read(tmp_path: Path) -> None:
    locked = write_tone(tmp_path / "locked.wav")
    locked.chmod(0)
    # Root reads whatever the mode says: the check runs without that privilege (as `etl run` by a user).
    prefix = WITHOUT_FILE_OVERRIDES if os.geteuid() == 0 else []
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", _OPEN_LOCKED, str(locked)], capture_output=True,
                              text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    except FileNotFoundError:
        skip_unless_ci("setpriv is not installed: root cannot be refused a read")
    if done.returncode != 0 and "setpriv" in done.stderr:
        skip_unless_ci(f"cannot drop root's file privileges here: {done.stderr.strip()}")
    assert done.stdout.strip() == f"True permission denied reading {locked}", done.stderr


def test_a_full_disk_while_writing_a_crop(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal((44100 * 30, 2))).astype(np.float32)  # ~5 MB as FLAC: no room
    with small_disk(tmp_path / "disk", "2m") as disk:
        folder = disk / "crops" / "ab" / "abcd"
        folder.mkdir(parents=True)
        for fmt in ("flac", "wav"):
            with pytest.raises(ItemError) as caught:
                crops.write_atomic(folder, "crop", noise, 44100, crops.Params(format=fmt))
            assert caught.value.retryable
            assert caught.value.reason == f"no space left on device while writing {folder}/crop.{fmt}"
            assert os.listdir(folder) == []  # no temporary file left behind
        # the same folder takes a crop that fits, and the scratch writer (stems) fails the same way
        path, digest = crops.write_atomic(folder, "crop", noise[:4410], 44100, crops.Params())
        assert path.name == f"crop-{digest[:12]}.flac" and os.listdir(folder) == [path.name]
        scratch = folder / ".vocals.tmp-1.sep.w64"
        with pytest.raises(TransientError, match=f"no space left on device while writing {scratch}"):
            with artifacts.AudioWriter(scratch, 44100, 2, "W64", "FLOAT") as writer:
                for start in range(0, len(noise), 1 << 16):
                    writer.write(noise[start:start + (1 << 16)])
        assert os.listdir(folder) == [path.name]


def test_written_audio_is_what_libsndfile_writes_to_a_path(tmp_path: Path) -> None:
    import soundfile as sf

    rng = np.random.default_rng(1)
    block = (0.1 * rng.standard_normal((22050, 2))).astype(np.float32)
    for fmt, subtype, extra in (("FLAC", "PCM_16", {"compression_level": 0.5}), ("WAV", "PCM_24", {}),
                                ("MP3", "MPEG_LAYER_III", {"bitrate_mode": "CONSTANT", "compression_level": 0.5})):
        path, digest = artifacts.write_audio(tmp_path, "x", [block[:1000], block[1000:]], 22050, fmt, subtype,
                                             channels=2, **extra)
        direct = tmp_path / f"direct.{fmt.lower()}"
        sf.write(direct, block, 22050, format=fmt, subtype=subtype, **extra)
        assert path.read_bytes() == direct.read_bytes()
        assert path.name == f"x-{digest[:12]}.{fmt.lower()}"
    assert not [n for n in os.listdir(tmp_path) if artifacts.TEMP_MARK in n]
