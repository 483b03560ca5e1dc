"""The OpenAPI description is derived from the routes: it names each of them, and only them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chalice.app import Chalice
from nacl.signing import SigningKey
from openapi_spec_validator import validate

from app import app
from chalicelib.api_responses import HealthAnswer
from chalicelib.api_schemas import LinkBody
from chalicelib.domain.auth_token import Claims, decode_token, encode_token, request_digest
from chalicelib.domain.ids import device_id_for
from chalicelib.http_api import endpoint
from chalicelib.openapi import MissingRouteDoc, build_spec

METHODS = {"get", "post", "put", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_spec(app)


def test_the_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_route_of_the_app_and_no_other(spec: dict[str, Any]) -> None:
    routes = {(path, method.lower()) for path, methods in app.routes.items() for method in methods}
    documented = {(path, m) for path, ops in spec["paths"].items() for m in ops if m in METHODS}
    assert documented == routes
    assert len(routes) >= 34


def test_a_route_without_its_models_is_caught() -> None:
    other = Chalice(app_name="undocumented")

    @other.route("/documented", methods=["GET"])
    @endpoint("HealthAnswer", auth="none")
    def documented(ctx: Any) -> dict[str, Any]:
        return {}

    @other.route("/forgotten", methods=["GET"])
    def forgotten() -> dict[str, Any]:
        return {}

    with pytest.raises(MissingRouteDoc, match="GET /forgotten"):
        build_spec(other)

    misnamed = Chalice(app_name="misnamed")

    @misnamed.route("/typo", methods=["GET"])
    @endpoint("HealthAnswr", auth="none")
    def typo(ctx: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(MissingRouteDoc, match="HealthAnswr"):
        build_spec(misnamed)


def test_the_lambda_does_not_import_the_answer_models() -> None:
    """They only describe the JSON: importing them would add to every cold start."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, app; print('chalicelib.api_responses' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "AWS_REGION": "eu-west-3"},
    )
    assert done.stdout.strip() == "False"


def test_security_follows_each_routes_authentication(spec: dict[str, Any]) -> None:
    ops = spec["paths"]
    assert ops["/health"]["get"]["security"] == [] and ops["/activate"]["post"]["security"] == []
    assert ops["/orgs"]["post"]["security"] == [{"operatorToken": []}]
    assert ops["/channels/{channel_id}/messages"]["post"]["security"] == [{"deviceToken": []}]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["deviceToken"] == {**schemes["deviceToken"], "in": "header", "name": "Authorization"}


def test_bodies_responses_and_parameters_come_from_the_models(spec: dict[str, Any]) -> None:
    send = spec["paths"]["/channels/{channel_id}/messages"]["post"]
    assert send["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Envelope"
    }
    assert set(send["responses"]) >= {"201", "400", "401", "403", "404"}
    envelope = spec["components"]["schemas"]["Envelope"]
    assert envelope["additionalProperties"] is False and "ciphertext" in envelope["required"]
    read = spec["paths"]["/channels/{channel_id}/messages"]["get"]
    assert {(p["name"], p["in"]) for p in read["parameters"]} == {
        ("channel_id", "path"),
        ("since", "query"),
        ("limit", "query"),
    }
    leave = spec["paths"]["/channels/{channel_id}/members/{member_id}"]["delete"]
    assert leave["requestBody"]["required"] is False
    members = spec["components"]["schemas"]["MembersAnswer"]
    assert set(members["required"]) == {"members", "devices", "cursor"}


def test_a_view_reading_another_body_than_it_declares_is_refused() -> None:
    """The declaration is checked when the view runs, so the spec cannot drift from the code."""
    from chalicelib.http_api import ApiContext, RouteDoc

    doc = RouteDoc("v", "none", 200, LinkBody, True, "HealthAnswer", ("limit",), "v")
    ctx = ApiContext.__new__(ApiContext)
    ctx._doc = doc
    with pytest.raises(TypeError, match="declares"):
        ctx.body(HealthAnswer)
    with pytest.raises(TypeError, match="without declaring"):
        ctx.query_str("cursor")
    with pytest.raises(TypeError, match="optional body"):
        ctx.optional_body(LinkBody)


def _doc() -> str:
    return (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()


def test_the_worked_example_of_docs_api_md_is_what_the_code_signs() -> None:
    key = SigningKey(bytes(range(32)))
    body = b'{"name":"Conseil municipal"}'
    digest = request_digest("PUT", "/channels/c_aaaaaaaaaaaaaaaa", {}, body)
    claims = Claims(device_id_for(bytes(key.verify_key)), 1767225600, 1767225720, "A" * 22, digest).to_bytes()
    token = encode_token(claims, key.sign(claims).signature)
    doc = _doc()
    assert f"Authorization: Bocage {token}\n" in doc
    assert f"req               = {digest}\n" in doc and f"claims            = {claims.decode()}\n" in doc


def test_the_python_snippet_of_docs_api_md_makes_tokens_the_server_accepts() -> None:
    snippet = re.search(r"```python\n(.*?)```", _doc(), re.S)
    assert snippet is not None
    scope: dict[str, Any] = {}
    exec(snippet.group(1), scope)  # our own documentation, checked as code
    key = SigningKey(bytes(range(32)))
    device = device_id_for(bytes(key.verify_key))
    query = {"q": "a b+c/é", "cursor": "x=="}
    made = scope["token"](key, device, "GET", "/members", query, b"")
    claims, signed, signature = decode_token(made)
    key.verify_key.verify(signed, signature)
    assert claims.subject == device and claims.digest == request_digest("GET", "/members", query, b"")
