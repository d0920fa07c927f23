"""`etl models fetch` against a real HTTP server on 127.0.0.1 serving fixture files (no real network):
good, corrupt (wrong sha256), truncated then resumed with a Range request, slow, 404, unreachable."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import WITHOUT_FILE_OVERRIDES, etl, skip_unless_ci

GOOD = random.Random(1).randbytes(3 * 1024 * 1024 + 17)     # several of the fetcher's 1 MiB chunks
SMALL = random.Random(2).randbytes(64 * 1024)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Server:
    """Serves `files` with Range support; `truncate_once` paths send half the body then hang up, once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/good.bin": GOOD, "/corrupt.bin": GOOD, "/trunc.bin": GOOD,
                                        "/slow.bin": SMALL, "/meta.json": b'{"name": "fixture"}\n'}
        self.truncate_once = {"/trunc.bin"}
        self.slow = {"/slow.bin"}
        self.requests: list[tuple[str, str | None]] = []
        self.proxied: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                rng = self.headers.get("Range")
                path = self.path
                if path.startswith("http://"):  # asked as a proxy: GET http://host/path
                    server.proxied.append(path)
                    path = "/" + path.split("/", 3)[3]
                server.requests.append((path, rng))
                data = server.files.get(path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[len("bytes="):-1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if path in server.truncate_once:
                    server.truncate_once.discard(path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if path in server.slow:
                    for offset in range(0, len(body), 4096):
                        self.wfile.write(body[offset:offset + 4096])
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    thread = threading.Thread(target=s.httpd.serve_forever, daemon=True)
    thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_catalog(path: Path, base: str, unreachable: str) -> Path:
    def model(name: str, files: list[tuple[str, str, int | None, str | None]]) -> str:
        text = (f'[[model]]\nname = "{name}"\nstage = "stems"\nlicence = "Fixture Licence 1.0 for {name}"\n'
                f'folder = "{name}-folder"\nconfigure = "[stems] repo = \\"{{folder}}\\""\n')
        for fname, url, size, digest in files:
            text += f'\n[[model.file]]\nname = "{fname}"\nurls = ["{url}"]\n'
            text += f"size = {size}\n" if size is not None else ""
            text += f'sha256 = "{digest}"\n' if digest else ""
        return text + "\n"

    path.write_text(
        model("good", [("good.bin", f"{base}/good.bin", len(GOOD), sha(GOOD)),
                       ("meta.json", f"{base}/meta.json", None, None)])
        + model("corrupt", [("corrupt.bin", f"{base}/corrupt.bin", None, sha(b"something else"))])
        + model("truncated", [("trunc.bin", f"{base}/trunc.bin", len(GOOD), sha(GOOD))])
        + model("slow", [("slow.bin", f"{base}/slow.bin", len(SMALL), sha(SMALL))])
        + model("missing", [("gone.bin", f"{base}/gone.bin", None, None)])
        + model("offline", [("far.bin", unreachable, None, None)])
        + model("proxied", [("good.bin", "http://models.invalid/good.bin", len(GOOD), sha(GOOD))]))
    return path


@pytest.fixture
def env(tmp_path: Path, server: Server) -> dict[str, str]:
    catalog = write_catalog(tmp_path / "catalog.toml", server.url,
                            f"http://127.0.0.1:{closed_port()}/far.bin")
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # 127.0.0.1, never a proxy
    return {**clean, "ETL_MODEL_CATALOG": str(catalog), "ETL_MODELS_DIR": str(tmp_path / "models"), "NO_PROXY": "*"}


def fetch(tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 60):
    return etl("models", "fetch", *args, db=tmp_path / "etl.duckdb", env=env, timeout=timeout,
               stdin=open(os.devnull))


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_good_file_is_verified_installed_and_listed(tmp_path: Path, env: dict[str, str], server: Server) -> None:
    result = fetch(tmp_path, env, "good", "--yes")
    assert result.returncode == 0, result.stderr
    assert "Fixture Licence 1.0 for good" in result.stderr
    final = tmp_path / "models" / "good-folder" / "good.bin"
    assert final.read_bytes() == GOOD and not final.with_name("good.bin.part").exists()
    assert "sha256 verified" in result.stderr
    assert f"good.bin: {len(GOOD):,} bytes (100% of {len(GOOD):,})" in result.stderr  # progress on stderr
    listed = json.loads(etl("models", "--json", db=tmp_path / "etl.duckdb", env=env, check=True).stdout)
    row = next(m for m in listed["catalog"] if m["name"] == "good")
    assert row["installed"] and row["where"] == str(final.parent)
    assert row["files"][0]["sha256"] == sha(GOOD) and row["files"][1]["sha256"] is None
    assert row["files"][1]["checksum"] == "checksum not published"
    assert not next(m for m in listed["catalog"] if m["name"] == "slow")["installed"]
    # A second fetch finds it verified and downloads nothing.
    before = len(server.requests)
    again = fetch(tmp_path, env, "good", "--yes")
    assert again.returncode == 0 and "already there and verified" in again.stderr
    assert len(server.requests) == before


def test_licence_must_be_accepted_when_stdin_is_not_a_terminal(tmp_path: Path, env: dict[str, str],
                                                               server: Server) -> None:
    result = fetch(tmp_path, env, "good")
    assert result.returncode == 1 and "--yes" in error_line(result)
    assert "Fixture Licence 1.0 for good" in result.stderr
    assert server.requests == [] and not (tmp_path / "models" / "good-folder" / "good.bin").exists()


def test_corrupt_download_is_refused_and_removed(tmp_path: Path, env: dict[str, str], server: Server) -> None:
    result = fetch(tmp_path, env, "corrupt", "--yes")
    assert result.returncode == 1
    line = error_line(result)
    assert f"{server.url}/corrupt.bin" in line and "sha256" in line
    folder = tmp_path / "models" / "corrupt-folder"
    assert list(folder.iterdir()) == []  # neither the final name nor a .part


def test_truncated_download_resumes_with_a_range_request(tmp_path: Path, env: dict[str, str], server: Server) -> None:
    first = fetch(tmp_path, env, "truncated", "--yes")
    assert first.returncode == 1
    assert "run the same command again to resume" in error_line(first)
    folder = tmp_path / "models" / "truncated-folder"
    part = folder / "trunc.bin.part"
    kept = part.stat().st_size
    assert 0 < kept < len(GOOD) and not (folder / "trunc.bin").exists()
    assert part.read_bytes() == GOOD[:kept]
    second = fetch(tmp_path, env, "truncated", "--yes")
    assert second.returncode == 0, second.stderr
    assert server.requests[-1] == ("/trunc.bin", f"bytes={kept}-")
    assert f"resumed at {kept:,}" in second.stderr
    assert (folder / "trunc.bin").read_bytes() == GOOD and not part.exists()


def test_slow_server_still_completes(tmp_path: Path, env: dict[str, str]) -> None:
    started = time.monotonic()
    result = fetch(tmp_path, env, "slow", "--yes", "--timeout", "5", timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "models" / "slow-folder" / "slow.bin").read_bytes() == SMALL
    assert time.monotonic() - started < 30


def test_404_names_the_url(tmp_path: Path, env: dict[str, str], server: Server) -> None:
    result = fetch(tmp_path, env, "missing", "--yes")
    assert result.returncode == 1
    line = error_line(result)
    assert f"{server.url}/gone.bin" in line and "404" in line
    assert not (tmp_path / "models" / "missing-folder" / "gone.bin").exists()


def test_unreachable_host_is_one_line_with_the_url_to_fetch_by_hand(tmp_path: Path, env: dict[str, str]) -> None:
    catalog = Path(env["ETL_MODEL_CATALOG"]).read_text()
    url = next(line.split('"')[1] for line in catalog.splitlines() if "far.bin" in line and "urls" in line)
    result = fetch(tmp_path, env, "offline", "--yes", "--timeout", "5")
    assert result.returncode == 1
    line = error_line(result)
    assert url in line and "cannot reach" in line and "by hand" in line


def test_http_proxy_is_honoured(tmp_path: Path, env: dict[str, str], server: Server) -> None:
    result = fetch(tmp_path, {**env, "HTTP_PROXY": server.url, "http_proxy": server.url, "NO_PROXY": ""},
                   "proxied", "--yes")
    assert result.returncode == 0, result.stderr
    assert server.proxied == ["http://models.invalid/good.bin"]
    assert (tmp_path / "models" / "proxied-folder" / "good.bin").read_bytes() == GOOD


def test_unknown_name_lists_the_known_ones(tmp_path: Path, env: dict[str, str]) -> None:
    result = fetch(tmp_path, env, "nope", "--yes")
    assert result.returncode == 1 and "good" in error_line(result)


def test_project_catalog_names_the_models_the_stages_use() -> None:
    from etl.app.models import catalog_files
    from etl.engine import catalog
    from etl.stages import aesthetics, captions, classify, stems

    models = {m.name: m for m in catalog.load(catalog_files())}
    assert {"htdemucs", "discogs-effnet", "genre_discogs400", "audiobox-aesthetics"} <= set(models)
    # The names the skip lines tell a user to fetch (`etl models fetch NAME`) are the catalog's.
    assert {aesthetics.MODEL, captions.CATALOG_MODEL} <= set(models)
    assert catalog.providing("stems", stems.Params().model).name == "htdemucs"
    assert catalog.providing("classify", classify.Params().embedding).name == "discogs-effnet"
    assert catalog.providing("classify", "genre_discogs400-discogs-effnet-1").name == "genre_discogs400"
    th = next(f for f in models["htdemucs"].files if f.name.endswith(".th"))
    assert th.name.split("-")[1].removesuffix(".th") == th.sha256_prefix  # demucs's own checksum in the name
    for model in models.values():
        assert model.licence and model.files
        for entry in model.files:
            assert all(url.startswith("https://") for url in entry.urls)
            assert entry.sha256 is None or len(entry.sha256) == 64


# Root writes into any folder whatever its mode: these runs drop that privilege to meet it as a user.
AS_USER = WITHOUT_FILE_OVERRIDES if os.geteuid() == 0 else None


def one_line_error(result, *expected: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "unexpected" not in lines[-1] and "Traceback" not in result.stderr, result.stderr
    line = error_line(result)
    for text in expected:
        assert text in line, line
    return line


def test_dir_that_is_a_file_is_one_line_before_any_download(tmp_path: Path, env: dict[str, str],
                                                             server: Server) -> None:
    """Issue 27.8: `--dir FILE` gave `unexpected NotADirectoryError` (or FileExistsError)."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    one_line_error(fetch(tmp_path, env, "good", "--yes", "--dir", str(a_file)), str(a_file), "not a folder")
    one_line_error(fetch(tmp_path, {**env, "ETL_MODELS_DIR": str(a_file)}, "good", "--yes"), str(a_file))
    one_line_error(fetch(tmp_path, env, "good", "--yes", "--dir", "/proc/version/models"), "/proc/version")
    assert server.requests == [] and a_file.read_text() == "not a folder"


def test_read_only_dir_is_one_line_before_any_download(tmp_path: Path, env: dict[str, str], server: Server) -> None:
    """Issue 27.8: a read-only --dir gave `unexpected PermissionError`; one whose model folder was
    already there downloaded the whole file before failing to write it."""
    if AS_USER is not None and shutil.which(AS_USER[0]) is None:
        skip_unless_ci("setpriv is not installed: root cannot be refused a write")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    made = tmp_path / "made"
    (made / "good-folder").mkdir(parents=True)
    (made / "good-folder").chmod(0o555)
    try:
        one_line_error(etl("models", "fetch", "good", "--yes", "--dir", str(locked), db=tmp_path / "etl.duckdb",
                           env=env, prefix=AS_USER, stdin=open(os.devnull)),
                       str(locked / "good-folder"), "Permission denied")
        one_line_error(etl("models", "fetch", "good", "--yes", "--dir", str(made), db=tmp_path / "etl.duckdb",
                           env=env, prefix=AS_USER, stdin=open(os.devnull)),
                       str(made / "good-folder"), "Permission denied")
        assert server.requests == []
        # A model already there and verified needs no write: a read-only folder of models is fine.
        (made / "good-folder").chmod(0o755)
        assert fetch(tmp_path, env, "good", "--yes", "--dir", str(made)).returncode == 0
        requests = len(server.requests)
        (made / "good-folder").chmod(0o555)
        again = etl("models", "fetch", "good", "--yes", "--dir", str(made), db=tmp_path / "etl.duckdb",
                    env=env, prefix=AS_USER, stdin=open(os.devnull))
        assert again.returncode == 0 and "already there and verified" in again.stderr, again.stderr
        assert len(server.requests) == requests
    finally:
        locked.chmod(0o755)
        (made / "good-folder").chmod(0o755)
