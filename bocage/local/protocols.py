"""uvicorn's HTTP and WebSocket protocols, with the two things ``bocage serve`` adds to them.

- HTTP: a deadline on a request's headers. uvicorn times out idle keep-alive connections but
  not a client that sends its headers a byte at a time; this answers such a client 408 and
  hangs up, so slow clients cannot hold connections open.
- WebSocket: the accepted connection's socket (``Wire``), handed to the app in the scope's
  extensions, so a push writes one frame, serialised once for all its recipients, straight to
  each socket, sees each socket's backlog, and drops a client that does not read.

Both subclass uvicorn's own classes and touch only ``transport`` and the closing flags;
uvicorn is pinned (requirements-dev.txt); tests/e2e/test_gateway_framing.py and
test_local_websocket.py cover both.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

#: The scope extension that carries a ``Wire``.
WIRE = "bocage.wire"


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


class Wire:
    """One accepted WebSocket's socket, for writing frames that are already serialised."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WireWebSocketProtocol) -> None:
        self._protocol = protocol

    def write(self, frame: bytes) -> bool:
        """Queue a whole frame on the socket; False once the connection is closing."""
        protocol = self._protocol
        transport = protocol.transport
        if protocol.close_sent or protocol.disconnected or transport.is_closing():
            return False
        transport.write(frame)
        return True

    def backlog(self) -> int:
        """Bytes written but not yet taken by the client."""
        return self._protocol.transport.get_write_buffer_size()

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included (the app then gets its disconnect)."""
        self._protocol.transport.abort()


class WireWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # None: a refused handshake, no app runs
            scope["extensions"][WIRE] = Wire(self)
