"""Pure domain rules: codes, links, tokens, roles, settings."""

from __future__ import annotations

import json
import re

import pytest
from nacl.signing import SigningKey

from bocage.client.profile import sign_token
from chalicelib.domain.activation_link import activation_url, parse_activation
from chalicelib.domain.auth_token import decode_token, parse_authorization, request_digest
from chalicelib.domain.encoding import b64e
from chalicelib.domain.ids import device_id_for, looks_like, new_id
from chalicelib.domain.invitation import CODE_BYTES, code_hash, new_code, normalise_code
from chalicelib.domain.organisation import Role, require_may_grant, require_may_manage
from chalicelib.errors import BadRequest, Forbidden
from chalicelib.settings import Settings


def test_codes_carry_at_least_128_bits_and_are_unique() -> None:
    codes = {new_code() for _ in range(1000)}
    assert len(codes) == 1000
    sample = next(iter(codes))
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4})+", sample)
    assert len(normalise_code(sample)) * 5 >= CODE_BYTES * 8 >= 128


def test_code_hash_ignores_case_dashes_and_spaces() -> None:
    code = new_code()
    assert code_hash(code) == code_hash(code.lower().replace("-", " "))
    assert code_hash(code) != code_hash(new_code())


def test_activation_url_round_trip_keeps_code_in_fragment() -> None:
    url = activation_url("https://app.example.org/app", "https://api.example.org/v1", "ABCD-EFGH")
    assert url.startswith("https://app.example.org/app/#/activate?")
    target = parse_activation(url)
    assert (target.code, target.server) == ("ABCD-EFGH", "https://api.example.org/v1")
    bare = parse_activation("  ABCD-EFGH ")
    assert (bare.code, bare.server) == ("ABCD-EFGH", None)
    with pytest.raises(BadRequest):
        parse_activation("https://app.example.org/app/#/activate?server=x")
    with pytest.raises(BadRequest):
        parse_activation(" -- ")


def test_token_round_trip_and_binding() -> None:
    key = SigningKey.generate()
    device = device_id_for(bytes(key.verify_key))
    query = {"b": "2", "a": "1"}
    token = sign_token(key, device, "POST", "/invitations", query, b"{}", now=1000, lifetime=60)
    claims, signed, signature = decode_token(token)
    key.verify_key.verify(signed, signature)
    assert (claims.subject, claims.issued_at, claims.expires_at) == (device, 1000, 1060)
    assert claims.digest == request_digest("POST", "/invitations", {"a": "1", "b": "2"}, b"{}")
    assert claims.digest != request_digest("POST", "/invitations", {"a": "1", "b": "2"}, b"{ }")
    assert claims.digest != request_digest("GET", "/invitations", {"a": "1", "b": "2"}, b"{}")


def _claims(**fields: object) -> str:
    base = {"v": 1, "sub": "d_" + "a" * 16, "iat": 1000, "exp": 1060, "nonce": "n" * 16, "req": "x"}
    return b64e(json.dumps({**base, **fields}).encode()) + "." + b64e(b"s" * 64)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b.c",
        "x" * 3000 + ".y",
        "e30.AA",
        "!!!.AA",
        _claims(iat=float("inf")),  # JSON's Infinity: must be refused, not overflow
        _claims(exp=True),
        _claims(exp=2**70),
        _claims(sub="\ud800"),
        _claims(sub="DEVICE#../x"),
        _claims(nonce="short"),
        _claims(nonce=12345678),
    ],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(ValueError):
        decode_token(token)


def test_authorization_header_scheme() -> None:
    assert parse_authorization(None) is None
    assert parse_authorization("Bocage abc.def") == "abc.def"
    with pytest.raises(ValueError):
        parse_authorization("Bearer abc")


def test_ids() -> None:
    assert looks_like(new_id("m"), "m")
    assert not looks_like("m_short", "m")
    key = bytes(SigningKey.generate().verify_key)
    assert device_id_for(key) == device_id_for(key) and looks_like(device_id_for(key), "d")


def test_role_rules() -> None:
    require_may_manage(Role.ADMIN, Role.MEMBER)
    require_may_grant(Role.ADMIN, Role.ADMIN)
    require_may_grant(Role.OWNER, Role.OWNER)
    with pytest.raises(Forbidden):
        require_may_manage(Role.ADMIN, Role.OWNER)
    with pytest.raises(Forbidden):
        require_may_grant(Role.ADMIN, Role.OWNER)
    with pytest.raises(Forbidden):
        require_may_manage(Role.MEMBER, Role.MEMBER)


def test_settings_from_environment() -> None:
    local = Settings.from_env({})
    assert (local.store, local.mailer) == ("sqlite", "console")
    on_lambda = Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "bocage", "AWS_REGION": "eu-west-1"})
    assert (on_lambda.store, on_lambda.mailer, on_lambda.region) == ("dynamodb", "ses", "eu-west-1")
    tuned = Settings.from_env(
        {
            "BOCAGE_OPERATOR_KEYS": " k1, k2 ,",
            "BOCAGE_TOKEN_MAX_AGE": "900",
            "BOCAGE_PUBLIC_URL": "https://x/",
        }
    )
    assert tuned.operator_keys == ("k1", "k2")
    assert tuned.token_max_age == 300  # never above five minutes
    assert tuned.public_url == "https://x"
    assert "pa55-w0rd" not in repr(Settings(smtp_password="pa55-w0rd", turn_secret="pa55-w0rd"))
