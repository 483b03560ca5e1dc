"""Sender-key group encryption with real PyNaCl: no mocks."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from bocage.client.crypto import (
    MAX_CONTENT_BYTES,
    PAD_BLOCK,
    CryptoError,
    ForgedMessage,
    SenderKeyRing,
    new_message_id,
    new_sender_key,
    open_message,
    open_sender_key,
    pad,
    seal_message,
    seal_sender_key,
    unpad,
)
from bocage.client.profile import DeviceKeys
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.envelope import MAX_CIPHERTEXT_BYTES, MESSAGE_ID_PATTERN, Envelope

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


def _send(sender: DeviceKeys, key: bytes, content: dict[str, Any], *, epoch: int = 0) -> dict[str, Any]:
    envelope = seal_message(
        sender,
        key,
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
    key = ring.own_key(CHANNEL, 0)
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, key)
    assert set(sealed) == {"recipient_device", "sender_device", "epoch", "sealed"}
    assert sealed["sender_device"] == alice.device_id
    assert b64e(key) not in json.dumps(sealed)

    bob_ring = SenderKeyRing()
    received = open_sender_key(bob, sealed, alice.box_public_key, CHANNEL)
    assert received == key
    bob_ring.add_received(CHANNEL, 0, sealed["sender_device"], received)

    wire = _send(alice, key, {"text": "rendez-vous sous le chêne à midi"})
    assert "chêne" not in json.dumps(wire)
    # the server adds fields after storing: they are not signed and must be ignored
    stored = {
        **wire,
        "seq": 42,
        "stored_at": 1_790_000_000,
        "expires_at": 1_800_000_000,
        "sender_member": "m_x",
    }
    bob_key = bob_ring.received(CHANNEL, 0, stored["sender_device"])
    assert bob_key is not None
    assert open_message(stored, bob_key, alice.sign_public_key) == {
        "text": "rendez-vous sous le chêne à midi"
    }
    assert open_message(Envelope.model_validate(wire), bob_key, alice.sign_public_key)["text"].startswith(
        "rendez"
    )


def test_envelope_validates_against_the_server_model(alice: DeviceKeys) -> None:
    wire = _send(alice, new_sender_key(), {"text": "bonjour"})
    envelope = Envelope.model_validate(wire)
    assert envelope.sender_device == alice.device_id
    assert envelope.kind == "message"
    assert len(b64d(envelope.nonce)) == 24
    assert Envelope.model_validate_json(json.dumps(wire)) == envelope


def test_new_message_id_matches_pattern_and_is_random() -> None:
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(MESSAGE_ID_PATTERN, i) for i in ids)


def test_new_sender_key_is_32_random_bytes() -> None:
    assert len(new_sender_key()) == 32
    assert new_sender_key() != new_sender_key()


# --- forgery -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "tamper"),
    [
        ("ciphertext", _flip),
        ("nonce", _flip),
        ("epoch", lambda v: v + 1),
        ("channel_id", lambda v: OTHER_CHANNEL),
        ("message_id", lambda v: new_message_id()),
        ("sent_at", lambda v: v + 1),
    ],
)
def test_tampered_envelope_is_forged(alice: DeviceKeys, field: str, tamper: Any) -> None:
    key = new_sender_key()
    wire = _send(alice, key, {"text": "authentique"})
    tampered = {**wire, field: tamper(wire[field])}
    Envelope.model_validate(tampered)  # still well formed: only the signature catches it
    with pytest.raises(ForgedMessage):
        open_message(tampered, key, alice.sign_public_key)


def test_signature_by_another_device_is_forged(alice: DeviceKeys, eve: DeviceKeys) -> None:
    key = new_sender_key()
    wire = _send(alice, key, {"text": "de la part d'alice"})
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
        eve, key, channel_id=CHANNEL, epoch=0, message_id=new_message_id(), content={}, sent_at_ms=SENT_AT
    ).model_dump(mode="json")
    with pytest.raises(ForgedMessage):
        open_message({**forged, "sender_device": alice.device_id}, key, alice.sign_public_key)


def test_wrong_sender_key_is_a_crypto_error_not_a_forgery(alice: DeviceKeys) -> None:
    wire = _send(alice, new_sender_key(), {"text": "x"})
    with pytest.raises(CryptoError) as info:
        open_message(wire, new_sender_key(), alice.sign_public_key)
    assert not isinstance(info.value, ForgedMessage)


def test_malformed_envelope_is_a_crypto_error(alice: DeviceKeys) -> None:
    key = new_sender_key()
    wire = _send(alice, key, {"text": "x"})
    with pytest.raises(CryptoError):
        open_message({**wire, "nonce": "not base64!"}, key, alice.sign_public_key)


# --- sealed keys -------------------------------------------------------------------------------


def test_sealed_key_opened_by_another_device_fails(
    alice: DeviceKeys, bob: DeviceKeys, eve: DeviceKeys
) -> None:
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, new_sender_key())
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
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, new_sender_key())
    with pytest.raises(CryptoError):
        open_sender_key(bob, {**sealed, **relabel}, alice.box_public_key, channel)


def test_sealed_key_presented_as_from_another_device_fails(
    alice: DeviceKeys, bob: DeviceKeys, eve: DeviceKeys
) -> None:
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, new_sender_key())
    with pytest.raises(CryptoError):  # right box, wrong claimed sender
        open_sender_key(bob, {**sealed, "sender_device": eve.device_id}, alice.box_public_key, CHANNEL)
    with pytest.raises(CryptoError):  # claimed sender's box key does not open it
        open_sender_key(bob, {**sealed, "sender_device": eve.device_id}, eve.box_public_key, CHANNEL)


def test_tampered_sealed_key_fails(alice: DeviceKeys, bob: DeviceKeys) -> None:
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, new_sender_key())
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
    alice_ring, eve_ring = SenderKeyRing(), SenderKeyRing()
    epoch0 = alice_ring.own_key(CHANNEL, 0)
    sealed = seal_sender_key(alice, eve.device_id, eve.box_public_key, CHANNEL, 0, epoch0)
    eve_ring.add_received(
        CHANNEL, 0, alice.device_id, open_sender_key(eve, sealed, alice.box_public_key, CHANNEL)
    )
    alice_ring.mark_distributed(CHANNEL, 0, [eve.device_id, bob.device_id])

    # eve is removed: the epoch becomes 1, alice's next send uses a fresh key sent only to bob
    epoch1 = alice_ring.own_key(CHANNEL, 1)
    assert epoch1 != epoch0
    assert alice_ring.undistributed(CHANNEL, 1, [bob.device_id]) == [bob.device_id]
    wire = _send(alice, epoch1, {"text": "eve n'est plus là"}, epoch=1)

    assert eve_ring.received(CHANNEL, 1, alice.device_id) is None
    old = eve_ring.received(CHANNEL, 0, alice.device_id)
    assert old is not None
    with pytest.raises(CryptoError):
        open_message(wire, old, alice.sign_public_key)


# --- padding and sizes -------------------------------------------------------------------------


def test_padding_hides_length(alice: DeviceKeys) -> None:
    key = new_sender_key()

    def size(n: int) -> int:
        return len(b64d(_send(alice, key, {"text": "x" * n})["ciphertext"]))

    assert size(1) == size(200) == PAD_BLOCK + 16
    assert size(300) > size(200)


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
    content = {"text": "é" * (30 * 1024)}  # 60 KiB of UTF-8
    wire = _send(alice, key, content)
    assert len(b64d(wire["ciphertext"])) <= MAX_CIPHERTEXT_BYTES
    Envelope.model_validate(wire)
    assert open_message(wire, key, alice.sign_public_key) == content


def test_seventy_kib_is_refused_before_sending(alice: DeviceKeys) -> None:
    with pytest.raises(ValueError, match="at most"):
        _send(alice, new_sender_key(), {"text": "x" * (70 * 1024)})


def test_largest_content_fits_exactly(alice: DeviceKeys) -> None:
    overhead = len(json.dumps({"text": ""}, separators=(",", ":")))
    key = new_sender_key()
    wire = _send(alice, key, {"text": "x" * (MAX_CONTENT_BYTES - overhead)})
    Envelope.model_validate(wire)
    with pytest.raises(ValueError):
        _send(alice, key, {"text": "x" * (MAX_CONTENT_BYTES - overhead + 1)})


# --- key ring ----------------------------------------------------------------------------------


def test_ring_own_key_is_stable_per_channel_and_epoch() -> None:
    ring = SenderKeyRing()
    assert ring.own_key(CHANNEL, 0) == ring.own_key(CHANNEL, 0)
    assert ring.own_key(CHANNEL, 0) != ring.own_key(CHANNEL, 1)
    assert ring.own_key(CHANNEL, 0) != ring.own_key(OTHER_CHANNEL, 0)


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


def test_ring_json_round_trip() -> None:
    ring = SenderKeyRing()
    mine = ring.own_key(CHANNEL, 3)
    theirs = new_sender_key()
    ring.add_received(CHANNEL, 2, "d_bob", theirs)
    ring.mark_distributed(CHANNEL, 3, ["d_bob", "d_carol"])

    copy = SenderKeyRing.from_json(ring.to_json())
    assert copy.own_key(CHANNEL, 3) == mine
    assert copy.received(CHANNEL, 2, "d_bob") == theirs
    assert copy.received(CHANNEL, 3, "d_bob") is None
    assert copy.undistributed(CHANNEL, 3, ["d_bob", "d_carol", "d_dan"]) == ["d_dan"]
    assert copy.to_json() == ring.to_json()


@pytest.mark.parametrize("text", ["[]", '{"v": 2, "own": [], "received": [], "distributed": []}', '{"v": 1}'])
def test_ring_rejects_malformed_json(text: str) -> None:
    with pytest.raises(ValueError):
        SenderKeyRing.from_json(text)


def test_ring_rejects_wrong_key_size() -> None:
    with pytest.raises(ValueError):
        SenderKeyRing().add_received(CHANNEL, 0, "d_bob", b"short")


def test_ring_save_is_private_and_loads_back(tmp_path: Path) -> None:
    ring = SenderKeyRing()
    key = ring.own_key(CHANNEL, 0)
    path = tmp_path / "profile" / "sender_keys.json"
    ring.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SenderKeyRing.load(path).own_key(CHANNEL, 0) == key

    path.chmod(0o644)
    with pytest.raises(PermissionError):
        SenderKeyRing.load(path)


def test_ring_load_missing_file_is_empty(tmp_path: Path) -> None:
    ring = SenderKeyRing.load(tmp_path / "absent.json")
    assert ring.received(CHANNEL, 0, "d_bob") is None
    assert ring.undistributed(CHANNEL, 0, ["d_bob"]) == ["d_bob"]


def test_message_ids_never_look_like_options() -> None:
    assert not any(new_message_id().startswith("-") for _ in range(2000))
