"""The REST API's OpenAPI 3.1 description, derived from the routes themselves.

Each route's ``@endpoint`` names its request and response models (chalicelib/http_api.py,
``ROUTE_DOCS``); this module walks Chalice's route table and turns those models into JSON
Schema, so the description cannot name a route that does not exist, and a route added
without its models fails to build (``MissingRouteDoc``). Served by ``bocage serve`` at
``/openapi.json`` and written by ``make package`` (docs/api.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from chalice.app import Chalice
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib import api_responses
from chalicelib.api_responses import ErrorAnswer
from chalicelib.domain.mentions_only import MAX_NOTIFY
from chalicelib.http_api import ROUTE_DOCS, RouteDoc

OPENAPI = "3.1.0"
REF = "#/components/schemas/{model}"
WHOLE = {"type": "string", "pattern": "^[0-9]{1,12}$"}
#: Every query parameter a route may declare, with its schema and meaning.
QUERY: dict[str, tuple[dict[str, Any], str]] = {
    "cursor": ({"type": "string", "maxLength": 512}, "the cursor a previous page returned"),
    "limit": (WHOLE, "at most this many items"),
    "from": (WHOLE, "the first log position to return"),
    "since": (WHOLE, "messages after this sequence number"),
    "epoch": (WHOLE, "the channel epoch"),
    "format": ({"type": "string", "enum": ["json", "csv"]}, "csv: the report as CSV text"),
    "notify": (
        {"type": "string", "maxLength": MAX_NOTIFY * 19, "pattern": "^m_[a-z2-7]{16}(,m_[a-z2-7]{16})*$"},
        'the mentioned members in "mentions only" mode, comma-separated (never stored)',
    ),
}
#: What each refusal status means on every route of its kind.
REFUSALS = {
    "400": "bad input: malformed JSON, a field out of range, a bad query parameter",
    "401": "no valid request token (missing, expired, replayed, bad signature, revoked device)",
    "403": "authenticated, but not allowed (role, channel membership, suspended plan)",
    "404": "no such resource in the caller's organisation",
    "409": "conflict with the current state (a used code, the last owner)",
    "410": "gone: a withdrawn or expired invitation",
    "413": "body too large",
    "429": "too many attempts from this address",
}
SECURITY_SCHEMES = {
    "deviceToken": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            "`Authorization: Bocage <token>`: base64url(claims JSON) '.' base64url(Ed25519 signature "
            "of those bytes) by the device's signing key. The claims bind the token to the device "
            "(`sub`), a lifetime of at most 300 s (`iat`, `exp`), a single-use `nonce` and this one "
            "request (`req`: SHA-256 of method, path, sorted query and SHA-256 of the body). "
            "See docs/api.md for a worked example."
        ),
    },
    "operatorToken": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The same token, signed by an operator key listed in BOCAGE_OPERATOR_KEYS.",
    },
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "device": [{"deviceToken": []}],
    "operator": [{"operatorToken": []}],
    "none": [],
}


class MissingRouteDoc(Exception):
    """A route is not declared with ``@endpoint``: its models are unknown."""


def build_spec(app: Chalice) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every REST route of ``app``."""
    routes = _documented_routes(app)
    schemas, refs = _schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), (doc, params) in sorted(routes.items()):
        paths.setdefault(path, {})[method.lower()] = _operation(doc, params, refs)
    return {
        "openapi": OPENAPI,
        "info": {
            "title": "Bocage REST API",
            "version": "1",
            "description": "End-to-end encrypted messaging for small organisations. "
            "Request signing: docs/api.md; the wire format of envelopes and statements: docs/protocol.md.",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def _documented_routes(app: Chalice) -> dict[tuple[str, str], tuple[RouteDoc, list[str]]]:
    found: dict[tuple[str, str], tuple[RouteDoc, list[str]]] = {}
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            doc = ROUTE_DOCS.get(entry.view_function)
            if doc is None:
                raise MissingRouteDoc(f"{method} {path} ({entry.view_name}) has no @endpoint declaration")
            found[(path, method)] = (doc, list(entry.view_args))
    return found


def _schemas(
    routes: dict[tuple[str, str], tuple[RouteDoc, list[str]]],
) -> tuple[dict[str, Any], dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]]:
    """Every model's JSON Schema under components, and each (model, mode)'s reference to it."""
    wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(ErrorAnswer, "serialization")}
    for doc, _ in routes.values():
        wanted.add((answer_model(doc), "serialization"))
        if doc.body is not None:
            wanted.add((doc.body, "validation"))
    ordered = sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1]))
    refs, top = models_json_schema(ordered, ref_template=REF)
    return top.get("$defs", {}), {pair: refs[pair] for pair in ordered}


def _operation(
    doc: RouteDoc, params: list[str], refs: dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]
) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": refs[(ErrorAnswer, "serialization")]}}}
    answer = answer_model(doc)
    responses: dict[str, Any] = {
        str(doc.status): {
            "description": answer.__doc__.strip().splitlines()[0] if answer.__doc__ else "OK",
            "content": {"application/json": {"schema": refs[(answer, "serialization")]}},
        }
    }
    for status, meaning in REFUSALS.items():
        responses[status] = {"description": meaning, **error}
    operation: dict[str, Any] = {
        "operationId": doc.view,
        "summary": doc.summary,
        "security": SECURITY[doc.auth],
        "parameters": [
            *({"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params),
            *(_query_parameter(name) for name in doc.query),
        ],
        "responses": responses,
    }
    if doc.body is not None:
        operation["requestBody"] = {
            "required": doc.body_required,
            "content": {"application/json": {"schema": refs[(doc.body, "validation")]}},
        }
    return operation


def answer_model(doc: RouteDoc) -> type[BaseModel]:
    """The model a route's ``@endpoint`` names; MissingRouteDoc if there is no such model."""
    model = getattr(api_responses, doc.response, None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise MissingRouteDoc(f"{doc.view}: no answer model {doc.response!r} in chalicelib/api_responses.py")
    return model


def _query_parameter(name: str) -> dict[str, Any]:
    schema, meaning = QUERY[name]
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": meaning}


def main(argv: list[str]) -> int:
    """``python -m chalicelib.openapi OUT``: write the spec of app.py (``make package``)."""
    from app import app  # the app module lives at the project root

    text = json.dumps(build_spec(app), indent=2, sort_keys=False) + "\n"
    if len(argv) != 1:
        sys.stdout.write(text)
        return 0
    Path(argv[0]).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
