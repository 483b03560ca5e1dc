"""The open WebSocket connections of this process, reachable from any thread.

The WebSocket gateway registers each connection ``$connect`` accepted and unregisters it
when it closes; the ``@connections`` management API and the in-process Push adapter send
to it and close it from other threads (request handlers, queue workers), as API Gateway
lets a backend do with its connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

MAX_FRAME = 128 * 1024  # PostToConnection's Data limit


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(eq=False)
class OpenConnection:
    """One accepted connection, shared by the loop thread and the registry's callers."""

    connection_id: str
    websocket: ServerConnection
    loop: asyncio.AbstractEventLoop
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)
    disconnected: bool = False  # touched on the loop thread only


class ConnectionRegistry:
    """The open connections, for ``@connections`` and the in-process Push, called from other threads.

    A connection is here from the moment it opens (after ``$connect`` accepted it)
    until it closes, as API Gateway only posts to connections past ``$connect``.
    """

    def __init__(self, send_timeout: float = 5.0) -> None:
        self._send_timeout = send_timeout
        self._lock = threading.Lock()
        self._open: dict[str, OpenConnection] = {}

    def register(self, connection: OpenConnection) -> None:
        with self._lock:
            self._open[connection.connection_id] = connection

    def unregister(self, connection_id: str) -> OpenConnection | None:
        with self._lock:
            return self._open.pop(connection_id, None)

    def _get(self, connection_id: str) -> OpenConnection | None:
        with self._lock:
            return self._open.get(connection_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def post(self, connection_id: str, data: bytes) -> bool:
        """Send one frame and wait until it is written; False when the connection is unknown or closed.

        UTF-8 data goes out as a text frame (what browsers and our JSON clients
        expect), anything else as a binary frame. Raises ``TimeoutError`` when the
        client does not read fast enough.
        """
        connection = self._get(connection_id)
        if connection is None:
            return False
        _refuse_on_loop(connection.loop)
        message: str | bytes
        try:
            message = data.decode("utf-8")
        except UnicodeDecodeError:
            message = data
        future = asyncio.run_coroutine_threadsafe(connection.websocket.send(message), connection.loop)
        try:
            future.result(self._send_timeout)
        except ConnectionClosed:
            self.unregister(connection_id)
            return False
        except TimeoutError:
            future.cancel()
            raise TimeoutError("the WebSocket client is not reading its frames") from None
        return True

    def info(self, connection_id: str) -> dict[str, Any] | None:
        """What API Gateway's GetConnection answers, or None when the connection is gone."""
        connection = self._get(connection_id)
        if connection is None:
            return None
        return {
            "connectedAt": _iso(connection.connected_at),
            "lastActiveAt": _iso(connection.last_active_at),
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
        }

    def close(self, connection_id: str) -> bool:
        """Start closing a connection (its ``$disconnect`` follows); False when it is already gone."""
        connection = self.unregister(connection_id)
        if connection is None:
            return False
        _refuse_on_loop(connection.loop)
        future = asyncio.run_coroutine_threadsafe(connection.websocket.close(), connection.loop)
        # On a timeout the closing handshake goes on in the background; the id is gone already.
        with contextlib.suppress(TimeoutError):
            future.result(self._send_timeout)
        return True


def _refuse_on_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Blocking on the loop's own thread would deadlock it: handlers must run on worker threads."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return
    if running is loop:
        raise RuntimeError("ConnectionRegistry blocks: call it from a worker thread, not the event loop")
