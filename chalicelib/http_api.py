"""The REST edge: turns a Chalice request into a service call and back.

Each view in app.py is declared with ``@endpoint(...)``, which authenticates
(device token, operator token, or none), enforces the body size, parses and
validates JSON, and maps ``BocageError`` to a JSON error with its status code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Literal, TypeVar

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError

from chalicelib import wiring
from chalicelib.domain.auth_token import parse_authorization
from chalicelib.domain.organisation import require_admin
from chalicelib.domain.principal import Principal
from chalicelib.errors import BadRequest, BocageError, PayloadTooLarge, Unauthorized
from chalicelib.json_input import parse_object
from chalicelib.request_logging import log_http, logger
from chalicelib.services.authentication import SignedRequest
from chalicelib.services.invitations import Links

Auth = Literal["device", "operator", "none"]
B = TypeVar("B", bound=BaseModel)
WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")
JSON_HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json", "Cache-Control": "no-store"}

# The request being handled by this thread. Chalice keeps ``app.current_request``
# on the shared app object, which races when the one-machine runtime serves
# requests on several threads; the middleware hands each view its own request.
_request: ContextVar[Request] = ContextVar("bocage_request")


def request_scope(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Chalice HTTP middleware: scope the request to this thread, log it, and give Chalice's
    own refusals (404, 405, 415...) the same ``{"error", "message"}`` shape as ours."""
    token = _request.set(event)
    try:
        response: Response = log_http(event, get_response)
    finally:
        _request.reset(token)
    body = response.body
    if isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", str(body["Code"])).lower().removesuffix("_error")
        response.body = {"error": code, "message": str(body["Message"])}
    return response


class ApiContext:
    """What a view sees: the authenticated caller, the body, the query, the links."""

    def __init__(self, request: Request, container: wiring.Container) -> None:
        self.container = container
        self._event = request.to_original_event()
        self._headers = request.headers
        self.method = request.method
        self.body_bytes = _raw_bytes(request.raw_body)
        multi = self._event.get("multiValueQueryStringParameters") or {}
        self.query: dict[str, str] = {k: v[-1] for k, v in multi.items() if v}
        self._principal: Principal | None = None

    def authenticate(self, auth: Auth) -> None:
        """Size first (cheap), then the token: a request is refused before any store read."""
        limit = self.container.settings.max_body_bytes
        if len(self.body_bytes) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        if auth == "device":
            self._principal = self.container.auth.device(self.token, self.signed_request)
        elif auth == "operator":
            self.container.auth.operator(self.token, self.signed_request)

    @property
    def signed_request(self) -> SignedRequest:
        return SignedRequest(self.method, self._path(), self.query, self.body_bytes)

    def _path(self) -> str:
        """The path the client signed, relative to the API's root.

        Rebuilt from the route template and its parameters rather than read from
        ``path``, which behind a custom domain carries the base-path mapping too.
        """
        template = str(self._event.get("requestContext", {}).get("resourcePath") or "/")
        params = self._event.get("pathParameters") or {}
        return re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), m.group(0))), template)

    @property
    def token(self) -> str | None:
        try:
            return parse_authorization(self._headers.get("authorization"))
        except ValueError as exc:
            raise Unauthorized(str(exc)) from exc

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            raise Unauthorized("this route needs a device token")
        return self._principal

    def json(self) -> dict[str, Any]:
        return parse_object(
            self.body_bytes or b"null",
            malformed="malformed JSON body",
            not_object="the body must be a JSON object",
        )

    def admin(self) -> Principal:
        """The caller, if an owner or admin of their organisation (403 otherwise)."""
        require_admin(self.principal.role)
        return self.principal

    def body(self, model: type[B]) -> B:
        raw = self.json()
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise BadRequest(_describe(exc)) from exc

    def optional_body(self, model: type[B]) -> B:
        """The body, or the model's defaults when there is none (a DELETE may carry one or not)."""
        return self.body(model) if self.body_bytes else model()

    def query_int(self, name: str, default: int) -> int:
        value = self.query.get(name)
        if value is None:
            return default
        if not WHOLE_NUMBER.fullmatch(value):
            raise BadRequest(f"query parameter {name} must be a whole number (at most 12 digits)")
        return int(value)

    @property
    def links(self) -> Links:
        settings = self.container.settings
        api = settings.public_url or self._derived_base_url()
        return Links(api_url=api, app_url=settings.app_url or f"{api}/app")

    def _derived_base_url(self) -> str:
        host = self._headers.get("host", "localhost")
        proto = self._headers.get("x-forwarded-proto", "https")
        base = f"{proto}://{host}"
        stage = self._event.get("requestContext", {}).get("stage")
        if host.endswith(".amazonaws.com") and stage:
            base += f"/{stage}"
        return base


def endpoint(
    *, auth: Auth = "device", status: int = 200
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        @functools.wraps(view)
        def handle(**params: str) -> Response:
            try:
                container = wiring.container()
                ctx = ApiContext(_request.get(), container)
                ctx.authenticate(auth)
                result = view(ctx, **params)
                return Response(
                    body=result if result is not None else {}, status_code=status, headers=JSON_HEADERS
                )
            except BocageError as exc:
                return Response(body=exc.to_body(), status_code=exc.status, headers=JSON_HEADERS)
            except Exception:
                logger.exception("unhandled error")
                body = {"error": "internal_error", "message": "an internal error occurred"}
                return Response(body=body, status_code=500, headers=JSON_HEADERS)

        return handle

    return decorate


def _raw_bytes(raw: str | bytes) -> bytes:
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "invalid body: " + "; ".join(parts)
