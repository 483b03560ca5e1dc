"""The sender-key ratchet and the ring that keeps it (bocage/client/ratchet.py), with real crypto."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from bocage.client.crypto import CryptoError, new_message_id, open_message, seal_message
from bocage.client.profile import DeviceKeys
from bocage.client.ratchet import (
    MAX_SKIP,
    UNCONFIRMED_TTL,
    KeyUnavailable,
    ReplayedMessage,
    SenderKeyRing,
    TooFarAhead,
    advance,
    message_key,
    next_chain,
)
from chalicelib.domain.encoding import b64d, b64e

CHANNEL = "c_abcdefghijklmnop"
DAY = 86400
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def alice() -> DeviceKeys:
    return DeviceKeys.generate()


class Sender:
    """Alice's device: her ring, and the stored messages she sent (as the server returns them)."""

    def __init__(self, keys: DeviceKeys, epoch: int = 0) -> None:
        self.keys, self.epoch, self.ring = keys, epoch, SenderKeyRing()
        self.seq = 0

    def state(self) -> tuple[bytes, int]:
        return self.ring.own_state(CHANNEL, self.epoch)

    def send(self, text: str, *, expires_at: int = NOW + 90 * DAY) -> dict[str, Any]:
        message_id = new_message_id()
        index, key = self.ring.next_key(CHANNEL, self.epoch, message_id, NOW)
        envelope = seal_message(
            self.keys,
            key,
            index=index,
            channel_id=CHANNEL,
            epoch=self.epoch,
            message_id=message_id,
            content={"type": "text", "text": text},
            sent_at_ms=NOW * 1000,
        )
        self.seq += 1
        self.ring.confirm(CHANNEL, self.epoch, index, seq=self.seq, expires_at=expires_at)
        return {**envelope.model_dump(mode="json"), "seq": self.seq, "expires_at": expires_at}


def read(ring: SenderKeyRing, alice: DeviceKeys, stored: dict[str, Any], *, own: bool = False) -> str:
    content = ring.open_with(
        stored["channel_id"],
        stored["epoch"],
        None if own else stored["sender_device"],
        stored["index"],
        seq=stored["seq"],
        message_id=stored["message_id"],
        expires_at=stored["expires_at"],
        opener=lambda key: open_message(stored, key, alice.sign_public_key),
    )
    return str(content["text"])


def receiver_of(sender: Sender) -> SenderKeyRing:
    ring = SenderKeyRing()
    assert ring.add_received(CHANNEL, sender.epoch, sender.keys.device_id, *sender.state())
    return ring


def test_the_chain_is_hmac_sha256_with_one_and_two() -> None:
    chain = bytes([7]) * 32
    assert message_key(chain) == hmac.new(chain, b"\x01", hashlib.sha256).digest()
    assert next_chain(chain) == hmac.new(chain, b"\x02", hashlib.sha256).digest()
    assert advance(chain, 3) == next_chain(next_chain(next_chain(chain)))
    # the vector docs/protocol.md quotes (section 6), so that a third client can check itself
    assert b64e(message_key(advance(chain, 5))) == "3E0SPGgMTkzubcZIDRUxhPVASlNmqXbDvnFGhKIo_gs"


def test_in_order_out_of_order_and_missing_messages_open(alice: DeviceKeys) -> None:
    sender = Sender(alice)
    bob = receiver_of(sender)
    sent = [sender.send(f"m{i}") for i in range(6)]
    assert read(bob, alice, sent[0]) == "m0"
    assert read(bob, alice, sent[4]) == "m4"  # 1, 2, 3 late: their keys are kept
    assert read(bob, alice, sent[2]) == "m2"
    assert read(bob, alice, sent[1]) == "m1"
    assert read(bob, alice, sent[5]) == "m5"
    assert read(bob, alice, sent[3]) == "m3"
    assert read(bob, alice, sent[3]) == "m3"  # the same message read again (history): same seq
    assert bob.state(CHANNEL, 0, alice.device_id) == (advance(sender.state()[0], 0), 6)
    assert read(sender.ring, alice, sent[2], own=True) == "m2"  # the sender reads its own back


def test_a_window_of_two_thousand_missing_messages_and_a_clear_error_beyond(alice: DeviceKeys) -> None:
    sender = Sender(alice)
    bob, carol = receiver_of(sender), receiver_of(sender)
    chain_key, _ = sender.state()
    for _ in range(MAX_SKIP):
        sender.ring.next_key(CHANNEL, 0, new_message_id(), NOW)  # sent, never delivered
    last_in_window = sender.send("2000 missing before me")
    assert last_in_window["index"] == MAX_SKIP
    assert read(bob, alice, last_in_window) == "2000 missing before me"
    beyond = sender.send("one too far")
    with pytest.raises(TooFarAhead, match="at most 2000"):
        read(carol, alice, beyond)
    assert carol.state(CHANNEL, 0, alice.device_id) == (chain_key, 0)  # nothing moved


def test_a_state_sealed_at_three_cannot_open_index_two(alice: DeviceKeys) -> None:
    sender = Sender(alice)
    early = [sender.send(f"avant {i}") for i in range(3)]
    late = receiver_of(sender)  # joins now: the state at index 3
    assert late.state(CHANNEL, 0, alice.device_id) == (sender.state()[0], 3)
    after = sender.send("après")
    for stored in early:
        with pytest.raises(KeyUnavailable, match="before it joined"):
            read(late, alice, stored)
    assert read(late, alice, after) == "après"


def test_an_envelope_shown_once_even_when_the_server_replays_it(alice: DeviceKeys) -> None:
    sender = Sender(alice)
    bob = receiver_of(sender)
    first, second = sender.send("payez la facture"), sender.send("suite")
    assert read(bob, alice, first) == "payez la facture"
    with pytest.raises(ReplayedMessage, match="seq 1"):
        read(bob, alice, {**first, "seq": 9})  # the same envelope re-sent with a new seq
    assert read(bob, alice, second) == "suite"
    with pytest.raises(ReplayedMessage):
        read(bob, alice, {**first, "seq": 10})  # an old one re-inserted later
    assert read(bob, alice, first) == "payez la facture"  # its own seq still reads (history)


def test_a_message_id_used_at_two_indexes_shows_once(alice: DeviceKeys) -> None:
    sender = Sender(alice)
    bob = receiver_of(sender)
    first = sender.send("une fois")
    message_id = first["message_id"]
    index, key = sender.ring.next_key(CHANNEL, 0, message_id, NOW)
    twin = seal_message(
        alice,
        key,
        index=index,
        channel_id=CHANNEL,
        epoch=0,
        message_id=message_id,
        content={"type": "text", "text": "une fois"},
        sent_at_ms=1,
    ).model_dump(mode="json")
    assert read(bob, alice, first) == "une fois"
    with pytest.raises(ReplayedMessage, match="id"):
        read(bob, alice, {**twin, "seq": 7, "expires_at": NOW + DAY})


def test_a_message_that_does_not_open_moves_nothing(alice: DeviceKeys) -> None:
    sender = Sender(alice)
    bob = receiver_of(sender)
    stored = sender.send("intact")
    state = bob.state(CHANNEL, 0, alice.device_id)
    tampered = {**stored, "sent_at": 5}
    with pytest.raises(CryptoError):
        read(bob, alice, tampered)
    assert bob.state(CHANNEL, 0, alice.device_id) == state
    assert read(bob, alice, stored) == "intact"


def _derivable(ring_json: str, steps: int = MAX_SKIP, *, kept: bool = True) -> set[bytes]:
    """Every message key someone holding this saved ring could get, as far as the window goes."""
    keys: set[bytes] = set()
    for chain in json.loads(ring_json)["chains"]:
        if kept:
            keys |= {b64d(k["key"]) for k in chain["keys"]}
        if chain["chain_key"] is not None:
            state = b64d(chain["chain_key"])
            for _ in range(steps):
                keys.add(message_key(state))
                state = next_chain(state)
    return keys


def _fails(stored: dict[str, Any], key: bytes, alice: DeviceKeys) -> bool:
    try:
        open_message(stored, key, alice.sign_public_key)
    except CryptoError:
        return True
    return False


def test_the_saved_ring_cannot_derive_an_expired_messages_key(alice: DeviceKeys, tmp_path: Path) -> None:
    sender = Sender(alice)
    bob = receiver_of(sender)
    short = [sender.send(f"court {i}", expires_at=NOW + DAY) for i in range(4)]
    long = [sender.send(f"long {i}", expires_at=NOW + 30 * DAY) for i in range(3)]
    read(bob, alice, short[0])
    read(bob, alice, short[2])  # short[1] skipped: its key kept until the later one expires
    read(bob, alice, long[1])  # short[3] and long[0] skipped
    read(bob, alice, long[2])
    expired = short[:3]  # short[1] skipped by short[2]: kept only as long as short[2]
    for ring in (bob, sender.ring):
        ring.forget(NOW + 2 * DAY)
        path = tmp_path / "ring.json"
        ring.save(path)
        derivable = _derivable(path.read_text())
        for stored in expired:
            for key in derivable:
                with pytest.raises(CryptoError):
                    open_message(stored, key, alice.sign_public_key)
        # short[3] was skipped over when long[1] came: its key (never its chain state) is kept
        # as long as long[1]'s, since a message sent before another expires no later
        assert all(_fails(short[3], key, alice) for key in _derivable(path.read_text(), kept=False))
        assert read(ring, alice, long[2], own=ring is sender.ring) == "long 2"  # still readable
        with pytest.raises(KeyUnavailable, match="forgotten"):
            read(ring, alice, short[2], own=ring is sender.ring)


def test_past_epochs_retire_and_their_sealed_state_is_not_taken_again(alice: DeviceKeys) -> None:
    sender = Sender(alice)
    bob = receiver_of(sender)
    read(bob, alice, sender.send("époque 0", expires_at=NOW + DAY))
    bob.forget(NOW + 2 * DAY, {CHANNEL: 0})
    assert bob.state(CHANNEL, 0, alice.device_id) is not None  # the current epoch keeps its frontier
    bob.forget(NOW + 2 * DAY, {CHANNEL: 1})
    retired = bob.state(CHANNEL, 0, alice.device_id)
    assert retired is not None and retired[0] is None
    assert bob.holds(CHANNEL, 0, alice.device_id)
    assert not bob.add_received(CHANNEL, 0, alice.device_id, *sender.state())  # the stored sealed key
    copy = SenderKeyRing.from_json(bob.to_json())
    assert copy.holds(CHANNEL, 0, alice.device_id)
    copy.forget(NOW + 6 * 366 * DAY)
    assert not copy.holds(CHANNEL, 0, alice.device_id)  # tombstones go after the longest retention


def test_unconfirmed_own_keys_go_after_a_week(alice: DeviceKeys) -> None:
    ring = SenderKeyRing()
    index, _ = ring.next_key(CHANNEL, 0, new_message_id(), NOW)  # the send failed: never confirmed
    ring.forget(NOW + UNCONFIRMED_TTL - 1)
    assert index in json.loads(ring.to_json())["chains"][0]["keys"][0].values()
    ring.forget(NOW + UNCONFIRMED_TTL)
    assert json.loads(ring.to_json())["chains"][0]["keys"] == []


def test_the_first_state_received_wins() -> None:
    ring = SenderKeyRing()
    assert ring.add_received(CHANNEL, 0, "d_bob", bytes(32), 5)
    assert not ring.add_received(CHANNEL, 0, "d_bob", bytes([1]) * 32, 2)  # would undo forgetting
    assert ring.state(CHANNEL, 0, "d_bob") == (bytes(32), 5)
    for bad in ((b"short", 0), (bytes(32), -1), (bytes(32), True)):
        with pytest.raises(ValueError):
            ring.add_received(CHANNEL, 1, "d_bob", *bad)


def test_ring_distribution_json_round_trip_and_private_file(alice: DeviceKeys, tmp_path: Path) -> None:
    sender = Sender(alice)
    bob = receiver_of(sender)
    stored = sender.send("persisté")
    read(bob, alice, stored)
    sender.ring.mark_distributed(CHANNEL, 0, ["d_bob", "d_carol"])
    for ring in (sender.ring, bob):
        copy = SenderKeyRing.from_json(ring.to_json())
        assert copy.to_json() == ring.to_json()
    copy = SenderKeyRing.from_json(bob.to_json())
    with pytest.raises(ReplayedMessage):  # what was shown is remembered across restarts
        read(copy, alice, {**stored, "seq": 2})
    assert SenderKeyRing.from_json(sender.ring.to_json()).undistributed(CHANNEL, 0, ["d_bob", "d_dan"]) == [
        "d_dan"
    ]
    path = tmp_path / "profile" / "keyring.json"
    bob.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SenderKeyRing.load(path).to_json() == bob.to_json()
    path.chmod(0o644)
    with pytest.raises(PermissionError):
        SenderKeyRing.load(path)
    assert SenderKeyRing.load(tmp_path / "absent.json").to_json() == SenderKeyRing().to_json()


@pytest.mark.parametrize(
    "text",
    ["[]", '{"v": 1, "own": [], "received": [], "distributed": []}', '{"v": 2}', '{"v": 2, "chains": [{}]}'],
)
def test_ring_rejects_malformed_or_version_1_json(text: str) -> None:
    with pytest.raises(ValueError):
        SenderKeyRing.from_json(text)


def test_the_protocol_vectors_reproduce() -> None:
    """docs/protocol.md, appendix: the ratchet, a v2 envelope and a sealed chain state."""
    from nacl.public import Box, PrivateKey
    from nacl.secret import SecretBox
    from nacl.signing import SigningKey

    from bocage.client.crypto import pad
    from chalicelib.domain.envelope import Envelope
    from chalicelib.domain.ids import device_id_for

    chain = bytes([7]) * 32
    assert [b64e(message_key(advance(chain, i))) for i in (0, 3)] == [
        "PYsvoqJTf9zdpG5wSWahBXItJo0untQ7vlsd2daAKTU",
        "khAuGAT0K3hv_iOr2HnMgxTh7f3qjmEYGZIyZ2sAOqo",
    ]
    assert b64e(advance(chain, 3)) == "ze_NhRF26DiBR9eik2KJ37uEeVQ9RTC0ptYN8mUrrOg"
    signing = SigningKey(bytes(range(32)))
    device = device_id_for(bytes(signing.verify_key))
    sealed = b'{"content":{"text":"Bonjour","type":"text"},"kind":"message","target":null}'
    encrypted = SecretBox(message_key(advance(chain, 3))).encrypt(pad(sealed), bytes([9]) * 24)
    envelope = Envelope(
        channel_id="c_aaaaaaaaaaaaaaaa",
        message_id="bWVzc2FnZS0wMDAwMDAx",
        sender_device=device,
        epoch=3,
        index=3,
        sent_at=1767225600123,
        nonce=b64e(encrypted.nonce),
        ciphertext=b64e(encrypted.ciphertext),
        signature=b64e(bytes(64)),
    )
    assert envelope.ciphertext.startswith("AXQGl1r71VrGaDwwlksxwAjjeZleAwv4CNJT1W9KDyhaP_TxIUPLDhXXe02SLjxAh")
    assert envelope.ciphertext.endswith("jCwToYEjcruy0ds")
    signature = b64e(signing.sign(envelope.signing_bytes()).signature)
    assert (
        signature == "qzljVSFbKdwfq8eiwmu97k6SoHoZ_ly3-hF15maOESCEFu6PAtmT1Alz4C9IdFOhFPbaE3WQKkddTvbqrrNfAg"
    )
    signed = envelope.model_dump(mode="json") | {"signature": signature}
    assert open_message(signed, message_key(advance(chain, 3)), b64e(bytes(signing.verify_key))) == {
        "text": "Bonjour",
        "type": "text",
    }

    recipient_box = PrivateKey(bytes(range(64, 96)))
    recipient = device_id_for(bytes(SigningKey(bytes(range(96, 128))).verify_key))
    payload = (
        '{"chain_key":"ze_NhRF26DiBR9eik2KJ37uEeVQ9RTC0ptYN8mUrrOg","channel_id":"c_aaaaaaaaaaaaaaaa",'
        '"epoch":3,"index":3,"purpose":"bocage/sender-key/v2","recipient_device":"' + recipient + '",'
        '"sender_device":"' + device + '"}'
    ).encode()
    boxed = Box(PrivateKey(bytes(range(32, 64))), recipient_box.public_key).encrypt(payload, bytes([5]) * 24)
    assert b64e(bytes(boxed)).endswith("aOEcmN1fF2cGX3o")
    assert b64e(bytes(boxed)).startswith("BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFjYs_nufK7SwFkFwVidkBAdL8O9iyPirx")


def test_a_new_follower_is_sealed_the_chain_at_the_windows_first_message(tmp_path: Path) -> None:
    """Section 23: one snapshot per UTC day of sending; the earliest inside the window is what a
    new follower gets, it survives a restart, and closing the window forgets every snapshot."""
    ring, start = SenderKeyRing(), NOW - NOW % DAY
    ring.set_window(CHANNEL, 7, issued_at=start, now=start)
    at = {}
    for day in range(12):
        for n in range(3):
            at[(day, n)] = ring.own_state(CHANNEL, 0)
            index, _ = ring.next_key(CHANNEL, 0, f"m{day}-{n}", start + day * DAY + 3600 * (n + 1))
            ring.confirm(CHANNEL, 0, index, seq=index + 1, expires_at=start + 400 * DAY)
    today = start + 11 * DAY + 7200
    assert ring.history_state(CHANNEL, 0, today) == at[(4, 0)]  # 00:00 UTC seven days before today
    ring.forget(today)
    ring.save(tmp_path / "ring.json")
    again = SenderKeyRing.load(tmp_path / "ring.json")
    assert again.history_state(CHANNEL, 0, today) == at[(4, 0)]
    assert len(json.loads((tmp_path / "ring.json").read_text())["snapshots"]) == 8  # days 4 to 11
    assert again.history_state(CHANNEL, 1, today) == again.own_state(CHANNEL, 1)  # another epoch: now
    again.set_window(CHANNEL, 0, issued_at=start + 1, now=today)
    assert json.loads(again.to_json())["snapshots"] == []
    assert again.history_state(CHANNEL, 0, today) == again.own_state(CHANNEL, 0)
    again.set_window(CHANNEL, 30, issued_at=start, now=today)  # older than the kept choice: a replay
    assert again.window(CHANNEL) is not None and again.window(CHANNEL).days == 0  # type: ignore[union-attr]


def test_a_snapshot_goes_with_the_first_message_it_derives_that_expires(
    alice: DeviceKeys, tmp_path: Path
) -> None:
    sender = Sender(alice)
    sender.ring.set_window(CHANNEL, 30, issued_at=NOW, now=NOW)
    short = sender.send("court", expires_at=NOW + DAY)
    sender.send("long", expires_at=NOW + 30 * DAY)
    assert sender.ring.history_state(CHANNEL, 0, NOW + 1)[1] == 0  # both messages, from the first
    sender.ring.forget(NOW + 2 * DAY)
    path = tmp_path / "ring.json"
    sender.ring.save(path)
    snapshots = [b64d(s["chain_key"]) for s in json.loads(path.read_text())["snapshots"]]
    assert snapshots == []  # it derived the expired message's key: gone with it
    assert sender.ring.history_state(CHANNEL, 0, NOW + 2 * DAY) == sender.state()
    assert all(_fails(short, key, alice) for key in _derivable(path.read_text()))


def test_a_snapshot_deriving_an_expired_message_is_not_sealed_even_before_forget(alice: DeviceKeys) -> None:
    """A follower arriving after a message expired but before the device's next clean-up gets
    no state that derives that message's key (a server may have kept its ciphertext)."""
    sender = Sender(alice)
    sender.ring.set_window(CHANNEL, 30, issued_at=NOW, now=NOW)
    sender.send("court", expires_at=NOW + DAY)
    sender.send("long", expires_at=NOW + 30 * DAY)
    assert sender.ring.history_state(CHANNEL, 0, NOW + 1)[1] == 0
    assert sender.ring.history_state(CHANNEL, 0, NOW + 2 * DAY) == sender.state()  # no forget() between


def test_a_window_further_than_the_skip_limit_starts_where_a_reader_can_still_catch_up() -> None:
    ring, start = SenderKeyRing(), NOW - NOW % DAY
    ring.set_window(CHANNEL, 7, issued_at=start, now=start)
    for i in range(10):
        ring.next_key(CHANNEL, 0, f"a{i}", start + 60)
    second_day = ring.own_state(CHANNEL, 0)
    for i in range(MAX_SKIP):
        ring.next_key(CHANNEL, 0, f"b{i}", start + DAY + 60)
    assert ring.own_state(CHANNEL, 0)[1] == 10 + MAX_SKIP
    assert ring.history_state(CHANNEL, 0, start + DAY + 120) == second_day  # day 0 is too far back
