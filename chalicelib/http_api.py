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
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError

from chalicelib import wiring
from chalicelib.domain.auth_token import parse_authorization
from chalicelib.domain.organisation import require_admin
from chalicelib.domain.principal import Principal
from chalicelib.errors import BadRequest, BocageError, Forbidden, PayloadTooLarge, Unauthorized
from chalicelib.json_input import parse_object
from chalicelib.request_logging import log_http, logger
from chalicelib.services.authentication import SignedRequest
from chalicelib.services.invitations import Links

Auth = Literal["device", "operator", "none"]
B = TypeVar("B", bound=BaseModel)
WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")
JSON_HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json", "Cache-Control": "no-store"}


@dataclass(frozen=True)
class RouteDoc:
    """What a route takes and answers, declared beside it: chalicelib/openapi.py builds the
    spec from these, and a route without one is caught (tests/unit/test_openapi.py)."""

    view: str
    auth: Auth
    status: int
    body: type[BaseModel] | None
    body_required: bool
    response: str  # a model of chalicelib/api_responses.py, imported only to build the spec
    query: tuple[str, ...]
    summary: str
    # Open to followers of public tribes (docs/protocol.md, 16); every other route answers them 403.
    followers: bool = False


#: Every ``@endpoint`` view's RouteDoc, by the handler Chalice routes to.
ROUTE_DOCS: dict[Callable[..., Response], RouteDoc] = {}

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

    def __init__(self, request: Request, container: wiring.Container, doc: RouteDoc | None = None) -> None:
        self.container = container
        self._doc = doc
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
            if self._principal.role.is_follower and not (self._doc is not None and self._doc.followers):
                raise Forbidden("a follower reads their public tribes, reacts and votes: nothing more")
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
    def source_ip(self) -> str:
        """The caller's address as API Gateway (or ``bocage serve``) saw it; "" if none."""
        identity = self._event.get("requestContext", {}).get("identity") or {}
        return str(identity.get("sourceIp") or "")

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
        self._require_declared(model)
        raw = self.json()
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise BadRequest(_describe(exc)) from exc

    def optional_body(self, model: type[B]) -> B:
        """The body, or the model's defaults when there is none (a DELETE may carry one or not)."""
        self._require_declared(model)
        if self._doc is not None and self._doc.body_required:
            raise TypeError(f"{self._doc.view} reads an optional body but declares it required")
        return self.body(model) if self.body_bytes else model()

    def _require_declared(self, model: type[BaseModel]) -> None:
        """A view reads the body its ``@endpoint`` declared, so the spec cannot drift from it."""
        if self._doc is not None and self._doc.body is not model:
            raise TypeError(f"{self._doc.view} reads a {model.__name__} but declares {self._doc.body}")

    def query_str(self, name: str) -> str | None:
        """A query parameter the route declared (``@endpoint(query=...)``), or None."""
        if self._doc is not None and name not in self._doc.query:
            raise TypeError(f"{self._doc.view} reads query parameter {name} without declaring it")
        return self.query.get(name)

    def query_int(self, name: str, default: int) -> int:
        value = self.query_str(name)
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
    response: str,
    *,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    query: tuple[str, ...] = (),
    auth: Auth = "device",
    status: int = 200,
    followers: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Declare a view, then authenticate and map errors.

    ``response`` names the model of its JSON answer in chalicelib/api_responses.py (a name, so
    the Lambda never imports those models); ``body`` is the model of its request
    (``body_required=False``: read with ``optional_body``); ``query``, the query parameters it
    reads; ``followers``, whether followers of public tribes may call it (403 otherwise).
    chalicelib/openapi.py builds the spec from these.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        summary = (view.__doc__ or view.__name__.replace("_", " ")).strip().splitlines()[0]
        doc = RouteDoc(view.__name__, auth, status, body, body_required, response, query, summary, followers)

        @functools.wraps(view)
        def handle(**params: str) -> Response:
            try:
                container = wiring.container()
                ctx = ApiContext(_request.get(), container, doc)
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

        ROUTE_DOCS[handle] = doc
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
