"""The WebSocket side of ``bocage serve``: API Gateway's WebSocket API, on ``/ws``.

Each connection plays the three routes ($connect, $default, $disconnect) with the events API
Gateway sends, on the very Chalice handlers the Lambdas run (in worker threads, never on the
event loop). ``$connect`` runs before the handshake is answered, so it can refuse it with its
own status and body. Frames of one connection are handled in order; different connections in
parallel. Accepted connections are kept in a ``ConnectionRegistry``, through which pushes
reach them; ``$disconnect`` runs exactly once per accepted connection, however it ends. The
sockets themselves are ``LeanWebSocket`` protocols (websocket_protocol.py), which call in here.

Each connection's frames are rate-limited here, before any handler runs (``FrameLimiter``):
on AWS every frame is a Lambda invocation and API Gateway throttles them per stage instead.
A ``send`` of a vote also spends its source address's ``VoteAllowance``, shared with REST.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from chalice.app import Chalice

from bocage.local.connections import ConnectionRegistry, LiveConnection
from bocage.local.lambda_events import STAGE, LambdaContext, result_body
from bocage.local.rate_limit import FrameLimiter, Network, VoteAllowance, client_address, json_object
from chalicelib.domain.frames import CLOSE_RATE_LIMITED, ErrorFrame, frame_bytes
from chalicelib.errors import TooManyRequests

if TYPE_CHECKING:
    from websockets.http11 import Request

    from bocage.local.websocket_protocol import LeanWebSocket

logger = logging.getLogger(__name__)

API_ID = "local"
WS_PATH = "/ws"
MAX_MESSAGE = 128 * 1024  # API Gateway's WebSocket message limit
MAX_AGE = 2 * 3600.0  # API Gateway closes connections after two hours (presence lives 2 h 10 min)
ROUTES = {"$connect": "ws_connect", "$default": "ws_message", "$disconnect": "ws_disconnect"}
FRAME_RATE = 20.0  # frames a second per connection, after a burst of FRAME_BURST
FRAME_BURST = 40
FRAME_STRIKES = 10  # refused frames (refilled one a second) before the connection is closed


def new_connection_id() -> str:
    """Sixteen characters ending in '=' like API Gateway's, from the URL-safe alphabet: ids go in paths."""
    return base64.urlsafe_b64encode(secrets.token_bytes(10)).decode("ascii")


class WebSocketRoutes:
    """Serve a Chalice app's ``on_ws_*`` handlers to the server's WebSocket connections."""

    def __init__(
        self,
        app: Chalice,
        executor: Executor,
        connections: ConnectionRegistry,
        *,
        domain_name: str = "localhost",
        max_connections: int = 20_000,
        routes: dict[str, str] | None = None,
        frame_rate: float = FRAME_RATE,
        frame_burst: int = FRAME_BURST,
        internal_port: int | None = None,
        votes: VoteAllowance | None = None,
        trusted_proxies: tuple[Network, ...] = (),
    ) -> None:
        self._app = app
        self._executor = executor
        self.connections = connections
        self.domain_name = domain_name
        self._max_connections = max_connections
        self._routes = routes or ROUTES
        self._frame_rate = frame_rate  # 0: no limit
        self._frame_burst = frame_burst
        self._internal_port = internal_port  # the replicas' endpoint: no WebSocket there
        self._votes = votes
        self._trusted = trusted_proxies
        self._rate_limited = frame_bytes(
            ErrorFrame.of(
                TooManyRequests(f"more than {frame_rate:g} frames a second: this one was not handled")
            )
        )
        missing = [name for name in self._routes.values() if name not in app.handler_map]
        if missing:
            raise ValueError(f"no such Chalice handlers: {', '.join(missing)}")

    async def handshake(self, wire: LeanWebSocket, request: Request, port: int) -> None:
        """An upgrade request: refused, or $connect then the handshake's answer, on a task of its own.

        The connection is registered before $connect runs: once its presence is written, a
        push finds it (and waits in ``pending``) rather than finding it gone.
        """
        path, _, query = request.path.partition("?")
        if port == self._internal_port or unquote(path).rstrip("/") != WS_PATH:
            wire.refuse(404, b'{"message": "Not Found"}')
            return
        if len(self.connections) >= self._max_connections:
            wire.refuse(503, b'{"message": "Too many connections; try again later"}')
            return
        response = wire.check(request)
        if response is None:
            return
        headers = [(name.lower(), value) for name, value in request.headers.raw_items()]
        # The client, as REST counts it: behind a trusted proxy, the address it forwarded.
        forwarded = (value for name, value in headers if name == "x-forwarded-for")
        connection = LiveConnection(
            connection_id=new_connection_id(),
            wire=wire,
            source_ip=client_address(wire.peer(), forwarded, self._trusted),
            user_agent=next((v for k, v in headers if k == "user-agent"), ""),
            limiter=self._limiter(time.monotonic()),
        )
        event = self._event(connection, "$connect", "CONNECT")
        event.update(_handshake_fields(headers, query))
        del headers
        self.connections.register(connection)
        try:
            result = await self._call("$connect", event)
        except Exception:
            self.connections.unregister(connection.connection_id)
            logger.exception("$connect handler failed", extra={"connection_id": connection.connection_id})
            wire.refuse(500, b'{"message": "Internal server error"}')
            return
        status = int(result.get("statusCode", 200))
        if status != 200:
            self.connections.unregister(connection.connection_id)
            wire.refuse(status, *_response_body(result))
            return
        if not wire.accept(response, connection):
            # the client left while $connect ran: it was accepted, so it gets its $disconnect
            await self.closed(connection, 1006, "")
            return
        self.connections.opened(connection)

    def admit(self, connection: LiveConnection) -> bool:
        """A message arrived: whether to handle it (its frame rate), else the client is told."""
        connection.last_active = now = time.monotonic()
        limiter = connection.limiter
        verdict = "ok" if limiter is None else limiter.admit(now)
        if verdict == "ok":
            return True
        self._refuse_frame(connection, close=verdict == "close")
        return False

    async def closed(self, connection: LiveConnection, code: int, reason: str) -> None:
        """The connection ended (after its last message was handled): $disconnect, exactly once."""
        self.connections.unregister(connection.connection_id)
        await self._disconnect(connection, code, reason)

    def _limiter(self, now: float) -> FrameLimiter | None:
        if self._frame_rate <= 0:
            return None
        return FrameLimiter(self._frame_rate, self._frame_burst, FRAME_STRIKES, now)

    def _refuse_frame(self, connection: LiveConnection, *, close: bool) -> None:
        """A frame past the limit is not handled: the client is told, then closed if it goes on
        (the error first, as on AWS; once closing, the registry has let the connection go)."""
        self.connections.post_many((connection.connection_id,), self._rate_limited)
        if close and self.connections.close(connection.connection_id, CLOSE_RATE_LIMITED, "too many frames"):
            logger.warning(
                "WebSocket client over the frame limit closed",
                extra={"connection_id": connection.connection_id},
            )

    async def message(self, connection: LiveConnection, message: str | bytes) -> None:
        """One message, through $default (the next waits for it)."""
        event = self._event(connection, "$default", "MESSAGE")
        event["requestContext"]["messageId"] = base64.urlsafe_b64encode(secrets.token_bytes(10)).decode()
        if isinstance(message, str):
            event["body"] = message
        else:
            event["body"] = base64.b64encode(message).decode("ascii")
            event["isBase64Encoded"] = True
        try:
            await self._call("$default", event, admit=lambda: self._admit_vote(connection, message))
        except Exception:
            # The handler's answer is not sent back (no route response), but a failed
            # integration is: API Gateway tells the client "Internal server error".
            logger.exception("$default handler failed", extra={"connection_id": connection.connection_id})
            error = (
                '{"message": "Internal server error", '
                f'"connectionId": "{connection.connection_id}", '
                f'"requestId": "{event["requestContext"]["requestId"]}"}}'
            )
            self.connections.post_many((connection.connection_id,), error.encode())

    async def _disconnect(self, connection: LiveConnection, code: int, reason: str) -> None:
        event = self._event(connection, "$disconnect", "DISCONNECT")
        event["requestContext"]["disconnectStatusCode"] = code
        event["requestContext"]["disconnectReason"] = reason
        try:
            await self._call("$disconnect", event)
        except Exception:
            logger.exception("$disconnect handler failed", extra={"connection_id": connection.connection_id})

    def _admit_vote(self, connection: LiveConnection, message: str | bytes) -> bool:
        """On a worker thread: False, and the client told why, for a vote past its source's
        allowance (``ref`` as the handler would echo it: the frame's, else the message id)."""
        if self._votes is None or not isinstance(message, str):  # a binary frame is no action
            return True
        frame = json_object(message)
        envelope = frame.get("envelope") if frame.get("action") == "send" else None
        if not isinstance(envelope, dict):
            return True
        wait = self._votes.retry_after(connection.source_ip, envelope)
        if not wait:
            return True
        refs = (frame.get("ref"), envelope.get("message_id"))
        ref = next((r for r in refs if isinstance(r, str) and r), None)
        refused = ErrorFrame.of(TooManyRequests(VoteAllowance.refusal(wait)), ref)
        self.connections.post_many((connection.connection_id,), frame_bytes(refused))
        return False

    def _call(
        self, route_key: str, event: dict[str, Any], admit: Callable[[], bool] | None = None
    ) -> asyncio.Future[dict[str, Any]]:
        """The route's handler on a worker thread; not run if ``admit`` (there too) says no."""
        handler = self._app.handler_map[self._routes[route_key]]

        def run() -> dict[str, Any]:
            if admit is not None and not admit():
                return {"statusCode": 200}
            result = handler(event, LambdaContext())
            return result if isinstance(result, dict) else {"statusCode": 200}

        return asyncio.get_running_loop().run_in_executor(self._executor, run)

    def _event(self, connection: LiveConnection, route_key: str, event_type: str) -> dict[str, Any]:
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


def _response_body(result: dict[str, Any]) -> tuple[bytes, str]:
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    return result_body(result), str(headers.get("content-type", "text/plain; charset=utf-8"))


def _handshake_fields(headers: list[tuple[str, str]], query: str) -> dict[str, Any]:
    """What $connect adds to the event: the handshake's headers and query string."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query = parse_qs(query, keep_blank_values=True)
    return {
        "headers": {name: ",".join(values) for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
    }
