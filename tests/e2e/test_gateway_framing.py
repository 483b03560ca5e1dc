"""Request framing of `bocage serve`'s REST side, over a raw socket on loopback.

A bad Content-Length or a chunked body must get one clear answer, never a dropped
connection, a hung read or chunk bytes parsed as the next request. What the HTTP parser
cannot frame it refuses itself (400, plain text); what it can, the gateway judges (JSON).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.app import Chalice

from chalicelib import wiring
from chalicelib.settings import Settings
from tests.e2e.conftest import rest_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def address(tmp_path: Path) -> Iterator[tuple[str, int]]:
    from app import app

    container = wiring.build(Settings(data_dir=str(tmp_path), public_url="http://127.0.0.1"))
    wiring.use(container)
    try:
        with rest_server(app) as address:
            yield address
    finally:
        wiring.use(None)
        close = getattr(container.store, "close", None)
        if close is not None:
            close()


def exchange(address: tuple[str, int], raw: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, then read until the server closes (a hang fails on the timeout)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(raw)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                pytest.fail(f"no complete answer in {timeout} s; got {b''.join(chunks)!r}")
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream into HTTP/1.1 responses framed by Content-Length."""
    found = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data
        status_line, *header_lines = head.decode("iso-8859-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        found.append((int(status_line.split()[1]), headers, rest[:length]))
        data = rest[length:]
    return found


def error_body(body: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(body)
    assert set(document) == {"error", "message"}
    return document


def request(headers: str, body: bytes = b"", path: str = "/activate") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode() + body


def test_a_well_framed_request_still_works_and_keeps_the_connection(address: tuple[str, int]) -> None:
    raw = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(raw + b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert [status for status, _, _ in responses(data)] == [200, 200, 200]


@pytest.mark.parametrize("value", ["abc", "-1", "+5", "1e3", "5, 5", " "])
def test_a_bad_content_length_gets_400_and_a_closed_connection(address: tuple[str, int], value: str) -> None:
    data = exchange(address, request(f"Content-Length: {value}\r\n", b'{"code": "x"}'))
    (answer,) = responses(data)  # one answer, then the server hangs up
    status, headers, _ = answer
    assert status == 400
    assert headers.get("connection") == "close"


def test_conflicting_content_lengths_get_400(address: tuple[str, int]) -> None:
    data = exchange(address, request("Content-Length: 2\r\nContent-Length: 13\r\n", b'{"code": "x"}'))
    ((status, headers, _),) = responses(data)
    assert status == 400
    assert headers.get("connection") == "close"


def test_a_body_over_10_mib_gets_413_before_it_is_read(address: tuple[str, int]) -> None:
    data = exchange(address, request(f"Content-Length: {10 * 1024 * 1024 + 1}\r\n", b"x" * 100))
    ((status, headers, body),) = responses(data)
    assert status == 413
    assert headers.get("connection") == "close"
    assert error_body(body)["error"] == "payload_too_large"


def test_a_chunked_body_gets_411_and_is_never_read_as_a_request(address: tuple[str, int]) -> None:
    # the "chunk" is itself a well-formed request: it must not be served
    smuggled = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    body = f"{len(smuggled):x}\r\n".encode() + smuggled + b"\r\n0\r\n\r\n"
    data = exchange(address, request("Transfer-Encoding: chunked\r\n", body))
    (answer,) = responses(data)
    status, headers, reply = answer
    assert status == 411
    assert headers.get("connection") == "close"
    assert error_body(reply)["error"] == "length_required"


def test_a_content_length_beside_chunked_is_refused(address: tuple[str, int]) -> None:
    # the classic smuggling pair: the parser refuses the request rather than pick one
    data = exchange(
        address, request("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n")
    )
    ((status, headers, _),) = responses(data)
    assert status in (400, 411)
    assert headers.get("connection") == "close"


# -- the server's deadlines ---------------------------------------------------------------------

slow = Chalice(app_name="slow")


@slow.route("/slow")
def slow_route() -> dict[str, str]:
    time.sleep(1.0)
    return {"done": "late"}


@slow.route("/quick", methods=["GET", "POST"])
def quick_route() -> dict[str, str]:
    return {"done": "now"}


def test_headers_sent_too_slowly_get_408_and_a_closed_connection() -> None:
    with rest_server(slow, read_timeout=0.5) as address:
        started = time.monotonic()
        data = exchange(address, b"GET /quick HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never ends
        ((status, headers, body),) = responses(data)
        assert status == 408 and headers.get("connection") == "close"
        assert error_body(body)["error"] == "request_timeout"
        assert 0.4 < time.monotonic() - started < 3


def test_a_body_sent_too_slowly_gets_408() -> None:
    with rest_server(slow, read_timeout=0.5) as address:
        data = exchange(address, b"POST /quick HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{}")
        ((status, _, body),) = responses(data)
        assert status == 408
        assert error_body(body)["error"] == "request_timeout"


def test_a_handler_past_its_deadline_gets_504_as_from_api_gateway() -> None:
    with rest_server(slow, handler_timeout=0.3) as address:
        data = exchange(address, b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        ((status, _, body),) = responses(data)
        assert status == 504
        assert json.loads(body) == {"message": "Endpoint request timed out"}


def test_an_idle_keep_alive_connection_is_closed() -> None:
    with (
        rest_server(slow, keepalive_timeout=1) as address,
        socket.create_connection(address, timeout=5) as sock,
    ):
        sock.sendall(b"GET /quick HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        data = b""
        while chunk := sock.recv(65536):  # the answer, then the end of the stream
            data += chunk
        assert [status for status, _, _ in responses(data)] == [200]
        assert 0.8 < time.monotonic() - started < 4
