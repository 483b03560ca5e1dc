"""Property tests: whatever arrives, each parser answers with its own clean error, never another
exception (issue 19). A server-side parser that raised anything else would answer 500 or drop a
WebSocket; a client-side one would crash on a hostile server's answer."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bocage.client.certs import TrustView
from bocage.client.crypto import CryptoError, open_sender_key
from bocage.client.crypto import parse_envelope as client_envelope
from bocage.client.profile import DeviceKeys
from chalicelib.domain.auth_token import decode_token, parse_authorization
from chalicelib.domain.envelope import parse_envelope
from chalicelib.domain.frames import parse_action, parse_frame
from chalicelib.domain.statements import (
    DEVICE_CERT,
    MEMBER_CERT,
    MEMBERSHIP,
    TICKET,
    StatementError,
    check_shape,
    verify_statement,
)
from chalicelib.errors import BocageError
from chalicelib.json_input import parse_object

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
KEYS = DeviceKeys.generate()
ENVELOPE_FIELDS = ["v", "channel_id", "message_id", "sender_device", "epoch", "index", "kind", "target"]
ENVELOPE_FIELDS += ["sent_at", "nonce", "ciphertext", "signature"]
FRAME_TYPES = ["message", "joined", "left", "device", "revoked", "rotated", "role", "channel", "ack"]
FRAME_TYPES += ["error", "pong", "ping", "send"]


def _valid_envelope() -> dict[str, Any]:
    from bocage.client.crypto import seal_message

    envelope = seal_message(
        KEYS,
        bytes(32),
        index=0,
        channel_id="c_aaaaaaaaaaaaaaaa",
        epoch=0,
        message_id="msg-00000001",
        content={"type": "text", "text": "bonjour"},
        sent_at_ms=1,
    )
    return envelope.model_dump(mode="json")


VALID = _valid_envelope()


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope with some fields replaced by anything, removed, or added."""
    envelope = dict(VALID)
    for name in draw(st.lists(st.sampled_from([*ENVELOPE_FIELDS, "extra"]), min_size=1, max_size=3)):
        if draw(st.booleans()):
            envelope[name] = draw(JSON)
        else:
            envelope.pop(name, None)
    return envelope


def _typed_objects(types: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that name a real type, so validation goes past the discriminator."""
    return st.builds(
        lambda t, rest: {**rest, "type": t},
        st.sampled_from(types),
        st.dictionaries(st.text(max_size=12), JSON, max_size=6),
    )


@FAST
@given(raw=JSON | _typed_objects(FRAME_TYPES))
def test_frames_and_actions_parse_or_fail_validation(raw: Any) -> None:
    for parse in (parse_frame, parse_action):
        with contextlib.suppress(ValidationError):
            parse(raw)


@FAST
@given(raw=JSON | mutated_envelopes())
def test_envelopes_parse_or_are_refused_with_a_status(raw: Any) -> None:
    try:
        parse_envelope(raw)
    except BocageError as error:
        assert 400 <= error.status < 500
    if isinstance(raw, dict):
        with contextlib.suppress(CryptoError):
            client_envelope(raw)


def test_the_valid_envelope_parses_on_both_sides() -> None:
    assert parse_envelope(VALID).message_id == client_envelope(VALID).message_id == "msg-00000001"


@FAST
@given(
    text=st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | JSON.map(lambda v: json.dumps(v).encode())
)
def test_json_bodies_parse_or_are_a_bad_request(text: bytes) -> None:
    try:
        assert isinstance(parse_object(text, malformed="m", not_object="o"), dict)
    except BocageError as error:
        assert error.status == 400


def test_deep_nesting_is_a_bad_request() -> None:
    with pytest.raises(BocageError):
        parse_object(b"[" * 100_000, malformed="m", not_object="o")


@FAST
@given(
    statement=JSON
    | st.dictionaries(st.sampled_from(["purpose", "sig", "org_id", "member_id", "identity_key"]), JSON),
    purpose=st.sampled_from([MEMBER_CERT, DEVICE_CERT, TICKET, MEMBERSHIP]),
)
def test_certificates_and_statements_check_or_fail_cleanly(statement: Any, purpose: str) -> None:
    if isinstance(statement, dict) and draw_purpose(statement):
        statement["purpose"] = purpose
    with contextlib.suppress(StatementError):
        check_shape(statement, purpose)
    with contextlib.suppress(StatementError):
        verify_statement(statement, purpose, KEYS.sign_public_key)


def draw_purpose(statement: dict[str, Any]) -> bool:
    """Give half the statements a real purpose, so the field checks run too."""
    return len(statement) % 2 == 0


@FAST
@given(token=st.text(max_size=300), header=st.none() | st.text(max_size=60))
def test_tokens_and_headers_parse_or_raise_value_error(token: str, header: str | None) -> None:
    for call in (lambda: decode_token(token), lambda: parse_authorization(header)):
        with contextlib.suppress(ValueError):
            call()


@settings(max_examples=80, deadline=None)
@given(
    members=st.lists(
        st.fixed_dictionaries(
            {"member_id": st.sampled_from(["m_a", "m_b"])},
            optional={
                "member_cert": JSON,
                "role_statements": JSON,
                "removal": JSON,
                "ticket": JSON,
                "role": JSON,
            },
        ),
        max_size=3,
    ),
    devices=st.lists(
        st.fixed_dictionaries(
            {"device_id": st.sampled_from(["d_a", "d_b"])},
            optional={"device_cert": JSON, "member_id": JSON, "revocation": JSON, "ticket": JSON},
        ),
        max_size=3,
    ),
)
def test_a_client_reads_any_member_listing_without_crashing(
    members: list[dict[str, Any]], devices: list[dict[str, Any]]
) -> None:
    """The trust view over certificates a hostile server sends: untrusted, never an exception."""
    view = TrustView("o_aaaaaaaaaaaaaaaa", KEYS.sign_public_key, members, devices)
    for member_id in ("m_a", "m_b"):
        view.member(member_id)
        view.why_not_member(member_id)
        view.role(member_id)
    for device_id in ("d_a", "d_b"):
        view.device(device_id)
        view.why_not(device_id)
        view.usable(device_id)


@FAST
@given(
    sealed=st.dictionaries(st.sampled_from(["sender_device", "epoch", "recipient_device", "sealed"]), JSON)
)
def test_sealed_keys_open_or_fail_with_crypto_error(sealed: dict[str, Any]) -> None:
    with contextlib.suppress(CryptoError):
        open_sender_key(KEYS, sealed, KEYS.box_public_key, "c_aaaaaaaaaaaaaaaa")
