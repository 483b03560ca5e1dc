"""The REST side of ``bocage serve``, as an ASGI app: API Gateway's REST proxy integration.

Each request becomes the proxy event the Lambda would get on AWS, the Chalice app runs on it in
a worker thread (never on the event loop), and its answer is written back, gzipped when that
pays: the very same code path as on AWS. ``/app/`` is the web app (static_files.py), and
``/openapi.json`` the API's description (chalicelib/openapi.py). What the
server adds is its own limits: one clear answer to a chunked or oversized body, a deadline to
receive the body, and API Gateway's 29 s deadline on the handler (504).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from chalice.app import Chalice

from bocage.local.answers import BODILESS, Answer, compressed, json_answer, refusal
from bocage.local.lambda_events import Route, compile_routes, find_route, invoke, proxy_event
from bocage.local.rate_limit import Network, SourceLimiter, VoteAllowance, client_address, json_object
from bocage.local.static_files import StaticFiles, is_app_path
from chalicelib.openapi import build_spec

MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
#: Unauthenticated routes that consume or probe codes: limited per source (``attempts``).
LIMITED = frozenset({("POST", "/activate"), ("POST", "/join")})  # each a device made from nothing
#: The route a REST vote takes (its envelope's ``kind`` is in clear): limited per source (``votes``).
MESSAGES = ("POST", "/channels/{channel_id}/messages")
SPEC_PATH = "/openapi.json"
DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() and int() accept far more

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its request was whole."""


def header_pairs(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]


def framing_refusal(headers: list[tuple[str, str]]) -> Answer | None:
    """A refusal for a body whose end is unknown or that is too large, before reading any of it.

    Chunked bodies are refused as API Gateway's REST API would not frame them for the Lambda.
    """
    if any(name == "transfer-encoding" for name, _ in headers):
        return refusal(411, "length_required", "chunked bodies are not supported: send Content-Length")
    values = {value.strip() for name, value in headers if name == "content-length"}
    if not values:
        return None
    value = values.pop()
    if values or not DIGITS.fullmatch(value):
        return refusal(400, "bad_request", "Content-Length must be one non-negative integer")
    if int(value) > MAX_BODY:
        return refusal(413, "payload_too_large", "request body over 10 MiB")
    return None


async def read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def respond(send: Send, answer: Answer, *, head_only: bool = False) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    if answer.close:
        headers.append((b"connection", b"close"))
    bodiless = answer.status in BODILESS
    if not bodiless:
        headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    body = b"" if bodiless or head_only else answer.body
    await send({"type": "http.response.body", "body": body})


class RestGateway:
    """Requests to the Chalice app and to the web app, each run on ``executor``."""

    def __init__(
        self,
        app: Chalice,
        executor: Executor,
        *,
        static: StaticFiles | None = None,
        read_timeout: float = 10.0,
        handler_timeout: float = 29.0,
        attempts: SourceLimiter | None = None,
        votes: VoteAllowance | None = None,
        trusted_proxies: tuple[Network, ...] = (),
    ) -> None:
        self._app = app
        self._routes = compile_routes(app)
        self._executor = executor
        self._static = static if static is not None else StaticFiles.from_env()
        self._read_timeout = read_timeout
        self._handler_timeout = handler_timeout
        self._attempts = attempts
        self._votes = votes
        self._trusted = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = header_pairs(scope)
        source = self._source(scope, headers)
        refused = framing_refusal(headers) or self._throttled(scope, source)
        if refused is not None:
            await respond(send, refused)
            return
        try:
            async with asyncio.timeout(self._read_timeout):
                body = await read_body(receive)
        except TimeoutError:
            await respond(send, refusal(408, "request_timeout", "the request body took too long"))
            return
        except ClientGone:
            return
        method = scope["method"]
        try:
            answer = await self._run(self._answer, scope, headers, body, source)
        except TimeoutError:  # as API Gateway answers when the integration takes over 29 s
            answer = json_answer(504, {"message": "Endpoint request timed out"})
        await respond(send, answer, head_only=method == "HEAD")

    async def _run(self, job: Callable[..., T], *args: Any) -> T:
        future = asyncio.get_running_loop().run_in_executor(self._executor, job, *args)
        async with asyncio.timeout(self._handler_timeout):
            return await future

    def _source(self, scope: Scope, headers: list[tuple[str, str]]) -> str:
        """The client's address: the peer's, or the one a trusted proxy forwarded."""
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        if not self._trusted:
            return peer
        return client_address(peer, (v for k, v in headers if k == "x-forwarded-for"), self._trusted)

    def _throttled(self, scope: Scope, source: str) -> Answer | None:
        """429 for a source past its share of the routes that consume codes (``LIMITED``)."""
        if self._attempts is None or (scope["method"], scope["path"].rstrip("/")) not in LIMITED:
            return None
        wait = self._attempts.retry_after(source)
        return too_many(f"too many activation or join attempts from this address; retry in {wait} s", wait)

    def _voted(self, method: str, route: Route, body: bytes, source: str) -> tuple[Answer | None, bool]:
        """(429 for a source past its allowance of votes, whether a vote was counted); read on a
        worker thread, as the body is parsed (up to 10 MiB: never on the event loop)."""
        if self._votes is None or (method, route.template) != MESSAGES:
            return None, False
        envelope = json_object(body)
        wait = self._votes.retry_after(source, envelope)
        return too_many(VoteAllowance.refusal(wait), wait), not wait and VoteAllowance.is_vote(envelope)

    def _answer(self, scope: Scope, headers: list[tuple[str, str]], body: bytes, source: str) -> Answer:
        """On a worker thread: the web app's file or the Lambda's answer, compressed if it pays."""
        named = dict(headers)  # the last of repeated headers, as API Gateway's single-value map
        raw_path = scope["raw_path"].decode("latin-1")
        method = scope["method"]
        if is_app_path(raw_path):
            answer = self._static.answer(method, raw_path, named.get("if-none-match"))
        elif raw_path == SPEC_PATH and method in ("GET", "HEAD"):
            answer = json_answer(200, self._spec)
        else:
            answer = self._invoke(method, raw_path, scope, named, body, source)
        return compressed(answer, named.get("accept-encoding"))

    @functools.cached_property
    def _spec(self) -> dict[str, Any]:
        """Built on first use (tens of ms): unauthenticated, like /health, and the same for all."""
        return build_spec(self._app)

    def _invoke(
        self, method: str, raw_path: str, scope: Scope, headers: dict[str, str], body: bytes, source_ip: str
    ) -> Answer:
        route = find_route(self._routes, raw_path)
        if route is None:
            return json_answer(404, {"error": "not_found", "message": f"no route for {raw_path}"})
        refused, counted = self._voted(method, route, body, source_ip)
        if refused is not None:
            return refused
        query = scope["query_string"].decode("latin-1")
        target = f"{raw_path}?{query}" if query else raw_path
        headers.setdefault("x-forwarded-proto", "http")
        answer = invoke(self._app, proxy_event(route, method, target, headers, body, source_ip))
        if counted and answer.status != 201 and self._votes is not None:
            self._votes.give_back(source_ip)  # not stored (401, 403, 400): not a vote spent
        return answer


def too_many(message: str, wait: int) -> Answer | None:
    """The 429 of a per-source limit, with ``Retry-After``; None when ``wait`` is 0 (go on)."""
    if not wait:
        return None
    answer = refusal(429, "rate_limited", message)
    return dataclasses.replace(answer, headers=[*answer.headers, ("Retry-After", str(wait))])
