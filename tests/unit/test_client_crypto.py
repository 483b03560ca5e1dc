"""Sender-key group encryption (envelopes, sealed chain states, labels) with real PyNaCl: no mocks."""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

import pytest

from bocage.client.crypto import (
    MAX_CONTENT_BYTES,
    PAD_BLOCK,
    CryptoError,
    ForgedMessage,
    MislabelledMessage,
    new_message_id,
    open_message,
    open_sender_key,
    pad,
    seal_message,
    seal_sender_key,
    unpad,
)
from bocage.client.profile import DeviceKeys
from bocage.client.ratchet import SenderKeyRing, message_key, new_chain_key
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.envelope import MAX_CIPHERTEXT_BYTES, MESSAGE_ID_PATTERN, Envelope
from chalicelib.domain.x25519 import UnsafeBoxKey

CHANNEL = "c_abcdefghijklmnop"
OTHER_CHANNEL = "c_qrstuvwxyz234567"
SENT_AT = 1_790_000_000_000


@pytest.fixture(scope="module")
def alice() -> DeviceKeys:
    return DeviceKeys.generate()


@pytest.fixture(scope="module")
def bob() -> DeviceKeys:
    return DeviceKeys.generate()


@pytest.fixture(scope="module")
def eve() -> DeviceKeys:
    return DeviceKeys.generate()


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def new_sender_key() -> bytes:
    """A message key, as a chain derives it."""
    return message_key(new_chain_key())


def _send(
    sender: DeviceKeys, key: bytes, content: dict[str, Any], *, epoch: int = 0, index: int = 0
) -> dict[str, Any]:
    envelope = seal_message(
        sender,
        key,
        index=index,
        channel_id=CHANNEL,
        epoch=epoch,
        message_id=new_message_id(),
        content=content,
        sent_at_ms=SENT_AT,
    )
    return envelope.model_dump(mode="json")


def _flip(b64: str) -> str:
    raw = bytearray(b64d(b64))
    raw[0] ^= 1
    return b64e(bytes(raw))


# --- round trip --------------------------------------------------------------------------------


def test_message_round_trip_between_two_devices(alice: DeviceKeys, bob: DeviceKeys) -> None:
    ring = SenderKeyRing()
    chain_key, index = ring.own_state(CHANNEL, 0)
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, chain_key, index)
    assert set(sealed) == {"recipient_device", "sender_device", "epoch", "sealed"}
    assert sealed["sender_device"] == alice.device_id
    assert b64e(chain_key) not in json.dumps(sealed)

    bob_ring = SenderKeyRing()
    received = open_sender_key(bob, sealed, alice.box_public_key, CHANNEL)
    assert received == (chain_key, 0)
    assert bob_ring.add_received(CHANNEL, 0, sealed["sender_device"], *received)

    message_id = new_message_id()
    at, key = ring.next_key(CHANNEL, 0, message_id, now=1)
    wire = _send(alice, key, _text("rendez-vous sous le chêne à midi"), index=at)
    assert "chêne" not in json.dumps(wire)
    # the server adds fields after storing: they are not signed and must be ignored
    stored = {
        **wire,
        "seq": 42,
        "stored_at": 1_790_000_000,
        "expires_at": 1_800_000_000,
        "sender_member": "m_x",
    }
    opened = bob_ring.open_with(
        CHANNEL,
        0,
        alice.device_id,
        stored["index"],
        seq=42,
        message_id=stored["message_id"],
        expires_at=stored["expires_at"],
        opener=lambda k: open_message(stored, k, alice.sign_public_key),
    )
    assert opened == _text("rendez-vous sous le chêne à midi")
    assert open_message(Envelope.model_validate(wire), key, alice.sign_public_key)["text"].startswith(
        "rendez"
    )


def test_envelope_validates_against_the_server_model(alice: DeviceKeys) -> None:
    wire = _send(alice, new_sender_key(), {"type": "text", "text": "bonjour"})
    envelope = Envelope.model_validate(wire)
    assert envelope.sender_device == alice.device_id
    assert envelope.kind == "message"
    assert len(b64d(envelope.nonce)) == 24
    assert Envelope.model_validate_json(json.dumps(wire)) == envelope


def test_new_message_id_matches_pattern_and_is_random() -> None:
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(MESSAGE_ID_PATTERN, i) for i in ids)


def test_chain_keys_are_32_random_bytes() -> None:
    assert len(new_chain_key()) == 32
    assert new_chain_key() != new_chain_key()


# --- forgery -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "tamper"),
    [
        ("ciphertext", _flip),
        ("nonce", _flip),
        ("epoch", lambda v: v + 1),
        ("index", lambda v: v + 1),
        ("channel_id", lambda v: OTHER_CHANNEL),
        ("message_id", lambda v: new_message_id()),
        ("sent_at", lambda v: v + 1),
    ],
)
def test_tampered_envelope_is_forged(alice: DeviceKeys, field: str, tamper: Any) -> None:
    key = new_sender_key()
    wire = _send(alice, key, {"type": "text", "text": "authentique"})
    tampered = {**wire, field: tamper(wire[field])}
    Envelope.model_validate(tampered)  # still well formed: only the signature catches it
    with pytest.raises(ForgedMessage):
        open_message(tampered, key, alice.sign_public_key)


def test_signature_by_another_device_is_forged(alice: DeviceKeys, eve: DeviceKeys) -> None:
    key = new_sender_key()
    wire = _send(alice, key, {"type": "text", "text": "de la part d'alice"})
    # eve re-signs alice's envelope with her own key but keeps alice as sender
    resigned = {
        **wire,
        "signature": b64e(eve.signing.sign(Envelope.model_validate(wire).signing_bytes()).signature),
    }
    with pytest.raises(ForgedMessage):
        open_message(resigned, key, alice.sign_public_key)
    # and presenting eve's public key for alice's device id does not help her
    with pytest.raises(ForgedMessage):
        open_message(resigned, key, eve.sign_public_key)
    # eve's own message claiming to be from alice
    forged = seal_message(
        eve,
        key,
        index=0,
        channel_id=CHANNEL,
        epoch=0,
        message_id=new_message_id(),
        content=_text("alice"),
        sent_at_ms=SENT_AT,
    ).model_dump(mode="json")
    with pytest.raises(ForgedMessage):
        open_message({**forged, "sender_device": alice.device_id}, key, alice.sign_public_key)


def test_wrong_sender_key_is_a_crypto_error_not_a_forgery(alice: DeviceKeys) -> None:
    wire = _send(alice, new_sender_key(), {"type": "text", "text": "x"})
    with pytest.raises(CryptoError) as info:
        open_message(wire, new_sender_key(), alice.sign_public_key)
    assert not isinstance(info.value, ForgedMessage)


def test_malformed_envelope_is_a_crypto_error(alice: DeviceKeys) -> None:
    key = new_sender_key()
    wire = _send(alice, key, {"type": "text", "text": "x"})
    with pytest.raises(CryptoError):
        open_message({**wire, "nonce": "not base64!"}, key, alice.sign_public_key)


# --- sealed keys -------------------------------------------------------------------------------


def test_sealed_key_opened_by_another_device_fails(
    alice: DeviceKeys, bob: DeviceKeys, eve: DeviceKeys
) -> None:
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, new_chain_key(), 0)
    with pytest.raises(CryptoError):
        open_sender_key(eve, sealed, alice.box_public_key, CHANNEL)
    # re-addressing it to eve does not help: she cannot open bob's box
    with pytest.raises(CryptoError):
        open_sender_key(eve, {**sealed, "recipient_device": eve.device_id}, alice.box_public_key, CHANNEL)


@pytest.mark.parametrize(
    ("relabel", "channel"),
    [
        ({}, OTHER_CHANNEL),
        ({"epoch": 1}, CHANNEL),
        ({"epoch": True}, CHANNEL),
    ],
)
def test_sealed_key_relabelled_for_another_channel_or_epoch_fails(
    alice: DeviceKeys, bob: DeviceKeys, relabel: dict[str, Any], channel: str
) -> None:
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, new_chain_key(), 0)
    with pytest.raises(CryptoError):
        open_sender_key(bob, {**sealed, **relabel}, alice.box_public_key, channel)


def test_sealed_key_presented_as_from_another_device_fails(
    alice: DeviceKeys, bob: DeviceKeys, eve: DeviceKeys
) -> None:
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, new_chain_key(), 0)
    with pytest.raises(CryptoError):  # right box, wrong claimed sender
        open_sender_key(bob, {**sealed, "sender_device": eve.device_id}, alice.box_public_key, CHANNEL)
    with pytest.raises(CryptoError):  # claimed sender's box key does not open it
        open_sender_key(bob, {**sealed, "sender_device": eve.device_id}, eve.box_public_key, CHANNEL)


def test_tampered_sealed_key_fails(alice: DeviceKeys, bob: DeviceKeys) -> None:
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, new_chain_key(), 0)
    raw = bytearray(b64d(sealed["sealed"]))
    raw[-1] ^= 1
    with pytest.raises(CryptoError):
        open_sender_key(bob, {**sealed, "sealed": b64e(bytes(raw))}, alice.box_public_key, CHANNEL)
    with pytest.raises(CryptoError):
        open_sender_key(
            bob, {k: v for k, v in sealed.items() if k != "sealed"}, alice.box_public_key, CHANNEL
        )


def test_removed_member_cannot_read_the_next_epoch(
    alice: DeviceKeys, bob: DeviceKeys, eve: DeviceKeys
) -> None:
    alice_ring = SenderKeyRing()
    epoch0 = alice_ring.own_state(CHANNEL, 0)
    sealed = seal_sender_key(alice, eve.device_id, eve.box_public_key, CHANNEL, 0, *epoch0)
    eve_chain, _ = open_sender_key(eve, sealed, alice.box_public_key, CHANNEL)
    alice_ring.mark_distributed(CHANNEL, 0, [eve.device_id, bob.device_id])

    # eve is removed: the epoch becomes 1, alice's next send uses a fresh chain sent only to bob
    epoch1 = alice_ring.own_state(CHANNEL, 1)
    assert epoch1[0] != epoch0[0]
    assert alice_ring.undistributed(CHANNEL, 1, [bob.device_id]) == [bob.device_id]
    index, key = alice_ring.next_key(CHANNEL, 1, new_message_id(), now=1)
    wire = _send(alice, key, _text("eve n'est plus là"), epoch=1, index=index)
    chain = eve_chain
    for _ in range(10):  # whatever eve derives from the old chain
        with pytest.raises(CryptoError):
            open_message(wire, message_key(chain), alice.sign_public_key)
        chain = hmac.digest(chain, b"\x02", "sha256")


def test_sealed_key_carries_the_state_and_refuses_bad_indexes(alice: DeviceKeys, bob: DeviceKeys) -> None:
    chain_key = new_chain_key()
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 4, chain_key, 17)
    assert open_sender_key(bob, sealed, alice.box_public_key, CHANNEL) == (chain_key, 17)
    for bad in (-1, True, 2**31, "3"):
        with pytest.raises(ValueError):
            seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 4, chain_key, bad)  # type: ignore[arg-type]


def test_a_version_1_sealed_key_is_refused(alice: DeviceKeys, bob: DeviceKeys) -> None:
    from nacl.public import Box, PublicKey

    payload = {
        "purpose": "bocage/sender-key/v1",
        "channel_id": CHANNEL,
        "epoch": 0,
        "sender_device": alice.device_id,
        "recipient_device": bob.device_id,
        "key": b64e(new_chain_key()),
    }
    box = Box(alice.box, PublicKey(b64d(bob.box_public_key)))
    old = {
        "recipient_device": bob.device_id,
        "sender_device": alice.device_id,
        "epoch": 0,
        "sealed": b64e(bytes(box.encrypt(json.dumps(payload).encode()))),
    }
    with pytest.raises(CryptoError, match="v2"):
        open_sender_key(bob, old, alice.box_public_key, CHANNEL)


@pytest.mark.parametrize(
    "low", [bytes(32), (1).to_bytes(32, "little"), ((1 << 255) - 20).to_bytes(32, "little")]
)
def test_nothing_is_sealed_to_or_opened_from_a_small_order_key(
    alice: DeviceKeys, bob: DeviceKeys, low: bytes
) -> None:
    with pytest.raises(UnsafeBoxKey):
        seal_sender_key(alice, bob.device_id, b64e(low), CHANNEL, 0, new_chain_key(), 0)
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, new_chain_key(), 0)
    with pytest.raises(CryptoError):
        open_sender_key(bob, sealed, b64e(low), CHANNEL)


# --- labels: what the server acted on must be what the content says ----------------------------


def _seal_raw(sender: DeviceKeys, key: bytes, kind: str, target: str | None, sealed: Any) -> dict[str, Any]:
    """An envelope whose sealed plaintext is ``sealed`` as is: what a lying sender can make."""
    from nacl.secret import SecretBox

    encrypted = SecretBox(key).encrypt(pad(json.dumps(sealed).encode()))
    unsigned = Envelope(
        channel_id=CHANNEL,
        message_id=new_message_id(),
        sender_device=sender.device_id,
        epoch=0,
        index=0,
        kind=kind,  # type: ignore[arg-type]
        target=target,
        sent_at=SENT_AT,
        nonce=b64e(encrypted.nonce),
        ciphertext=b64e(encrypted.ciphertext),
        signature=b64e(bytes(64)),
    )
    signature = sender.signing.sign(unsigned.signing_bytes()).signature
    return unsigned.model_copy(update={"signature": b64e(signature)}).model_dump(mode="json")


POLL = "P" * 22
OTHER_POLL = "Q" * 22


@pytest.mark.parametrize(
    ("kind", "target", "sealed"),
    [
        # a tribe member's post labelled as a reaction (tribe members may react)
        ("reaction", None, {"kind": "reaction", "target": None, "content": _text("un post")}),
        ("reaction", None, {"kind": "message", "target": None, "content": _text("un post")}),
        # a poll close whose clear target is the sender's poll, the content another one
        (
            "poll_close",
            POLL,
            {"kind": "poll_close", "target": POLL, "content": {"type": "close", "poll_id": OTHER_POLL}},
        ),
        (
            "poll_close",
            POLL,
            {"kind": "poll_close", "target": OTHER_POLL, "content": {"type": "close", "poll_id": OTHER_POLL}},
        ),
        (
            "delete",
            POLL,
            {"kind": "delete", "target": POLL, "content": {"type": "delete", "target": OTHER_POLL}},
        ),
        # a v1-style content without its labels
        ("message", None, _text("sans étiquette")),
        ("message", None, {"kind": "message", "target": None, "content": _text("x"), "extra": 1}),
        ("message", None, {"kind": "message", "target": None, "content": "x"}),
    ],
)
def test_mislabelled_messages_are_refused(
    alice: DeviceKeys, kind: str, target: str | None, sealed: dict[str, Any]
) -> None:
    key = new_sender_key()
    wire = _seal_raw(alice, key, kind, target, sealed)
    with pytest.raises(MislabelledMessage):
        open_message(wire, key, alice.sign_public_key)


def test_labels_that_agree_open(alice: DeviceKeys) -> None:
    key = new_sender_key()
    close = {"type": "close", "poll_id": POLL}
    wire = _seal_raw(alice, key, "poll_close", POLL, {"kind": "poll_close", "target": POLL, "content": close})
    assert open_message(wire, key, alice.sign_public_key) == close


def test_a_sender_cannot_seal_a_mislabelled_message(alice: DeviceKeys) -> None:
    for kind, target, content in (
        ("reaction", None, _text("post")),
        ("poll_close", POLL, {"type": "close", "poll_id": OTHER_POLL}),
        ("message", None, {"text": "no type"}),
    ):
        with pytest.raises(ValueError):
            seal_message(
                alice,
                new_sender_key(),
                index=0,
                channel_id=CHANNEL,
                epoch=0,
                message_id=new_message_id(),
                content=content,
                kind=kind,
                target=target,
                sent_at_ms=SENT_AT,
            )


# --- padding and sizes -------------------------------------------------------------------------


def test_padding_hides_length(alice: DeviceKeys) -> None:
    key = new_sender_key()

    def size(n: int) -> int:
        return len(b64d(_send(alice, key, {"type": "text", "text": "x" * n})["ciphertext"]))

    assert size(1) == size(150) == PAD_BLOCK + 16  # the labels take about 60 of the 255 bytes
    assert size(300) > size(150)


@pytest.mark.parametrize("n", [0, 1, 254, 255, 256, 257, 511, 1000])
def test_pad_unpad_round_trip(n: int) -> None:
    data = bytes(range(256)) * 4
    data = data[:n]
    padded = pad(data)
    assert len(padded) % PAD_BLOCK == 0
    assert len(padded) > len(data)
    assert unpad(padded) == data


@pytest.mark.parametrize("bad", [b"", b"\x00" * 256, b"a" * 256, b"a" + b"\x80" + b"\x00" * 255])
def test_unpad_rejects_bad_padding(bad: bytes) -> None:
    with pytest.raises(CryptoError):
        unpad(bad)


def test_sixty_kib_fits_and_validates(alice: DeviceKeys, bob: DeviceKeys) -> None:
    key = new_sender_key()
    content = {"type": "text", "text": "é" * (30 * 1024)}  # 60 KiB of UTF-8
    wire = _send(alice, key, content)
    assert len(b64d(wire["ciphertext"])) <= MAX_CIPHERTEXT_BYTES
    Envelope.model_validate(wire)
    assert open_message(wire, key, alice.sign_public_key) == content


def test_seventy_kib_is_refused_before_sending(alice: DeviceKeys) -> None:
    with pytest.raises(ValueError, match="at most"):
        _send(alice, new_sender_key(), {"type": "text", "text": "x" * (70 * 1024)})


def test_largest_content_fits_exactly(alice: DeviceKeys) -> None:
    wrapped = {"kind": "message", "target": None, "content": {"type": "text", "text": ""}}
    overhead = len(json.dumps(wrapped, separators=(",", ":")))
    key = new_sender_key()
    wire = _send(alice, key, {"type": "text", "text": "x" * (MAX_CONTENT_BYTES - overhead)})
    Envelope.model_validate(wire)
    with pytest.raises(ValueError):
        _send(alice, key, {"type": "text", "text": "x" * (MAX_CONTENT_BYTES - overhead + 1)})


# --- key ring ----------------------------------------------------------------------------------


def test_ring_distribution_happens_once_per_recipient() -> None:
    ring = SenderKeyRing()
    devices = ["d_1", "d_2", "d_3"]
    assert ring.undistributed(CHANNEL, 0, devices) == devices
    ring.mark_distributed(CHANNEL, 0, ["d_1", "d_3"])
    assert ring.undistributed(CHANNEL, 0, [*devices, "d_4", "d_2"]) == ["d_2", "d_4"]
    assert ring.undistributed(CHANNEL, 1, devices) == devices  # a new epoch starts over
    assert ring.undistributed(OTHER_CHANNEL, 0, devices) == devices
    ring.mark_distributed(CHANNEL, 0, {"d_2", "d_4"})
    assert ring.undistributed(CHANNEL, 0, devices) == []


def test_message_ids_never_look_like_options() -> None:
    assert not any(new_message_id().startswith("-") for _ in range(2000))
