"""An HTTP server that plays API Gateway's REST proxy integration on one machine.

Each request becomes the proxy event the Lambda would get on AWS, and the
Chalice app's answer is written back: the very same code path, no Chalice-local.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from chalice.app import Chalice

if TYPE_CHECKING:
    from bocage.local.websocket_gateway import ConnectionRegistry

MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
STAGE = "api"
MAX_FRAME = 128 * 1024  # PostToConnection's Data limit
# API Gateway's management API; boto3 puts the stage in the path when the endpoint URL has it.
MANAGEMENT_PATH = re.compile(rf"^(?:/{STAGE})?/@connections/(?P<connection_id>[^/]+)$")
DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() and int() accept far more

# The web app (web/) and its pinned npm dependencies (node_modules/), from the repository root.
REPO_ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = REPO_ROOT / "web"
NODE_MODULES = REPO_ROOT / "node_modules"
APP_PREFIX = "/app"
#: /app/vendor/<name>: only these files of node_modules, never a directory listing or a path.
VENDOR_FILES = {
    "nacl-fast.min.js": "tweetnacl/nacl-fast.min.js",
    "qrcode.mjs": "qrcode-generator/dist/qrcode.mjs",
}
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}
STATIC_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # no dot-files, no "..", no encoded tricks


def static_file(path: str) -> Path | None:
    """The file ``/app/...`` names: web/ itself, or an allow-listed vendor file; None otherwise."""
    rest = path[len(APP_PREFIX) :].lstrip("/") if path.startswith(APP_PREFIX + "/") else None
    if rest is None:
        return None
    if rest == "":
        return WEB_DIR / "index.html"
    if rest.startswith("vendor/"):
        target = VENDOR_FILES.get(rest.removeprefix("vendor/"))
        return NODE_MODULES / target if target else None
    parts = rest.split("/")
    if not all(STATIC_PART.fullmatch(p) for p in parts):
        return None
    candidate = WEB_DIR.joinpath(*parts)
    if candidate.suffix not in STATIC_TYPES:
        return None
    try:
        candidate.resolve().relative_to(WEB_DIR.resolve())
    except ValueError:  # a symbolic link out of web/
        return None
    return candidate


def _ws_origin() -> str | None:
    """The WebSocket origin the app connects to, for its Content-Security-Policy."""
    from chalicelib import wiring

    current = wiring.current()  # never build a container just for this
    url = current.settings.ws_url if current is not None else None
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("ws", "wss") and parts.netloc else None


def app_security_headers() -> dict[str, str]:
    """A strict policy: this origin only (scripts, styles, images, fetches) and the WebSocket."""
    connect = "'self'" + (f" {ws}" if (ws := _ws_origin()) else "")
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "font-src 'self'",
            f"connect-src {connect}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]


def compile_routes(app: Chalice) -> list[Route]:
    """Static segments before parameters, as API Gateway prefers the most specific match."""
    routes = []
    for template in app.routes:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        routes.append(Route(template, re.compile(f"^{regex}$")))
    return sorted(routes, key=lambda r: (r.template.count("{"), -len(r.template)))


class LambdaContext:
    """The few attributes of a Lambda context that Chalice and Powertools read."""

    function_name = "bocage-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:bocage-local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def proxy_event(
    route: Route, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
) -> dict[str, Any]:
    parts = urlsplit(raw_path)
    match = route.pattern.match(parts.path)
    assert match is not None
    multi_query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode("ascii"), True
    request_id = str(uuid.uuid4())
    return {
        "resource": route.template,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.groupdict() or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.template,
            "httpMethod": method,
            "path": f"/{STAGE}{parts.path}",
            "stage": STAGE,
            "requestId": request_id,
            "identity": {"sourceIp": source_ip},
        },
        "body": text if body else None,
        "isBase64Encoded": is_b64,
    }


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def make_handler(app: Chalice, connections: ConnectionRegistry | None = None) -> type[BaseHTTPRequestHandler]:
    routes = compile_routes(app)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "bocage-local"

        def _body_length(self) -> int | None:
            """The declared body length, or None once a refusal is sent and the connection doomed.

            Chunked (any Transfer-Encoding) is refused: the body's end would be unknown, and
            its bytes would otherwise be read as the next request on this connection.
            """
            if self.headers.get_all("Transfer-Encoding"):
                self._refuse(411, "length_required", "chunked bodies are not supported: send Content-Length")
                return None
            values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
            if not values:
                return 0
            value = values.pop()
            if values or not DIGITS.fullmatch(value):
                self._refuse(400, "bad_request", "Content-Length must be one non-negative integer")
                return None
            return int(value)

        def _refuse(self, status: int, error: str, message: str) -> None:
            self._reply(status, {"error": error, "message": message}, close=True)

        def _serve(self) -> None:
            length = self._body_length()
            if length is None:
                return
            path = urlsplit(self.path).path
            if path == APP_PREFIX or path.startswith(APP_PREFIX + "/"):
                self._static(path, length)
                return
            management = MANAGEMENT_PATH.match(path) if connections is not None else None
            if management is not None:
                assert connections is not None
                self._manage(connections, unquote(management["connection_id"]), length)
                return
            route = next((r for r in routes if r.pattern.match(path)), None)
            if length > MAX_BODY:
                self._refuse(413, "payload_too_large", "request body over 10 MiB")
                return
            body = self.rfile.read(length) if length else b""
            if route is None:
                self._reply(404, {"error": "not_found", "message": f"no route for {path}"})
                return
            headers = {k: v for k, v in self.headers.items()}
            headers.setdefault("X-Forwarded-Proto", "http")
            event = proxy_event(route, self.command, self.path, headers, body, self.client_address[0])
            result = app(event, LambdaContext())
            payload = result.get("body") or ""
            raw = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
            self.send_response(result["statusCode"])
            for name, values in (result.get("multiValueHeaders") or {}).items():
                for value in values:
                    self.send_header(name, value)
            for name, value in (result.get("headers") or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _static(self, path: str, length: int) -> None:
            """The web app: GET only, files of web/ and allow-listed vendor files, else 404."""
            if length > MAX_BODY:
                self._refuse(413, "payload_too_large", "request body over 10 MiB")
                return
            if length:
                self.rfile.read(length)
            if self.command != "GET":
                self.send_response(405)
                self.send_header("Allow", "GET")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path == APP_PREFIX:  # the app's relative URLs need the trailing slash
                self.send_response(308)
                self.send_header("Location", APP_PREFIX + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            file = static_file(path)
            try:
                data = file.read_bytes() if file is not None and file.is_file() else None
            except OSError:
                data = None
            if file is None or data is None:
                self._reply(404, {"error": "not_found", "message": f"no file {path}"})
                return
            etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
            status = 304 if etag in (self.headers.get("If-None-Match") or "") else 200
            self.send_response(status)
            self.send_header("Content-Type", STATIC_TYPES.get(file.suffix, "application/octet-stream"))
            # Revalidate every time (a 304 costs a round trip, not the file): names carry no hash.
            self.send_header("Cache-Control", "no-cache")
            self.send_header("ETag", etag)
            for name, value in app_security_headers().items():
                self.send_header(name, value)
            if status == 200:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if status == 200:
                self.wfile.write(data)

        def _manage(self, connections: ConnectionRegistry, connection_id: str, length: int) -> None:
            """The @connections API: SigV4-signed by boto3, not checked, so loopback callers only."""
            if not is_loopback(self.client_address[0]):
                self.close_connection = True
                self._reply(403, {"message": "Forbidden"}, error_type="ForbiddenException")
                return
            if length > MAX_FRAME:
                self.close_connection = True
                self._reply(413, {"message": "Message too long"}, error_type="PayloadTooLargeException")
                return
            data = self.rfile.read(length) if length else b""
            if self.command == "POST":
                try:
                    found = connections.post(connection_id, data)
                except TimeoutError:
                    self._reply(429, {"message": "Client buffer full"}, error_type="LimitExceededException")
                    return
                if found:
                    self._empty(200)
            elif self.command == "GET":
                info = connections.info(connection_id)
                found = info is not None
                if info is not None:
                    self._reply(200, info)
            elif self.command == "DELETE":
                found = connections.close(connection_id)
                if found:
                    self._empty(204)
            else:
                self._reply(405, {"message": "Method not allowed"})
                return
            if not found:
                self._gone()

        def _gone(self) -> None:
            # botocore takes the error code from this header; a body alone would read as "410".
            self._reply(410, {"message": "Gone"}, error_type="GoneException")

        def _empty(self, status: int) -> None:
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Length", "0")
            self.end_headers()

        def _reply(
            self, status: int, body: dict[str, Any], error_type: str | None = None, close: bool = False
        ) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            if error_type is not None:
                self.send_header("x-amzn-ErrorType", error_type)
            if close:  # the unread body makes the rest of the stream unframeable
                self.send_header("Connection", "close")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default access log: it would print full paths; the app logs routes."""

    return Handler


def make_server(
    app: Chalice, host: str, port: int, connections: ConnectionRegistry | None = None
) -> ThreadingHTTPServer:
    """With ``connections``, also serve API Gateway's management API (``/@connections/{id}``)."""
    server = ThreadingHTTPServer((host, port), make_handler(app, connections))
    server.daemon_threads = True
    return server
