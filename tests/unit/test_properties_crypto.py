"""Property tests of the crypto round trips (issue 19): what is sealed opens to the same thing,
and any change to what was signed or sealed is caught, over generated contents and positions."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bocage.client.crypto import (
    CryptoError,
    ForgedMessage,
    open_message,
    open_sender_key,
    pad,
    seal_message,
    seal_sender_key,
    unpad,
)
from bocage.client.profile import DeviceKeys, sign_token
from bocage.client.ratchet import SenderKeyRing, advance, message_key, next_chain
from chalicelib.domain.auth_token import decode_token, request_digest
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.statements import ROLE, StatementError, public_key_of, sign_statement, verify_statement

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALICE, BOB = DeviceKeys.generate(), DeviceKeys.generate()
CHANNEL = "c_aaaaaaaaaaaaaaaa"
KEY32 = st.binary(min_size=32, max_size=32)
INDEX = st.integers(min_value=0, max_value=2**31 - 1)
TEXT = st.text(max_size=300)


def _open_alices(envelope: dict[str, Any], key: bytes) -> dict[str, Any]:
    return open_message(envelope, key, ALICE.sign_public_key)


def _envelope(
    key: bytes, index: int, text: str, epoch: int = 0, message_id: str = "msg-00000001"
) -> dict[str, Any]:
    sealed = seal_message(
        ALICE,
        key,
        index=index,
        channel_id=CHANNEL,
        epoch=epoch,
        message_id=message_id,
        content={"type": "text", "text": text},
        sent_at_ms=1,
    )
    return sealed.model_dump(mode="json")


@FAST
@given(key=KEY32, index=INDEX, text=TEXT, epoch=st.integers(0, 2**31))
def test_a_sealed_message_opens_to_its_content(key: bytes, index: int, text: str, epoch: int) -> None:
    envelope = _envelope(key, index, text, epoch)
    opened = open_message(envelope, key, ALICE.sign_public_key)
    assert opened == {"type": "text", "text": text}


@FAST
@given(
    key=KEY32,
    text=TEXT,
    field=st.sampled_from(["channel_id", "epoch", "index", "sent_at", "kind", "nonce", "ciphertext"]),
)
def test_any_change_to_a_signed_field_is_a_forgery(key: bytes, text: str, field: str) -> None:
    envelope = _envelope(key, 1, text)
    changed = {
        "channel_id": "c_bbbbbbbbbbbbbbbb",
        "epoch": 2,
        "index": 2,
        "sent_at": 2,
        "kind": "reaction",
        "nonce": b64e(bytes(24)),
        "ciphertext": b64e(b64d(envelope["ciphertext"])[::-1]),
    }[field]
    with pytest.raises(ForgedMessage):
        open_message({**envelope, field: changed}, key, ALICE.sign_public_key)
    with pytest.raises(ForgedMessage):
        open_message(envelope, key, BOB.sign_public_key)  # the key of another device


@FAST
@given(key=KEY32, other=KEY32, text=TEXT)
def test_another_message_key_does_not_open(key: bytes, other: bytes, text: str) -> None:
    if key == other:
        return
    with pytest.raises(CryptoError):
        open_message(_envelope(key, 0, text), other, ALICE.sign_public_key)


@FAST
@given(data=st.binary(max_size=1000))
def test_padding_round_trips_and_hides_the_exact_length(data: bytes) -> None:
    padded = pad(data)
    assert unpad(padded) == data and len(padded) > len(data) and len(padded) % len(pad(b"")) == 0


@FAST
@given(data=st.binary(max_size=600))
def test_unpadding_anything_gives_bytes_or_a_crypto_error(data: bytes) -> None:
    with contextlib.suppress(CryptoError):
        unpad(data)


@FAST
@given(chain_key=KEY32, index=INDEX, epoch=st.integers(0, 2**31))
def test_a_sealed_sender_key_opens_only_for_its_device_channel_and_epoch(
    chain_key: bytes, index: int, epoch: int
) -> None:
    sealed = seal_sender_key(ALICE, BOB.device_id, BOB.box_public_key, CHANNEL, epoch, chain_key, index)
    assert open_sender_key(BOB, sealed, ALICE.box_public_key, CHANNEL) == (chain_key, index)
    with pytest.raises(CryptoError):
        open_sender_key(BOB, sealed, ALICE.box_public_key, "c_bbbbbbbbbbbbbbbb")
    with pytest.raises(CryptoError):
        open_sender_key(BOB, {**sealed, "epoch": epoch + 1}, ALICE.box_public_key, CHANNEL)
    with pytest.raises(CryptoError):
        open_sender_key(ALICE, sealed, ALICE.box_public_key, CHANNEL)


@FAST
@given(chain_key=KEY32, steps=st.integers(0, 40))
def test_the_ratchet_is_deterministic_and_never_repeats_a_key(chain_key: bytes, steps: int) -> None:
    keys, chain = [], chain_key
    for _ in range(steps + 1):
        keys.append(message_key(chain))
        chain = next_chain(chain)
    assert advance(chain_key, steps + 1) == chain
    assert len(set(keys)) == len(keys) and chain_key not in keys


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(6)), text=TEXT)
def test_a_receiver_opens_a_senders_messages_in_any_order(order: list[int], text: str) -> None:
    """Out of order, as a reconnecting device catches up: every message opens, with its content."""
    sender, receiver = SenderKeyRing(), SenderKeyRing()
    chain_key, start = sender.own_state(CHANNEL, 0)  # what the sender seals to the receiver
    assert receiver.add_received(CHANNEL, 0, ALICE.device_id, chain_key, start)
    envelopes = []
    for n in range(6):
        index, key = sender.next_key(CHANNEL, 0, f"msg-0000000{n}", now=0)
        envelopes.append((index, _envelope(key, index, f"{text} {n}", message_id=f"msg-0000000{n}")))
    for n in order:
        index, envelope = envelopes[n]
        opened = receiver.open_with(
            CHANNEL,
            0,
            ALICE.device_id,
            index,
            seq=n + 1,
            message_id=f"msg-0000000{n}",
            expires_at=10**9,
            opener=functools.partial(_open_alices, envelope),
        )
        assert opened == {"type": "text", "text": f"{text} {n}"}


@FAST
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.text(min_size=1, max_size=40).map(lambda p: "/" + p),
    query=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
    body=st.binary(max_size=200),
)
def test_a_request_token_decodes_to_what_was_signed(
    method: str, path: str, query: dict[str, str], body: bytes
) -> None:
    token = sign_token(ALICE.signing, ALICE.device_id, method, path, query, body, now=1_000_000)
    claims, signed, signature = decode_token(token)
    assert claims.subject == ALICE.device_id and claims.digest == request_digest(method, path, query, body)
    ALICE.signing.verify_key.verify(signed, signature)
    assert claims.digest != request_digest(method, path + "x", query, body)


@FAST
@given(
    seed=KEY32, other=KEY32, serial=st.integers(1, 2**31), role=st.sampled_from(["owner", "admin", "member"])
)
def test_a_signed_statement_verifies_with_its_key_only(
    seed: bytes, other: bytes, serial: int, role: str
) -> None:
    body = {
        "purpose": ROLE,
        "org_id": "o_aaaaaaaaaaaaaaaa",
        "member_id": "m_aaaaaaaaaaaaaaaa",
        "identity_key": public_key_of(seed),
        "role": role,
        "serial": serial,
        "issued_at": 1_000_000,
        "by_device": ALICE.device_id,
    }
    signed = sign_statement(body, seed)
    assert verify_statement(signed, ROLE, public_key_of(seed)) == signed
    with pytest.raises(StatementError):
        verify_statement({**signed, "serial": serial + 1}, ROLE, public_key_of(seed))
    if other != seed:
        with pytest.raises(StatementError):
            verify_statement(signed, ROLE, public_key_of(other))
