"""The open WebSocket connections of this process, written to from any thread without waiting.

The WebSocket routes register each connection ``$connect`` accepted and unregister it when it
closes. Pushes come from worker threads (handlers, the cluster endpoint): ``post_many``
serialises the frame once, finds the connections, and hands the whole batch to the event loop
in one call; the loop writes the same bytes to each socket. A client whose socket already holds
more than ``send_buffer`` unread bytes is dropped rather than buffered for: it reconnects and
catches up from the store, and nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from websockets.frames import Frame, Opcode

from bocage.local.protocols import Wire

logger = logging.getLogger(__name__)

MAX_FRAME = 128 * 1024  # PostToConnection's Data limit
CLOSE_TIMEOUT = 5.0  # a client that does not take our close frame is dropped after this


def encode_frame(data: bytes) -> bytes:
    """The whole WebSocket frame, as a server sends it (unmasked): text for UTF-8, else binary."""
    try:
        data.decode("utf-8")
        opcode = Opcode.TEXT
    except UnicodeDecodeError:
        opcode = Opcode.BINARY
    return Frame(opcode, data).serialize(mask=False)


@dataclass(eq=False, slots=True)
class LiveConnection:
    """One accepted connection; its fields are touched on the event loop only."""

    connection_id: str
    wire: Wire
    #: Sends the ASGI close message (code, reason); the connection's handler then gets its disconnect.
    send_close: Callable[[int, str], Awaitable[None]]
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.monotonic)
    opened: float = field(default_factory=time.monotonic)
    #: Frames pushed while $connect still runs (its presence is written, the handshake not
    #: answered yet): written right after the handshake, so none is lost. None once open.
    pending: list[bytes] | None = field(default_factory=list)
    pending_bytes: int = 0


class ConnectionRegistry:
    """This process's open connections, reachable from any thread."""

    def __init__(self, send_buffer: int = 1024 * 1024) -> None:
        self._send_buffer = send_buffer
        self._lock = threading.Lock()
        self._open: dict[str, LiveConnection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.dropped = 0  # slow clients dropped so far

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that owns the sockets (the server's, at start-up)."""
        self._loop = loop

    def register(self, connection: LiveConnection) -> None:
        """From before ``$connect`` runs: pushes to it wait in ``pending`` until ``opened``."""
        with self._lock:
            self._open[connection.connection_id] = connection

    def opened(self, connection: LiveConnection) -> None:
        """On the loop, once the handshake is answered: write what was pushed meanwhile."""
        pending, connection.pending = connection.pending, None
        for frame in pending or ():
            connection.wire.write(frame)

    def unregister(self, connection_id: str) -> LiveConnection | None:
        with self._lock:
            return self._open.pop(connection_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def __contains__(self, connection_id: object) -> bool:
        with self._lock:
            return connection_id in self._open

    def snapshot(self) -> list[LiveConnection]:
        with self._lock:
            return list(self._open.values())

    # -- from any thread ----------------------------------------------------------------------

    def post_many(self, connection_ids: Iterable[str], data: bytes) -> list[str]:
        """Queue one frame to many connections; returns the ids not open here (gone).

        Never waits for the sockets: the event loop writes the batch as soon as it runs.
        """
        found: list[LiveConnection] = []
        gone: list[str] = []
        with self._lock:
            for connection_id in connection_ids:
                connection = self._open.get(connection_id)
                if connection is None:
                    gone.append(connection_id)
                else:
                    found.append(connection)
        if found:
            self._on_loop(self._write_all, found, encode_frame(data))
        return gone

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> bool:
        """Start closing a connection (its ``$disconnect`` follows); False when it is not open here."""
        connection = self.unregister(connection_id)
        if connection is None:
            return False
        self._on_loop(self._start_closing, connection, code, reason)
        return True

    def _on_loop(self, callback: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback(*args)
        else:
            loop.call_soon_threadsafe(callback, *args)

    # -- on the event loop ----------------------------------------------------------------------

    def _write_all(self, connections: list[LiveConnection], frame: bytes) -> None:
        limit = self._send_buffer - len(frame)
        for connection in connections:
            if connection.pending is not None:
                if connection.pending_bytes <= limit:
                    connection.pending.append(frame)
                    connection.pending_bytes += len(frame)
            elif connection.wire.backlog() > limit:
                self._drop(connection)
            else:
                connection.wire.write(frame)

    def _drop(self, connection: LiveConnection) -> None:
        """A client that stopped reading: cut it off; it catches up when it reconnects."""
        self.dropped += 1
        self.unregister(connection.connection_id)
        logger.warning("slow WebSocket client dropped", extra={"connection_id": connection.connection_id})
        connection.wire.abort()

    def _start_closing(self, connection: LiveConnection, code: int, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self._closing_handshake(connection, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _closing_handshake(self, connection: LiveConnection, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await connection.send_close(code, reason)
        except TimeoutError:
            connection.wire.abort()
        except Exception:  # already gone: its disconnect is on its way
            with contextlib.suppress(Exception):
                connection.wire.abort()

    def close_idle(self, idle_for: float, max_age: float) -> int:
        """Close (1001, as API Gateway does) what was silent for ``idle_for`` or open ``max_age`` seconds."""
        now = time.monotonic()
        stale = [c for c in self.snapshot() if now - c.last_active > idle_for or now - c.opened > max_age]
        for connection in stale:
            self.close(connection.connection_id, 1001, "Going away")
        return len(stale)
