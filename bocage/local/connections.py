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
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from websockets.frames import Frame, Opcode

from bocage.local.rate_limit import FrameLimiter

logger = logging.getLogger(__name__)

MAX_FRAME = 128 * 1024  # PostToConnection's Data limit
PING_FRAME = Frame(Opcode.PING, b"").serialize(mask=False)


class Wire(Protocol):
    """An accepted WebSocket's socket, on the event loop (websocket_protocol.LeanWebSocket)."""

    def write(self, frame: bytes) -> bool:
        """Queue a whole frame, already serialised; False once the connection is closing."""

    def send(self, frame: bytes, limit: int) -> bool:
        """Queue a frame unless more than ``limit`` bytes wait unread: False then (a slow client)."""

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included."""

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake (a client that does not answer is cut off)."""


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
    source_ip: str
    user_agent: str
    limiter: FrameLimiter | None = None
    #: Whether the client sent anything since the last keep-alive ping (``ping_all``).
    alive: bool = True
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
        # Calls from other threads waiting for the loop, and whether it was woken for them.
        self._calls_lock = threading.Lock()
        self._calls: list[tuple[Callable[..., None], tuple[object, ...]]] = []
        self._wake_pending = False
        self.dropped = 0  # slow clients dropped so far

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that owns the sockets (the server's, at start-up). Writes queued for a
        previous loop that never ran them are dropped (their sockets went with it), and the next
        call wakes the new loop."""
        with self._calls_lock:
            self._calls.clear()
            self._wake_pending = False
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
        self._on_loop(connection.wire.close, code, reason)
        return True

    def _on_loop(self, callback: Callable[..., None], *args: object) -> None:
        """Run on the event loop, in call order. From another thread, calls queue up and wake the
        loop once for all that arrive before it runs them (a send's fan-out and its ack: one
        wake-up, not two; each costs a syscall and, on a busy machine, a context switch)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback(*args)
            return
        with self._calls_lock:
            self._calls.append((callback, args))
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._run_calls)
        except RuntimeError:  # the loop closed meanwhile: nothing is written any more
            with self._calls_lock:
                self._calls.clear()
                self._wake_pending = False

    def _run_calls(self) -> None:
        with self._calls_lock:
            calls, self._calls = self._calls, []
            self._wake_pending = False
        for callback, args in calls:
            try:
                callback(*args)
            except Exception:  # one failed write never keeps the others from going out
                logger.exception("a queued WebSocket write failed")

    # -- on the event loop ----------------------------------------------------------------------

    def _write_all(self, connections: list[LiveConnection], frame: bytes) -> None:
        limit = self._send_buffer - len(frame)
        for connection in connections:
            if connection.pending is not None:
                if connection.pending_bytes <= limit:
                    connection.pending.append(frame)
                    connection.pending_bytes += len(frame)
            elif not connection.wire.send(frame, limit):
                self._drop(connection)

    def _drop(self, connection: LiveConnection) -> None:
        """A client that stopped reading: cut it off; it catches up when it reconnects."""
        self.dropped += 1
        self.unregister(connection.connection_id)
        logger.warning("slow WebSocket client dropped", extra={"connection_id": connection.connection_id})
        connection.wire.abort()

    def close_idle(self, idle_for: float, max_age: float) -> int:
        """Close (1001, as API Gateway does) what was silent for ``idle_for`` or open ``max_age`` seconds."""
        now = time.monotonic()
        stale = [c for c in self.snapshot() if now - c.last_active > idle_for or now - c.opened > max_age]
        for connection in stale:
            self.close(connection.connection_id, 1001, "Going away")
        return len(stale)

    def ping_all(self) -> int:
        """On the loop: ping every open connection, and cut off those that sent nothing, not even
        a pong, since the last round (their TCP connection is dead); returns how many were cut."""
        dead = 0
        for connection in self.snapshot():
            if connection.pending is not None:
                continue
            if not connection.alive:
                dead += 1
                self.unregister(connection.connection_id)
                connection.wire.abort()
                continue
            connection.alive = False
            connection.wire.write(PING_FRAME)
        return dead
