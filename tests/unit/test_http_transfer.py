"""The SDK's blob download over real HTTP on loopback: a server that streams more than the file's
size (a malicious or broken one) is cut off at that size, so it cannot fill memory or disk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bocage.client.files import FileUnavailable, HttpTransfer

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
