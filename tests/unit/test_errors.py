"""Exception classification: what is the item's fault (permanent), what may pass (transient), what is a bug."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from etl.engine.errors import classify
from etl.engine.pool import process_one


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - give it a traceback, as in a worker
        return caught


def library_errors() -> list[BaseException]:
    import mutagen
    import pyarrow as pa
    import soundfile as sf
    from audioread.exceptions import DecodeError

    errors: list[BaseException] = [mutagen.MutagenError("can't sync to MPEG frame"), DecodeError("no frames"),
                                   pa.ArrowInvalid("Value 20230101123 too large to fit in C integer type")]
    try:
        sf.SoundFile(__file__)  # a Python file is not audio
    except sf.SoundFileError as error:
        errors.append(error)
    try:
        sf.info(__file__)
    except sf.LibsndfileError as error:
        errors.append(error)
    return errors


@pytest.mark.parametrize("exc", [
    ValueError("negative dimensions"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    *library_errors(),
], ids=lambda e: type(e).__name__)
def test_decode_format_and_value_errors_are_permanent(exc: BaseException) -> None:
    reason, retryable = classify(raised(exc))
    assert retryable is False
    assert reason.startswith("bad input: ")
    assert type(exc).__name__ in reason


@pytest.mark.parametrize("exc", [
    OSError(errno.EIO, "Input/output error"), PermissionError(errno.EACCES, "Permission denied", "/x.flac"),
    FileNotFoundError(errno.ENOENT, "No such file", "/x.flac"), IsADirectoryError(errno.EISDIR, "Is a dir", "/x"),
    MemoryError(), TimeoutError("read timed out"), ConnectionResetError(),
], ids=lambda e: type(e).__name__)
def test_io_and_resource_errors_are_transient(exc: BaseException) -> None:
    reason, retryable = classify(raised(exc))
    assert retryable is True
    assert reason


def test_io_errors_that_a_library_wrapped_are_transient() -> None:
    import mutagen

    try:
        try:
            raise OSError(errno.EIO, "Input/output error")
        except OSError as io:
            raise mutagen.MutagenError(io) from io
    except mutagen.MutagenError as error:
        assert classify(error)[1] is True


@pytest.mark.parametrize("exc", [TypeError("unsupported operand"), AttributeError("'NoneType' has no attribute x"),
                                 KeyError("path"), ZeroDivisionError("division by zero")],
                         ids=lambda e: type(e).__name__)
def test_likely_bugs_stay_retryable_with_their_location(exc: BaseException) -> None:
    reason, retryable = classify(raised(exc))
    assert retryable is True
    assert reason.startswith(f"unexpected {type(exc).__name__}")
    assert f"(at {Path(__file__).name}:" in reason


def test_process_one_uses_the_classification() -> None:
    def bad(item, params):
        raise ValueError("not a number: 'abc'")

    def eio(item, params):
        raise OSError(errno.EIO, "Input/output error")

    outcome = process_one(bad, {"item_id": "a"}, None)
    assert (outcome.status, outcome.retryable) == ("failed", False)
    assert "not a number" in outcome.error
    outcome = process_one(eio, {"item_id": "a"}, None)
    assert (outcome.status, outcome.retryable) == ("failed", True)
