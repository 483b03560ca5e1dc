"""What a Lambda behind API Gateway gets and gives back, built on one machine.

The REST gateway turns each request into the proxy event the Lambda would get on AWS,
and the proxy result back into an HTTP answer; the WebSocket gateway builds its events
with the same context and stage. Nothing here knows the transport, so any local server
(http.server today) can reuse it.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalice.app import Chalice

from bocage.local.answers import Answer

STAGE = "api"


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


def find_route(routes: list[Route], path: str) -> Route | None:
    return next((r for r in routes if r.pattern.match(path)), None)


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


def result_body(result: dict[str, Any]) -> bytes:
    """The bytes of a proxy result's body, base64-decoded when the Lambda says so."""
    body = result.get("body") or ""
    return base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")


def proxy_answer(result: dict[str, Any]) -> Answer:
    """The HTTP answer API Gateway makes of a proxy result: its status, headers and body."""
    headers = [
        (name, value) for name, values in (result.get("multiValueHeaders") or {}).items() for value in values
    ]
    headers.extend((result.get("headers") or {}).items())
    return Answer(int(result["statusCode"]), headers, result_body(result))


def invoke(app: Chalice, event: dict[str, Any]) -> Answer:
    """Run the app on one proxy event, as the REST API's Lambda integration does."""
    return proxy_answer(app(event, LambdaContext()))
