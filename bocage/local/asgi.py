"""``bocage serve`` as one ASGI application, and the uvicorn server that runs it.

One server, two listeners: the public one (the REST API, the web app, and WebSockets on
``/ws``) and the internal one, where replicas of the same store push to each other's
connections. Which listener a request came in on decides what it may reach, so the internal
endpoint is never on the public port (there, its paths are unknown routes: 404).

HTTP requests go through uvicorn's protocol to the ASGI app; WebSocket upgrades go to a lean
protocol of our own (websocket_protocol.py), which calls the WebSocket routes directly: no
ASGI task, queue or scope per idle connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

import uvicorn
from chalice.app import Chalice

from bocage.local.connections import ConnectionRegistry
from bocage.local.protocols import timed_http
from bocage.local.rate_limit import SourceLimiter, VoteAllowance
from bocage.local.rest import Receive, RestGateway, Scope, Send
from bocage.local.serve_settings import ServeSettings
from bocage.local.sockets import MAX_AGE, MAX_MESSAGE, WebSocketRoutes
from bocage.local.websocket_protocol import LeanWebSocket, lean_websocket
from chalicelib.adapters.local_objects import BLOB_PATH

logger = logging.getLogger(__name__)

AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


class BocageAsgi:
    def __init__(
        self,
        rest: AsgiApp,
        websocket_protocol: type[LeanWebSocket] | None = None,
        *,
        internal: AsgiApp | None = None,
        internal_port: int | None = None,
        startup: Hook | None = None,
        shutdown: Hook | None = None,
        blobs: AsgiApp | None = None,
    ) -> None:
        self._rest = rest
        #: uvicorn's ``ws`` protocol class (None: no WebSockets); upgrades never reach this ASGI app.
        self.websocket_protocol = websocket_protocol
        self._blobs = blobs
        self._internal = internal
        self._internal_port = internal_port
        self._startup = startup
        self._shutdown = shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":  # WebSockets go to ``websocket_protocol``, never here
            return
        server = scope.get("server")
        if self._internal is not None and server is not None and server[1] == self._internal_port:
            await self._internal(scope, receive, send)
            return
        if self._blobs is not None and scope["path"].startswith(BLOB_PATH):
            await self._blobs(scope, receive, send)
            return
        await self._rest(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._startup is not None:
                        await self._startup()
                except Exception as exc:
                    logger.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._shutdown is not None:
                    await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: a free one), before the server runs: its address is known."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def event_loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def make_server(app: BocageAsgi, settings: ServeSettings) -> uvicorn.Server:
    """uvicorn with the runtime's limits; run it with ``server.run(sockets=[...])``.

    Stopping (SIGTERM, SIGINT) closes the listeners, ends every WebSocket with 1012 (Service
    Restart: both clients reconnect), waits up to ``shutdown_timeout`` for requests in flight
    and ``$disconnect`` handlers, then runs the app's shutdown.
    """
    config = uvicorn.Config(
        app,
        http=timed_http(settings.read_timeout),
        # No compression: API Gateway negotiates none, and frames are serialised once.
        ws=app.websocket_protocol or "none",
        loop=event_loop_name(),
        lifespan="on",
        timeout_keep_alive=settings.keepalive_timeout,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        limit_concurrency=settings.max_connections,
        log_config=None,
        access_log=False,  # full paths carry ids; the app logs its routes
        server_header=False,
        proxy_headers=False,  # the peer's address, as API Gateway's sourceIp
    )
    return uvicorn.Server(config)


def assemble(
    app: Chalice,
    executor: Executor,
    connections: ConnectionRegistry,
    options: ServeSettings,
    *,
    domain_name: str,
    internal: AsgiApp | None = None,
    internal_port: int | None = None,
    startup: Hook | None = None,
    shutdown: Hook | None = None,
    blobs: AsgiApp | None = None,
) -> BocageAsgi:
    """The ASGI app of ``bocage serve`` around a Chalice app: REST, WebSockets and their upkeep
    (idle WebSockets closed, the worker pool stopped last); ``startup``/``shutdown`` add to it."""
    attempts = (
        SourceLimiter(options.activation_rate, options.activation_burst)
        if options.activation_rate > 0
        else None
    )
    votes = VoteAllowance(options.vote_rate, options.vote_burst) if options.vote_rate > 0 else None
    rest = RestGateway(
        app,
        executor,
        read_timeout=options.read_timeout,
        handler_timeout=options.handler_timeout,
        attempts=attempts,
        votes=votes,
        trusted_proxies=options.trusted_proxies,
    )
    sockets = WebSocketRoutes(
        app,
        executor,
        connections,
        domain_name=domain_name,
        max_connections=options.max_connections,
        frame_rate=options.ws_frame_rate,
        frame_burst=options.ws_frame_burst,
        internal_port=internal_port,
        votes=votes,
        trusted_proxies=options.trusted_proxies,
    )
    background: list[asyncio.Task[None]] = []
    idle = options.ws_idle_timeout
    sweep_every = max(0.2, min(5.0, idle / 4))

    async def start() -> None:
        connections.bind(asyncio.get_running_loop())
        background.append(
            asyncio.create_task(every(sweep_every, lambda: connections.close_idle(idle, MAX_AGE)))
        )
        if options.ws_ping_interval > 0:  # one sweep pings every connection (none has a timer)
            background.append(asyncio.create_task(every(options.ws_ping_interval, connections.ping_all)))
        if startup is not None:
            await startup()

    async def stop() -> None:
        for task in background:
            task.cancel()
        if shutdown is not None:
            await shutdown()
        await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)

    return BocageAsgi(
        rest,
        lean_websocket(sockets, MAX_MESSAGE),
        internal=internal,
        internal_port=internal_port,
        startup=start,
        shutdown=stop,
        blobs=blobs,
    )


async def every(seconds: float, job: Callable[[], object]) -> None:
    """Run ``job`` on the loop every ``seconds``, until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        try:
            job()
        except Exception:
            logger.exception("periodic task failed")


class ServerThread:
    """A server on a thread of its own, for tests and benchmarks (``bocage serve`` runs it on
    the main thread, where it also handles SIGTERM and SIGINT)."""

    def __init__(self, server: uvicorn.Server, listeners: list[socket.socket]) -> None:
        self.server = server
        self.listeners = listeners
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.listeners[0].getsockname()[1])

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": self.listeners}, name="bocage-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop as on SIGTERM: drain, close WebSockets with 1012, run the app's shutdown."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        for listener in self.listeners:
            listener.close()
