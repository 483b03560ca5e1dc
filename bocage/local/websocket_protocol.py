"""The WebSocket side of ``bocage serve``'s server, lean: one small object per connection.

uvicorn hands a WebSocket upgrade to a protocol class of the server's choosing (its ``ws``
setting). Its own keeps, per connection, an ASGI task, an ``asyncio.Queue``, a scope with the
handshake's headers and a protocol object of some thirty fields: about 20 KB of Python objects,
or 200 MB for 10,000 idle connections. This one keeps what ``bocage serve`` needs: the socket,
a ``websockets`` sans-I/O protocol for the framing (the library parses every frame, answers
pings and plays the closing handshake; nothing here reads a frame's bytes), the registry entry
(``LiveConnection``) and, only while something is to be done, a task that hands the
connection's messages, in order, to the Chalice handlers (``WebSocketRoutes``).

The handshake is parsed by a first ``ServerProtocol``; once it is answered, a fresh one in the
OPEN state takes over (the first keeps the request, headers included, in its parser's frame).

It joins uvicorn's ``server_state`` as its own protocol does: counted in its connections,
``shutdown()`` on stopping (a close with 1012, Service Restart), and its handler tasks waited for
before the worker pool stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from bocage.local.connections import LiveConnection
    from bocage.local.sockets import WebSocketRoutes

# One for all connections; websockets logs each opening and refusal at INFO: not worth a line each.
_framing_logger = logging.getLogger("bocage.local.websocket")
_framing_logger.setLevel(logging.WARNING)

CLOSE_TIMEOUT = 5.0  # a client that does not answer our close frame is cut off after this
INBOX = 8  # messages waiting for their handler, beyond which the client is no longer read
#: Pongs and close frames waiting for a client that does not read: past this, it is cut off (a
#: client sending pings and never reading would otherwise grow this process's memory).
MAX_CONTROL_BACKLOG = 1024 * 1024
_LOST = object()  # in the inbox: the connection ended, $disconnect comes after what is queued


class LeanWebSocket(asyncio.Protocol):
    """One WebSocket connection, from its upgrade request to its end; also the registry's ``Wire``."""

    routes: WebSocketRoutes  # set on the subclass ``lean_websocket`` makes
    max_size: int = 128 * 1024

    __slots__ = (
        "_close_code",
        "_close_timer",
        "_fragments",
        "_inbox",
        "_server_state",
        "_text",
        "_worker",
        "_ws",
        "connection",
        "transport",
    )

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any]) -> None:
        self._server_state = server_state
        self.transport: asyncio.Transport | None = None
        self._ws = ServerProtocol(max_size=self.max_size, logger=_framing_logger)
        #: The registry's entry, once the handshake is answered (None: not open, or refused).
        self.connection: LiveConnection | None = None
        self._fragments: list[bytes] | None = None  # a fragmented message's parts so far
        self._text = False  # and whether it is text
        self._inbox: deque[object] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._close_code: tuple[int, str] | None = None  # set once the connection has ended

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server_state.connections.add(self)  # type: ignore[arg-type]  # counted, and shut down

    def data_received(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        if ws.state is State.CONNECTING:
            self._handshake_events()
            return
        for event in ws.events_received():
            assert isinstance(event, Frame)
            self._frame(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._server_state.connections.discard(self)
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        ws = self._ws
        if ws.close_rcvd is not None:
            self._close_code = (ws.close_rcvd.code, ws.close_rcvd.reason)
        elif ws.close_sent is not None:
            self._close_code = (ws.close_sent.code, ws.close_sent.reason)
        else:
            self._close_code = (1006, "")
        if self.connection is not None:  # it was open: gone now, $disconnect after its messages
            self.routes.connections.unregister(self.connection.connection_id)
            self._enqueue(_LOST)
        # else: refused, or $connect still runs (the handshake task sees it has ended)

    # -- the handshake --------------------------------------------------------------------------

    def _handshake_events(self) -> None:
        ws = self._ws
        if ws.handshake_exc is not None:
            # Not a WebSocket request: websockets queued its answer (431, 414), or nothing.
            output = b"".join(ws.data_to_send())
            if not output:
                output = ws.reject(
                    HTTPStatus.BAD_REQUEST, "Failed to open a WebSocket connection.\n"
                ).serialize()
            self._write_and_close(output)
            return
        for event in ws.events_received():
            if isinstance(event, Request) and self.transport is not None:
                port = self.transport.get_extra_info("sockname")[1]
                self._track(self.routes.handshake(self, event, port))

    def refuse(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """Answer the upgrade request with an HTTP status instead of accepting it, and hang up."""
        if not 200 <= status <= 599:
            status = 500
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
        self._write_and_close(Response(status, phrase, headers, body).serialize())

    def check(self, request: Request) -> Response | None:
        """The 101 answer to ``request``, before any handler runs; None when it is no valid
        upgrade (websockets' answer, such as 400 with its reason, is sent and the client cut off)."""
        response = self._ws.accept(request)
        if response.status_code == 101:
            return response
        self._ws.send_response(response)
        self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        return None

    def accept(self, response: Response, connection: LiveConnection) -> bool:
        """Send the 101 of ``check`` and serve ``connection``; False when the client has gone
        meanwhile: the caller then owes it its $disconnect."""
        if self._close_code is not None or self.transport is None or self.transport.is_closing():
            return False
        self._ws.send_response(response)
        unread = bytes(self._ws.reader.buffer)  # frames a client sent before the 101 (it should not)
        self.transport.write(b"".join(self._ws.data_to_send()))
        # The handshake's parser holds the request in its frame: frames go to a fresh protocol.
        self._ws = ServerProtocol(state=State.OPEN, max_size=self.max_size, logger=_framing_logger)
        self.connection = connection
        if unread:
            self.data_received(unread)
        return True

    def peer(self) -> str:
        """The client's address, as API Gateway's ``sourceIp``."""
        peername = None if self.transport is None else self.transport.get_extra_info("peername")
        return str(peername[0]) if peername else ""

    def _write_and_close(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.transport.close()

    # -- frames -------------------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        connection = self.connection
        if connection is None:
            return
        connection.alive = True  # any frame answers the keep-alive ping
        if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY or frame.opcode is Opcode.CONT:
            self._data(connection, frame)

    def _data(self, connection: LiveConnection, frame: Frame) -> None:
        """A message, once whole (websockets bounds a fragmented one's total to ``max_size``)."""
        if frame.opcode is not Opcode.CONT:
            self._fragments, self._text = [bytes(frame.data)], frame.opcode is Opcode.TEXT
        elif self._fragments is not None:
            self._fragments.append(bytes(frame.data))
        if not frame.fin or self._fragments is None:
            return
        data = self._fragments[0] if len(self._fragments) == 1 else b"".join(self._fragments)
        self._fragments = None
        if self._ws.close_sent is not None:
            return  # closing: what still arrives is not handled
        message: str | bytes
        if self._text:
            try:
                message = data.decode("utf-8")
            except UnicodeDecodeError:
                self.close(1007, "invalid UTF-8")
                return
        else:
            message = data
        self._enqueue(message)

    def _enqueue(self, item: object) -> None:
        """Messages are handled one after the other, then $disconnect: a task only while busy.

        A client that sends faster than its messages are handled stops being read (TCP then
        slows it down) once ``INBOX`` messages wait, as uvicorn's own protocol does.
        """
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(item)
        if self._worker is None:
            self._worker = self._track(self._drain())
        elif len(self._inbox) >= INBOX and self.transport is not None and self._close_code is None:
            self.transport.pause_reading()

    async def _drain(self) -> None:
        connection = self.connection
        assert connection is not None
        try:
            while self._inbox:
                item = self._inbox.popleft()
                if item is _LOST:
                    code, reason = self._close_code or (1006, "")
                    await self.routes.closed(connection, code, reason)
                    return
                assert isinstance(item, str | bytes)
                if len(self._inbox) < INBOX:
                    self._resume_reading()
                if self.routes.admit(connection):  # the frame rate, as messages are taken in
                    await self.routes.message(connection, item)
        finally:
            self._worker = None
            if not self._inbox:
                self._inbox = None

    def _resume_reading(self) -> None:
        transport = self.transport
        if transport is not None and self._close_code is None and not transport.is_reading():
            transport.resume_reading()

    def _track(self, work: Awaitable[None]) -> asyncio.Task[None]:
        """A task uvicorn waits for when stopping (before the worker pool stops)."""
        task = asyncio.ensure_future(work)
        tasks = self._server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    def _flush(self) -> None:
        """Write what websockets has to send (pongs, close frames); its EOF ends the connection."""
        transport = self.transport
        if transport is None:
            return
        for data in self._ws.data_to_send():
            if not data:
                transport.close()
                return
            if transport.is_closing():
                return
            if transport.get_write_buffer_size() > MAX_CONTROL_BACKLOG:
                transport.abort()
                return
            transport.write(data)

    # -- the Wire: what the registry and the server do with an open connection -----------------------

    def write(self, frame: bytes) -> bool:
        """Queue a whole frame, already serialised; False once the connection is closing."""
        transport = self.transport
        if transport is None or self._ws.close_sent is not None or transport.is_closing():
            return False
        transport.write(frame)
        return True

    def send(self, frame: bytes, limit: int) -> bool:
        """``write``, for a push to many: False, and nothing written, when more than ``limit``
        bytes already wait for the client (it stopped reading: the registry drops it)."""
        transport = self.transport
        if transport is None or self._ws.close_sent is not None or transport.is_closing():
            return True  # closing: nothing to write, and nobody to drop
        if transport.get_write_buffer_size() > limit:
            return False
        transport.write(frame)
        return True

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included (its $disconnect follows)."""
        if self.transport is not None:
            self.transport.abort()

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; a client that does not answer is cut off after CLOSE_TIMEOUT."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._ws.state is not State.OPEN:
            return
        self._ws.send_close(code, reason)
        self._flush()
        self._close_timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.abort)

    def shutdown(self) -> None:
        """uvicorn is stopping: close with 1012 (clients reconnect elsewhere), or refuse a handshake."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._ws.state is State.OPEN:
            self._ws.send_close(1012, "")
            self._flush()
            transport.close()
        elif self._ws.state is State.CONNECTING:
            self.refuse(503, b'{"message": "The server is restarting; try again"}')


def lean_websocket(routes: WebSocketRoutes, max_size: int) -> type[LeanWebSocket]:
    """The protocol class for uvicorn's ``ws`` setting, serving ``routes``."""
    return type(
        "BocageWebSocket", (LeanWebSocket,), {"routes": routes, "max_size": max_size, "__slots__": ()}
    )
