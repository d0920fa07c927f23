"""`etl models fetch`: download a catalog model's files with the standard library.

- urllib's default opener, so HTTP_PROXY / HTTPS_PROXY / NO_PROXY are honoured;
- each file is written to `<name>.part` beside its final place, checked against the published size
  and sha256 (or demucs's sha256 prefix), then renamed into place: a final name only ever holds a
  verified (or, where nothing is published, complete) file;
- an interrupted download keeps its `.part`; the next fetch asks for the rest with an HTTP Range
  request (and starts over when the server ignores it);
- every failure is one line naming the URL, so a user on an offline machine can fetch it by hand.
"""

from __future__ import annotations

import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from etl.engine.catalog import CatalogFile, CatalogModel, verify
from etl.engine.errors import ConfigError, EtlError
from etl.engine.folders import check_writable, make_folder

CHUNK = 1 << 20
USER_AGENT = "music-etl (etl models fetch)"
# A --dir that cannot be made or written is the user's to change, as a bad flag is.
_ELSEWHERE = " (--dir or ETL_MODELS_DIR chooses another folder)"

# progress(file name, bytes so far, total bytes or None)
Progress = Callable[[str, int, "int | None"], None]


class FetchError(EtlError):
    """A download that did not produce a verified file; the message is one line naming the URL."""


@dataclass
class Fetched:
    path: Path
    url: str | None          # None: it was already there and verified
    bytes_downloaded: int
    resumed_from: int


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        error = error.reason if isinstance(error.reason, BaseException) else error
        if not isinstance(error, BaseException):
            return _one_line(error)
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    return _one_line(error) or type(error).__name__


def fetch_file(entry: CatalogFile, folder: Path, progress: Progress | None = None,
               timeout: float = 60.0) -> Fetched:
    """Bring `entry` into `folder` from the first of its URLs that works."""
    make_folder(folder, ConfigError, _ELSEWHERE)
    final = folder / entry.name
    if final.is_file() and verify(final, entry) is None:
        return Fetched(final, None, 0, 0)  # a read-only folder of verified models is fine
    check_writable(folder, ConfigError, _ELSEWHERE)  # before any download: a read-only folder costs none
    errors = []
    for url in entry.urls:
        try:
            return _download(url, entry, final, progress, timeout)
        except _TryNext as error:
            errors.append(str(error))
    raise FetchError("; ".join(errors) + f" (fetch it by hand and put it at {final})")


class _TryNext(Exception):
    """This URL failed in a way another mirror may not (unreachable, 404, ...)."""


def _download(url: str, entry: CatalogFile, final: Path, progress: Progress | None, timeout: float) -> Fetched:
    part = final.with_name(final.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if entry.size is not None and have > entry.size:
        part.unlink()
        have = 0
    if entry.size is not None and have == entry.size:
        return _finish(url, entry, part, final, 0, have)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to send: the .part may be whole already
            return _finish(url, entry, part, final, 0, have)
        raise _TryNext(f"{url}: HTTP {error.code} {_one_line(error.reason)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise _TryNext(f"cannot reach {url}: {_reason(error)} (offline or behind a proxy? "
                       "HTTPS_PROXY / HTTP_PROXY are honoured)") from None
    with response:
        resumed_from = 0
        if have and response.status == 206:
            start = (response.headers.get("Content-Range") or "").removeprefix("bytes ").split("-", 1)[0]
            if start != str(have):
                raise FetchError(f"{url}: asked for bytes from {have:,}, got {response.headers.get('Content-Range')!r}")
            resumed_from, mode = have, "ab"
        else:
            have, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else entry.size
        done = have
        try:
            with open(part, mode) as out:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(entry.name, done, total)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, http.client.HTTPException) as error:
            done = part.stat().st_size if part.is_file() else 0
            raise FetchError(f"download of {url} stopped after {done:,} bytes ({_reason(error)}); "
                             f"run the same command again to resume from {part}") from None
    if total is not None and done < total:
        raise FetchError(f"download of {url} stopped after {done:,} of {total:,} bytes; "
                         f"run the same command again to resume from {part}")
    return _finish(url, entry, part, final, done - resumed_from, resumed_from)


def _finish(url: str, entry: CatalogFile, part: Path, final: Path, downloaded: int, resumed_from: int) -> Fetched:
    problem = verify(part, entry)
    if problem is not None:
        part.unlink()
        raise FetchError(f"{url}: the download does not match what is published ({problem}); removed it")
    os.replace(part, final)
    return Fetched(final, url, downloaded, resumed_from)


def fetch_model(model: CatalogModel, directory: Path, progress: Progress | None = None,
                timeout: float = 60.0) -> list[Fetched]:
    folder = directory / model.folder
    return [fetch_file(entry, folder, progress, timeout) for entry in model.files]


class StderrProgress:
    """A progress line on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream, interval: float | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval if interval is not None else (0.2 if self.tty else 5.0)
        self.last = 0.0

    def __call__(self, name: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last < self.interval and done != total:
            return
        self.last = now
        share = f" ({100 * done / total:.0f}% of {total:,})" if total else ""
        line = f"  {name}: {done:,} bytes{share}"
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        if self.tty and done == total:
            self.stream.write("\n")
        self.stream.flush()
