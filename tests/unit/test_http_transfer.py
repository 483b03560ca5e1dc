"""The SDK's blob download over real HTTP on loopback: a server that streams more than the file's
size (a malicious or broken one) is cut off at that size, so it cannot fill memory or disk."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bocage.client.files import FileUnavailable, HttpTransfer, blob_url
from bocage.progress_bar import ProgressBar

SERVED = 125 * 64 * 1024


class EndlessBlob(BaseHTTPRequestHandler):
    sent = 0

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(SERVED))
        self.end_headers()
        chunk = bytes(64 * 1024)
        try:
            for _ in range(SERVED // len(chunk)):
                self.wfile.write(chunk)
                type(self).sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EndlessBlob)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/blob"
    httpd.shutdown()
    httpd.server_close()


def test_a_download_stops_at_the_files_size(server: str) -> None:
    with pytest.raises(FileUnavailable, match="more than the file's 1000 bytes"):
        HttpTransfer().get(server, 1000)
    assert len(HttpTransfer().get(server, SERVED)) == SERVED  # the exact size passes


def test_only_http_urls_are_fetched() -> None:
    with pytest.raises(FileUnavailable, match="not HTTP"):
        HttpTransfer().get("file:///etc/passwd", 1000)


class FlakyStore(BaseHTTPRequestHandler):
    """Stores the first whole upload; ``drop_first`` connections are cut without an answer, and
    any upload after one landed is answered 409, as `bocage serve` does for a used slot."""

    drop_first = 1
    attempts = 0
    stored: bytes | None = None

    def do_PUT(self) -> None:
        cls = type(self)
        cls.attempts += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if cls.stored is not None:
            self.send_response(409)
            self.end_headers()
            return
        if cls.attempts <= cls.drop_first:
            if cls.attempts == 1 and cls.drop_first == 1:
                cls.stored = body  # it landed, but the answer is lost
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        cls.stored = body
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/blob"


@pytest.mark.parametrize("drop_first", [1, 2])
def test_an_upload_cut_by_the_network_is_tried_again(drop_first: int) -> None:
    """Whether the cut attempt landed (then 409 on the retry) or not, the upload ends done."""
    FlakyStore.drop_first, FlakyStore.attempts, FlakyStore.stored = drop_first, 0, None
    httpd, url = _serve(FlakyStore)
    try:
        HttpTransfer(pause=0).put(url, {"Content-Length": "5"}, b"blob!")
        assert FlakyStore.stored == b"blob!"
        assert FlakyStore.attempts == drop_first + 1  # landed-then-409, or stored on the third
        FlakyStore.drop_first, FlakyStore.attempts, FlakyStore.stored = 9, 0, None
        with pytest.raises(FileUnavailable, match="did not get through"):
            HttpTransfer(attempts=3, pause=0).put(url, {"Content-Length": "5"}, b"blob!")
        assert FlakyStore.attempts == 3
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_uploads_and_downloads_report_their_progress_and_the_bar_draws_it(server: str) -> None:
    """What the CLI's bar shows: bytes as they move, block after block, up to the whole; an
    upload tried again starts again at 0 on a new line."""
    FlakyStore.drop_first, FlakyStore.attempts, FlakyStore.stored = 2, 0, None
    httpd, url = _serve(FlakyStore)
    body = bytes(range(256)) * 2_000  # 512,000 bytes: eight blocks
    reports: list[tuple[int, int]] = []
    try:
        HttpTransfer(pause=0, progress=lambda done, total: reports.append((done, total))).put(
            url, {"Content-Length": str(len(body))}, body
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert FlakyStore.stored == body
    assert {total for _, total in reports} == {len(body)}
    restarts = [i for i in range(1, len(reports)) if reports[i][0] < reports[i - 1][0]]
    assert len(restarts) == 2  # three attempts, each from the first block
    last = [done for done, _ in reports[restarts[-1] :]]
    assert last == sorted(last) and len(last) >= 8 and last[-1] == len(body)

    fetched: list[int] = []
    data = HttpTransfer(progress=lambda done, total: fetched.append(done)).get(server, SERVED)
    assert len(data) == SERVED and fetched[-1] == SERVED and len(fetched) >= 10
    assert fetched == sorted(fetched)

    drawn = io.StringIO()
    bar = ProgressBar("uploading plan.pdf", stream=drawn)
    for done, total in reports:
        bar(done, total)
    lines = drawn.getvalue().split("\n")
    assert len(lines) == 4 and lines[-1] == ""  # each attempt sent it all: a line each
    assert all(line.count("\r") <= 101 for line in lines)  # redrawn when the percent moves only
    assert lines[2].endswith("[" + "#" * 30 + "] 100 %  512 kB of 512 kB")
    assert lines[0].startswith("\ruploading plan.pdf [") and lines[2].count("\r") >= 50  # 8 kB blocks


class Redirecting(BaseHTTPRequestHandler):
    """A blob URL that answers "look over there" (where ``blob_url`` never looked)."""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_a_redirect_is_not_followed() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FileUnavailable, match=r"could not be fetched \(302\)"):
            HttpTransfer().get(f"http://127.0.0.1:{httpd.server_address[1]}/blob", 1000)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://bocage-files.s3.eu-west-3.amazonaws.com/b_1?X-Amz-Signature=x", True),
        ("http://127.0.0.1:8000/files/b_1?sig=x", True),  # `bocage serve`'s own host
        ("https://127.0.0.1:9000/b_1", True),
        ("http://192.168.1.1/admin", False),  # a plain-HTTP address of the user's network
        ("http://169.254.169.254/latest/meta-data/", False),
        ("https://user:pw@bocage-files.s3.amazonaws.com/b_1", False),
        ("http://127.0.0.1:8000@192.168.1.1/", False),  # the host is what follows the @
        ("ftp://127.0.0.1/b_1", False),
    ],
)
def test_a_blob_url_is_https_or_on_the_api_servers_own_host(url: str, allowed: bool) -> None:
    server = "http://127.0.0.1:8000"
    if allowed:
        assert blob_url(url, server) == url
    else:
        with pytest.raises(FileUnavailable):
            blob_url(url, server)
