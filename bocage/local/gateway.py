"""An HTTP server that plays API Gateway's REST proxy integration on one machine.

Each request becomes the proxy event the Lambda would get on AWS, and the Chalice app's
answer is written back: the very same code path, no Chalice-local. What to answer is
decided elsewhere (bocage/local/lambda_events.py, static_files.py, management_api.py);
this module only frames HTTP/1.1 requests and writes the answers.
"""

from __future__ import annotations

import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from chalice.app import Chalice

from bocage.local.answers import BODILESS, Answer, json_answer, refusal
from bocage.local.connections import ConnectionRegistry
from bocage.local.lambda_events import Route, compile_routes, find_route, invoke, proxy_event
from bocage.local.management_api import ManagementApi, connection_id_of
from bocage.local.static_files import StaticFiles, is_app_path

MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() and int() accept far more


class _GatewayHandler(BaseHTTPRequestHandler):
    """One request: framing checks, then the web app, the management API or the Lambda."""

    protocol_version = "HTTP/1.1"
    server_version = "bocage-local"
    # Set on the subclass make_handler builds.
    app: Chalice
    routes: list[Route]
    static: StaticFiles
    management: ManagementApi | None

    def _body_length(self) -> int | None:
        """The declared body length, or None once a refusal is sent and the connection doomed.

        Chunked (any Transfer-Encoding) is refused: the body's end would be unknown, and
        its bytes would otherwise be read as the next request on this connection.
        """
        if self.headers.get_all("Transfer-Encoding"):
            self._write(
                refusal(411, "length_required", "chunked bodies are not supported: send Content-Length")
            )
            return None
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not values:
            return 0
        value = values.pop()
        if values or not DIGITS.fullmatch(value):
            self._write(refusal(400, "bad_request", "Content-Length must be one non-negative integer"))
            return None
        return int(value)

    def _serve(self) -> None:
        length = self._body_length()
        if length is None:
            return
        path = urlsplit(self.path).path
        connection_id = connection_id_of(path) if self.management is not None else None
        if connection_id is not None:
            self._manage(connection_id, length)
            return
        if length > MAX_BODY:
            self._write(refusal(413, "payload_too_large", "request body over 10 MiB"))
            return
        body = self.rfile.read(length) if length else b""
        if is_app_path(path):
            self._write(self.static.answer(self.command, path, self.headers.get("If-None-Match")))
        else:
            self._write(self._invoke(path, body))

    def _invoke(self, path: str, body: bytes) -> Answer:
        route = find_route(self.routes, path)
        if route is None:
            return json_answer(404, {"error": "not_found", "message": f"no route for {path}"})
        headers = {k: v for k, v in self.headers.items()}
        headers.setdefault("X-Forwarded-Proto", "http")
        return invoke(
            self.app, proxy_event(route, self.command, self.path, headers, body, self.client_address[0])
        )

    def _manage(self, connection_id: str, length: int) -> None:
        assert self.management is not None
        refused = self.management.refusal(self.client_address[0], length)
        if refused is not None:
            self._write(refused)
            return
        body = self.rfile.read(length) if length else b""
        self._write(self.management.answer(self.command, connection_id, body))

    def _write(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        if answer.close:  # also sets close_connection
            self.send_header("Connection", "close")
        if answer.status not in BODILESS:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.status not in BODILESS:
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log: it would print full paths; the app logs routes."""


def make_handler(
    app: Chalice, connections: ConnectionRegistry | None = None, static: StaticFiles | None = None
) -> type[BaseHTTPRequestHandler]:
    """A handler class for ``app``; ``static`` defaults to the web app the environment names."""

    class Handler(_GatewayHandler):
        pass

    Handler.app = app
    Handler.routes = compile_routes(app)
    Handler.static = static if static is not None else StaticFiles.from_env()
    Handler.management = ManagementApi(connections) if connections is not None else None
    return Handler


def make_server(
    app: Chalice,
    host: str,
    port: int,
    connections: ConnectionRegistry | None = None,
    static: StaticFiles | None = None,
) -> ThreadingHTTPServer:
    """With ``connections``, also serve API Gateway's management API (``/@connections/{id}``)."""
    server = ThreadingHTTPServer((host, port), make_handler(app, connections, static))
    server.daemon_threads = True
    return server
