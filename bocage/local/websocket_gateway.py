"""An API Gateway WebSocket API on one machine, in front of the same Chalice handlers.

``chalice local`` serves no WebSockets, so this plays the three routes
($connect, $default, $disconnect) with API Gateway-shaped events, and keeps the
open connections in a ``ConnectionRegistry`` (bocage/local/connections.py), through
which pushes reach them. The asyncio server runs on a thread
of its own; the (blocking) Chalice handlers run on a thread pool, never on the loop.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import email.utils
import http
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalice.app import Chalice
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from bocage.local.connections import ConnectionRegistry, OpenConnection
from bocage.local.lambda_events import STAGE, LambdaContext, result_body

logger = logging.getLogger(__name__)

API_ID = "local"
MAX_MESSAGE = 128 * 1024  # API Gateway's WebSocket message limit
CONNECT_TIMEOUT = 30.0  # API Gateway's integration timeout is 29 s


def new_connection_id() -> str:
    """Sixteen characters ending in '=' like API Gateway's, from the URL-safe alphabet: ids go in paths."""
    return base64.urlsafe_b64encode(secrets.token_bytes(10)).decode("ascii")


def _refusal(status: int, body: bytes, content_type: str) -> Response:
    """The HTTP answer to a handshake that $connect refused, with the handler's status and body."""
    if not 200 <= status <= 599:
        status = 500
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Refused"
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
        ]
    )
    return Response(status, reason, headers, body)


def _response_body(result: dict[str, Any]) -> tuple[bytes, str]:
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    return result_body(result), str(headers.get("content-type", "text/plain; charset=utf-8"))


class WebSocketGateway:
    """Serve a Chalice app's ``on_ws_*`` handlers over a real WebSocket server.

    ``connect``/``message``/``disconnect`` name the handlers in ``app.handler_map``
    (by default the decorated functions' names). Frames of one connection are
    handled in order; different connections in parallel, up to ``workers`` at once.
    """

    def __init__(
        self,
        app: Chalice,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        connect: str = "ws_connect",
        message: str = "ws_message",
        disconnect: str = "ws_disconnect",
        connections: ConnectionRegistry | None = None,
        workers: int = 16,
    ) -> None:
        self._app = app
        self.host = host
        self.port = port
        self._routes = {"$connect": connect, "$default": message, "$disconnect": disconnect}
        self.connections = connections if connections is not None else ConnectionRegistry()
        self._workers = workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        # Accepted by $connect, handler not started yet: whoever pops first (the handler,
        # or the watcher of a connection lost mid-handshake) owns its $disconnect.
        self._accepted: dict[ServerConnection, OpenConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def domain_name(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Listen, and return once connections are accepted (``port`` 0 picks a free one)."""
        missing = [name for name in self._routes.values() if name not in self._app.handler_map]
        if missing:
            raise ValueError(f"no such Chalice handlers: {', '.join(missing)}")
        if self._thread is not None:
            raise RuntimeError("already started")
        self._executor = concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="bocage-ws")
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(self._loop, ready, failure), name="bocage-ws-loop", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the WebSocket gateway did not start")
        if failure:  # e.g. the port is taken
            self._thread.join()
            self._executor.shutdown()
            self._loop = self._thread = self._executor = None
            raise failure[0]

    def stop(self, timeout: float = 30.0) -> None:
        """Close every connection (each gets its $disconnect), then stop the loop and the workers."""
        loop, thread, stopping = self._loop, self._thread, self._stopping
        if loop is None or thread is None:
            return
        if stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._loop = self._thread = self._stopping = self._executor = None

    def _run(
        self, loop: asyncio.AbstractEventLoop, ready: threading.Event, failure: list[BaseException]
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server: Server
        async with serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._connect,
            compression=None,  # API Gateway negotiates no permessage-deflate
            max_size=MAX_MESSAGE,
            open_timeout=CONNECT_TIMEOUT + 5,
        ) as server:
            self.port = int(server.sockets[0].getsockname()[1])
            logger.info("WebSocket gateway listening", extra={"url": self.url})
            ready.set()
            await self._stopping.wait()
        # Leaving ``serve`` closed the connections and waited for their handlers;
        # the watchers of connections lost mid-handshake may still be firing $disconnect.
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the three routes ------------------------------------------------------------------

    async def _connect(self, websocket: ServerConnection, request: Request) -> Response | None:
        """$connect runs before the handshake is accepted, so the handler can refuse it."""
        peer = websocket.remote_address
        connection = OpenConnection(
            connection_id=new_connection_id(),
            websocket=websocket,
            loop=asyncio.get_running_loop(),
            source_ip=str(peer[0]) if peer else "",
            user_agent=request.headers.get("User-Agent", ""),
        )
        event = self._event(connection, "$connect", "CONNECT")
        event.update(_handshake_fields(request))
        job = self._call("$connect", event)
        try:
            result = await asyncio.shield(job)
        except asyncio.CancelledError:
            # Handshake timeout or shutdown while $connect still runs: if it accepts
            # after all, API Gateway would follow with $disconnect, and so do we.
            self._spawn(self._after_abandoned_connect(job, connection))
            raise
        except Exception:
            logger.exception("$connect handler failed", extra={"connection_id": connection.connection_id})
            return _refusal(500, b'{"message": "Internal server error"}', "application/json")
        status = int(result.get("statusCode", 200))
        if status != 200:
            return _refusal(status, *_response_body(result))
        if websocket.state is State.CLOSED:  # the client left while $connect ran
            await self._disconnect(connection)
            return None
        self._accepted[websocket] = connection
        self._spawn(self._watch_handshake(websocket))
        return None

    async def _after_abandoned_connect(
        self, job: asyncio.Future[dict[str, Any]], connection: OpenConnection
    ) -> None:
        try:
            result = await job
        except Exception:
            return
        if int(result.get("statusCode", 200)) == 200:
            await self._disconnect(connection)

    async def _watch_handshake(self, websocket: ServerConnection) -> None:
        """Covers the handshake failing after $connect accepted: then no handler ever runs."""
        await websocket.wait_closed()
        connection = self._accepted.pop(websocket, None)
        if connection is not None:
            await self._disconnect(connection)

    async def _handle(self, websocket: ServerConnection) -> None:
        connection = self._accepted.pop(websocket, None)
        if connection is None:  # lost between the handshake and here: the watcher has it
            return
        self.connections.register(connection)
        try:
            async for frame in websocket:
                connection.last_active_at = time.time()
                await self._message(connection, frame)
        except ConnectionClosed:
            pass
        finally:
            self.connections.unregister(connection.connection_id)
            await self._disconnect(connection)

    async def _message(self, connection: OpenConnection, frame: str | bytes) -> None:
        event = self._event(connection, "$default", "MESSAGE")
        event["requestContext"]["messageId"] = base64.urlsafe_b64encode(secrets.token_bytes(10)).decode()
        if isinstance(frame, bytes):
            event["body"], event["isBase64Encoded"] = base64.b64encode(frame).decode("ascii"), True
        else:
            event["body"] = frame
        try:
            await self._call("$default", event)
        except Exception:
            # The handler's answer is not sent back (no route response), but a failed
            # integration is: API Gateway tells the client "Internal server error".
            logger.exception("$default handler failed", extra={"connection_id": connection.connection_id})
            with contextlib.suppress(ConnectionClosed):
                await connection.websocket.send(
                    '{"message": "Internal server error", '
                    f'"connectionId": "{connection.connection_id}", '
                    f'"requestId": "{event["requestContext"]["requestId"]}"}}'
                )

    async def _disconnect(self, connection: OpenConnection) -> None:
        """Exactly once per accepted connection, after its last $default."""
        if connection.disconnected:
            return
        connection.disconnected = True
        event = self._event(connection, "$disconnect", "DISCONNECT")
        websocket = connection.websocket
        code = websocket.close_code if websocket.close_code is not None else 1006
        event["requestContext"]["disconnectStatusCode"] = code
        event["requestContext"]["disconnectReason"] = websocket.close_reason or ""
        try:
            await self._call("$disconnect", event)
        except Exception:
            logger.exception("$disconnect handler failed", extra={"connection_id": connection.connection_id})

    # -- events ----------------------------------------------------------------------------

    def _call(self, route_key: str, event: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        assert self._executor is not None
        handler = self._app.handler_map[self._routes[route_key]]

        def invoke() -> dict[str, Any]:
            result = handler(event, LambdaContext())
            return result if isinstance(result, dict) else {"statusCode": 200}

        return asyncio.get_running_loop().run_in_executor(self._executor, invoke)

    def _event(self, connection: OpenConnection, route_key: str, event_type: str) -> dict[str, Any]:
        now = time.time()
        request_id = str(uuid.uuid4())
        return {
            "requestContext": {
                "routeKey": route_key,
                "eventType": event_type,
                "messageDirection": "IN",
                "connectionId": connection.connection_id,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "connectedAt": int(connection.connected_at * 1000),
                "requestTimeEpoch": int(now * 1000),
                "requestTime": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "domainName": self.domain_name,
                "stage": STAGE,
                "apiId": API_ID,
                "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            },
            "isBase64Encoded": False,
        }


def _handshake_fields(request: Request) -> dict[str, Any]:
    """What $connect adds to the event: the handshake's headers and query string."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers.raw_items():
        multi_headers.setdefault(name, []).append(value)
    multi_query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
    return {
        "headers": {name: ",".join(values) for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
    }
