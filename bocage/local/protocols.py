"""uvicorn's HTTP protocol, with a deadline on a request's headers.

uvicorn times out idle keep-alive connections but not a client that sends its headers a byte
at a time; this answers such a client 408 and hangs up, so slow clients cannot hold
connections open. It subclasses uvicorn's own class and touches only ``transport``; uvicorn is
pinned (requirements-dev.txt); tests/e2e/test_gateway_framing.py covers it. WebSockets have a
protocol of their own (websocket_protocol.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _timeout_answer() -> bytes:
    body = b'{"error": "request_timeout", "message": "request headers took too long"}'
    head = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
    )
    return head + body


TIMEOUT_ANSWER = _timeout_answer()


class TimedHttpProtocol(HttpToolsProtocol):
    """Every request's headers must arrive within ``header_timeout`` seconds of its first byte
    (or of the connection, for the first request)."""

    header_timeout = 10.0  # set on the subclass ``timed_http`` makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(TIMEOUT_ANSWER)
            self.transport.close()


def timed_http(header_timeout: float) -> type[TimedHttpProtocol]:
    return type("TimedHttp", (TimedHttpProtocol,), {"header_timeout": header_timeout})
