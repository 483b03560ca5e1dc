"""The web app's wire code (web/js/wire.js, ratchet.js, polls.js) against the Python implementation,
under node.

Every format both clients produce is made by one side and checked by the other: request tokens,
device ids, activation proofs, envelope signing bytes, sealed messages and sealed chain states,
the ratchet, label checks, small-order keys, padding and poll tallies. No browser needed, so an
incompatibility shows in seconds.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
from nacl.public import Box, PublicKey
from nacl.signing import SigningKey, VerifyKey

from bocage.client.crypto import (
    CryptoError,
    ForgedMessage,
    new_message_id,
    open_message,
    open_sender_key,
    pad,
    seal_message,
    seal_sender_key,
)
from bocage.client.issuing import follower_cert
from bocage.client.polls import new_poll, tally
from bocage.client.profile import DeviceKeys, sign_token
from bocage.client.questions import open_box, seal
from bocage.client.ratchet import (
    MAX_SKIP,
    KeyUnavailable,
    SenderKeyRing,
    advance,
    message_key,
    new_chain_key,
    next_chain,
)
from chalicelib.domain.activation_link import activation_url, parse_activation
from chalicelib.domain.auth_token import Claims, decode_token, request_digest
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.envelope import Envelope, signing_bytes
from chalicelib.domain.followers import JoinTarget, join_proof_message
from chalicelib.domain.ids import device_id_for
from chalicelib.domain.invitation import activation_proof_message, new_code
from chalicelib.domain.questions import ANSWER_PURPOSE, QUESTION_PURPOSE
from tests.wire_js import ROOT, js, run_js, spec


def test_canonical_json_matches_python() -> None:
    value = {
        "z": [1, {"b": None, "a": True}],
        "é": "ça « va » \n\t\u0001\u007f 👍 \u2028",
        "a": -12,
        "m": "",
    }
    ascii_js, utf8_js = run_js(
        {"op": "canonical", "value": value, "ascii": True},
        {"op": "canonical", "value": value, "ascii": False},
    )
    assert ascii_js == json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert utf8_js == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_request_digest_and_token_match_python_both_ways() -> None:
    key = SigningKey.generate()
    subject = device_id_for(bytes(key.verify_key))
    body = json.dumps({"text": "héllo wörld", "n": 1}).encode()
    query = {"since": "12", "limit": "100", "cursor": "a b+c/d=é!*'()~"}
    digest = js("digest", method="post", path="/channels/c_x/messages", query=query, body=b64e(body))
    assert digest == request_digest("POST", "/channels/c_x/messages", query, body)

    nonce = b64e(secrets.token_bytes(16))
    token = js(
        "token",
        sign_seed=b64e(bytes(key)),
        subject=subject,
        method="GET",
        path="/channels/c_x/messages",
        query=query,
        body=b64e(body),
        now=1_800_000_000,
        nonce=nonce,
    )
    claims, signed, signature = decode_token(token)
    VerifyKey(bytes(key.verify_key)).verify(signed, signature)  # the server's check
    assert claims == Claims(
        subject,
        1_800_000_000,
        1_800_000_120,
        nonce,
        request_digest("GET", "/channels/c_x/messages", query, body),
    )
    expected = Claims(subject, 1_800_000_000, 1_800_000_120, nonce, claims.digest).to_bytes()
    assert signed == expected  # byte for byte what Python signs
    # Python's token for the WebSocket $connect, as the browser signs it: same digest.
    python_token = sign_token(key, subject, "GET", "$connect", None, b"", now=1_800_000_000)
    js_connect = js(
        "token",
        sign_seed=b64e(bytes(key)),
        subject=subject,
        method="GET",
        path="$connect",
        query={},
        body="",
        now=1_800_000_000,
        nonce=decode_token(python_token)[0].nonce,
    )
    assert js_connect.split(".")[0] == python_token.split(".")[0]


def test_device_id_public_keys_and_activation_proof() -> None:
    keys = DeviceKeys.generate()
    ids = run_js(
        *(
            {"op": "device_id", "sign_public_key": b64e(bytes(DeviceKeys.generate().signing.verify_key))}
            for _ in range(3)
        )
    )
    assert all(i.startswith("d_") and len(i) == 18 for i in ids)
    assert js("device_id", sign_public_key=keys.sign_public_key) == keys.device_id
    public = js("public_keys", sign_seed=b64e(bytes(keys.signing)), box_secret=b64e(bytes(keys.box)))
    assert public == {"sign_public_key": keys.sign_public_key, "box_public_key": keys.box_public_key}

    code = new_code()
    typed = " " + code.lower().replace("-", " ") + " "  # retyped by a person: still the same code
    proof = js("proof", code=typed, sign_seed=b64e(bytes(keys.signing)), box_public_key=keys.box_public_key)
    assert b64d(proof["message"]) == activation_proof_message(code, keys.box_public_key)
    keys.signing.verify_key.verify(
        activation_proof_message(code, keys.box_public_key), b64d(proof["signature"])
    )


def test_activation_link_parsing_matches_python() -> None:
    code = new_code()
    url = activation_url("https://app.example.org/app", "https://api.example.org/", code)
    parsed = js("parse_activation", text=url)
    python = parse_activation(url)
    assert parsed == {"code": python.code, "server": python.server}
    assert js("parse_activation", text=code) == {"code": code, "server": None}


def test_envelope_signing_bytes_match_python() -> None:
    keys = DeviceKeys.generate()
    sender_key = secrets.token_bytes(32)
    for kind, target in (("message", None), ("delete", "m" * 22)):
        content = {"type": "text", "text": "x"} if kind == "message" else {"type": "delete", "target": target}
        envelope = seal_message(
            keys,
            sender_key,
            index=11,
            channel_id="c_abcdefghijklmnop",
            epoch=3,
            message_id="M" * 22,
            content=content,
            kind=kind,
            target=target,
            sent_at_ms=1_800_000_000_123,
        )
        stored = {
            **envelope.model_dump(mode="json"),
            "seq": 4,
            "stored_at": 1,
            "expires_at": 2,
            "sender_member": "m_x",
        }
        assert b64d(js("signing_bytes", envelope=stored)) == envelope.signing_bytes()
        del stored["target"], stored["v"]  # defaults the model fills in are signed too
        if target is None:
            assert b64d(js("signing_bytes", envelope=stored)) == signing_bytes(
                envelope.model_dump(mode="json")
            )


@pytest.mark.parametrize("text", ["Coupure d'eau mardi 9h", "é" * 300, "👍🌳 " * 40, ""])
def test_messages_sealed_by_js_open_in_python_and_back(text: str) -> None:
    alice = DeviceKeys.generate()
    sender_key = secrets.token_bytes(32)
    content = {"type": "text", "text": text, "reply_to": "r" * 22}
    fields = {
        "channel_id": "c_abcdefghijklmnop",
        "epoch": 2,
        "index": 5,
        "message_id": b64e(secrets.token_bytes(16)),
        "content": content,
        "kind": "message",
        "sent_at": 1_800_000_000_000,
    }
    envelope = js("seal_message", sender=spec(alice), key=b64e(sender_key), fields=fields)
    parsed = Envelope.model_validate(envelope)  # the server's validation
    assert len(b64d(parsed.ciphertext)) % 256 == 16  # padded to 256-byte blocks, plus the MAC
    assert open_message(envelope, sender_key, alice.sign_public_key) == content

    close = {"type": "close", "poll_id": "t" * 22}
    python_env = seal_message(
        alice,
        sender_key,
        index=7,
        channel_id="c_abcdefghijklmnop",
        epoch=2,
        message_id="P" * 22,
        content=close,
        sent_at_ms=1,
        kind="poll_close",
        target="t" * 22,
    ).model_dump(mode="json")
    opened = js(
        "open_message",
        envelope={**python_env, "seq": 9},
        key=b64e(sender_key),
        sign_public_key=alice.sign_public_key,
    )
    assert opened == {"content": close}

    tampered = {**python_env, "index": 8}
    forged = js(
        "open_message", envelope=tampered, key=b64e(sender_key), sign_public_key=alice.sign_public_key
    )
    assert forged == {"error": "ForgedMessage"}
    impostor = DeviceKeys.generate()
    wrong_key = js(
        "open_message", envelope=python_env, key=b64e(sender_key), sign_public_key=impostor.sign_public_key
    )
    assert wrong_key == {"error": "ForgedMessage"}
    other_key = js(
        "open_message",
        envelope=python_env,
        key=b64e(secrets.token_bytes(32)),
        sign_public_key=alice.sign_public_key,
    )
    assert other_key == {"error": "CryptoError"}
    with pytest.raises(ForgedMessage):
        open_message({**envelope, "kind": "reaction"}, sender_key, alice.sign_public_key)
    old = {**python_env, "v": 1}  # a version 1 envelope is not read
    assert js("open_message", envelope=old, key=b64e(sender_key), sign_public_key=alice.sign_public_key) == {
        "error": "CryptoError"
    }
    # Dates and epochs out of the Envelope's bounds, signed by the sender itself: refused by both
    # clients (a date the web took as -5 would pass a revocation check, one as a string close a poll).
    for field, bad in [
        ("sent_at", 2**50),
        ("sent_at", -5),
        ("sent_at", "1800000000000"),
        ("sent_at", 1.5),
        ("epoch", 2**40),
    ]:
        resigned = {**python_env, field: bad}
        resigned["signature"] = b64e(alice.signing.sign(signing_bytes(resigned)).signature)
        with pytest.raises((CryptoError, ForgedMessage)):
            open_message(resigned, sender_key, alice.sign_public_key)
        refused = js(
            "open_message", envelope=resigned, key=b64e(sender_key), sign_public_key=alice.sign_public_key
        )
        assert refused == {"error": "CryptoError"}, (field, bad)


def test_signatures_verify_as_strictly_as_libsodium() -> None:
    """The web client verifies with WebCrypto where it can: same answers as PyNaCl (libsodium)."""
    import nacl.exceptions

    key = SigningKey.generate()
    message = b"bocage envelope"
    signature = key.sign(message).signature
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + order).to_bytes(32, "little")  # the same S, not reduced
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    cases = [(message, signature), (message + b"!", signature), (message, malleated), (message, flipped)]
    answers = run_js(
        *(
            {
                "op": "verify",
                "message": b64e(m),
                "signature": b64e(sig),
                "public_key": b64e(bytes(key.verify_key)),
            }
            for m, sig in cases
        )
    )
    for (m, sig), answer in zip(cases, answers, strict=True):
        try:
            key.verify_key.verify(m, sig)
            expected = True
        except nacl.exceptions.BadSignatureError:
            expected = False
        assert answer is expected
    assert answers == [True, False, False, False]


def test_padding_is_identical() -> None:
    for size in (0, 1, 255, 256, 600):
        data = secrets.token_bytes(size)
        assert b64d(js("pad", data=b64e(data))) == pad(data)


def test_sender_keys_sealed_by_js_open_in_python_and_back() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    chain_key = new_chain_key()
    channel = "c_abcdefghijklmnop"
    sealed = js(
        "seal_sender_key",
        sender=spec(alice),
        recipient_device=bob.device_id,
        recipient_box_public_key=bob.box_public_key,
        channel_id=channel,
        epoch=5,
        chain_key=b64e(chain_key),
        index=3,
    )
    assert sealed["sender_device"] == alice.device_id and sealed["epoch"] == 5
    assert open_sender_key(bob, sealed, alice.box_public_key, channel) == (chain_key, 3)
    with pytest.raises(CryptoError):
        open_sender_key(bob, sealed, alice.box_public_key, "c_otherchannelxxxx")

    from_python = seal_sender_key(alice, bob.device_id, bob.box_public_key, channel, 7, chain_key, 12)
    assert js(
        "open_sender_key",
        recipient=spec(bob),
        sealed=from_python,
        sender_box_public_key=alice.box_public_key,
        channel_id=channel,
    ) == {"chain_key": b64e(chain_key), "index": 12}
    replayed = {**from_python, "epoch": 8}  # routing fields rewritten: the sealed payload disagrees
    assert js(
        "open_sender_key",
        recipient=spec(bob),
        sealed=replayed,
        sender_box_public_key=alice.box_public_key,
        channel_id=channel,
    ) == {"error": "CryptoError"}
    # The raw box layout: 24-byte nonce, then NaCl's box, as PyNaCl's Box.encrypt writes it.
    raw = b64d(sealed["sealed"])
    payload = json.loads(Box(bob.box, PublicKey(b64d(alice.box_public_key))).decrypt(raw[24:], raw[:24]))
    assert payload == {
        "purpose": "bocage/sender-key/v2",
        "channel_id": channel,
        "epoch": 5,
        "sender_device": alice.device_id,
        "recipient_device": bob.device_id,
        "chain_key": b64e(chain_key),
        "index": 3,
    }


# --- the ratchet, both ways ----------------------------------------------------------------------

CHANNEL = "c_abcdefghijklmnop"
NOW = 1_800_000_000


def _stored(
    envelopes: list[dict[str, Any]], *, first_seq: int = 1, expires_at: int = NOW + 86400
) -> list[dict[str, Any]]:
    """Envelopes as the server returns them: seq, stored_at and expires_at added."""
    return [
        {**env, "seq": first_seq + i, "stored_at": NOW, "expires_at": expires_at, "sender_member": "m_x"}
        for i, env in enumerate(envelopes)
    ]


def _python_send(sender: DeviceKeys, chain_key: bytes, texts: list[str]) -> list[dict[str, Any]]:
    """Messages 0, 1, ... of a chain, sealed by the Python client."""
    return [
        seal_message(
            sender,
            message_key(advance(chain_key, index)),
            index=index,
            channel_id=CHANNEL,
            epoch=0,
            message_id=new_message_id(),
            content={"type": "text", "text": text},
            sent_at_ms=NOW * 1000,
        ).model_dump(mode="json")
        for index, text in enumerate(texts)
    ]


def _python_open(reader: SenderKeyRing, sender: DeviceKeys, stored: dict[str, Any]) -> dict[str, Any]:
    return reader.open_with(
        CHANNEL,
        0,
        stored["sender_device"],
        stored["index"],
        seq=stored["seq"],
        message_id=stored["message_id"],
        expires_at=stored["expires_at"],
        opener=lambda key: open_message(stored, key, sender.sign_public_key),
    )


def test_the_chain_is_the_same_in_js() -> None:
    chain_key = new_chain_key()
    derived = js("chain", chain_key=b64e(chain_key), steps=12)
    assert derived["message_keys"] == [b64e(message_key(advance(chain_key, i))) for i in range(12)]
    assert derived["chain_key"] == b64e(advance(chain_key, 12))
    vector = js("chain", chain_key=b64e(bytes([7]) * 32), steps=6)["message_keys"][5]
    assert vector == b64e(message_key(advance(bytes([7]) * 32, 5)))  # docs/protocol.md, section 6


def test_a_js_senders_message_at_index_five_opens_in_python_and_back() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    chain_key = new_chain_key()
    texts = [f"message {i} ✉" for i in range(6)]
    from_js = _stored(
        js(
            "ratchet_send",
            sender=spec(alice),
            chain_key=b64e(chain_key),
            index=0,
            channel_id=CHANNEL,
            epoch=0,
            messages=[{"content": {"type": "text", "text": t}} for t in texts],
            now=NOW,
        )
    )
    assert [m["index"] for m in from_js] == list(range(6))
    reader = SenderKeyRing()
    reader.add_received(CHANNEL, 0, alice.device_id, chain_key, 0)
    assert _python_open(reader, alice, from_js[5])["text"] == texts[5]  # 0 to 4 missing: skipped
    assert [_python_open(reader, alice, m)["text"] for m in from_js[:5]] == texts[:5]  # then late

    from_python = _stored(_python_send(bob, chain_key, texts))
    sealed = seal_sender_key(bob, alice.device_id, alice.box_public_key, CHANNEL, 0, chain_key, 0)
    opened = js(
        "ratchet_open",
        recipient=spec(alice),
        sealed=[sealed],
        sender_box_public_key=bob.box_public_key,
        sender_sign_public_key=bob.sign_public_key,
        channel_id=CHANNEL,
        messages=[from_python[5], *from_python[:5]],
    )
    assert [r["content"]["text"] for r in opened["results"]] == [texts[5], *texts[:5]]


def test_a_state_sealed_at_index_three_cannot_open_index_two_either_way() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    chain_key = new_chain_key()
    messages = _stored(_python_send(alice, chain_key, ["zéro", "un", "deux", "trois", "quatre"]))
    at_three = advance(chain_key, 3)
    # Python seals the state at 3; the JS reader cannot go back to 2 and reads 3 and 4.
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, at_three, 3)
    opened = js(
        "ratchet_open",
        recipient=spec(bob),
        sealed=[sealed],
        sender_box_public_key=alice.box_public_key,
        sender_sign_public_key=alice.sign_public_key,
        channel_id=CHANNEL,
        messages=messages,
    )["results"]
    assert [r.get("error") for r in opened[:3]] == ["KeyUnavailable"] * 3
    assert [r["content"]["text"] for r in opened[3:]] == ["trois", "quatre"]
    # JS seals the state at 3; the Python reader likewise.
    sealed_js = js(
        "seal_sender_key",
        sender=spec(alice),
        recipient_device=bob.device_id,
        recipient_box_public_key=bob.box_public_key,
        channel_id=CHANNEL,
        epoch=0,
        chain_key=b64e(at_three),
        index=3,
    )
    reader = SenderKeyRing()
    reader.add_received(
        CHANNEL, 0, alice.device_id, *open_sender_key(bob, sealed_js, alice.box_public_key, CHANNEL)
    )
    with pytest.raises(KeyUnavailable):
        _python_open(reader, alice, messages[2])
    assert _python_open(reader, alice, messages[3])["text"] == "trois"


def test_the_js_window_is_two_thousand_and_replays_show_once() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    chain_key = new_chain_key()

    def at(index: int, text: str, seq: int) -> dict[str, Any]:
        envelope = seal_message(
            alice,
            message_key(advance(chain_key, index)),
            index=index,
            channel_id=CHANNEL,
            epoch=0,
            message_id=new_message_id(),
            content={"type": "text", "text": text},
            sent_at_ms=1,
        ).model_dump(mode="json")
        return _stored([envelope], first_seq=seq)[0]

    first, edge, beyond = (
        at(0, "premier", 1),
        at(MAX_SKIP + 1, "au bord", 2),
        at(2 * MAX_SKIP + 3, "trop loin", 3),
    )
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, chain_key, 0)
    results = js(
        "ratchet_open",
        recipient=spec(bob),
        sealed=[sealed],
        sender_box_public_key=alice.box_public_key,
        sender_sign_public_key=alice.sign_public_key,
        channel_id=CHANNEL,
        messages=[first, edge, beyond, {**first, "seq": 9}, first],
    )["results"]
    assert results[0]["content"]["text"] == "premier"
    assert results[1]["content"]["text"] == "au bord"  # 2,000 missing in between
    assert results[2]["error"] == "TooFarAhead" and "at most 2000" in results[2]["message"]
    assert results[3]["error"] == "ReplayedMessage" and "seq 1" in results[3]["message"]
    assert results[4]["content"]["text"] == "premier"  # the same message read again


def test_the_js_ring_forgets_what_expired() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    chain_key = new_chain_key()
    envelopes = _python_send(alice, chain_key, [f"m{i}" for i in range(5)])
    short = _stored(envelopes[:3], expires_at=NOW + 86400)
    long = _stored(envelopes[3:], first_seq=4, expires_at=NOW + 30 * 86400)
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, chain_key, 0)
    kept = js(
        "ratchet_open",
        recipient=spec(bob),
        sealed=[sealed],
        sender_box_public_key=alice.box_public_key,
        sender_sign_public_key=alice.sign_public_key,
        channel_id=CHANNEL,
        messages=[short[0], short[2], *long],
        forget_at=NOW + 2 * 86400,
    )
    assert all("content" in r for r in kept["results"])
    (chain,) = kept["chains"]
    assert chain["index"] == 5 and sorted(k["index"] for k in chain["keys"]) == [3, 4]
    derivable = {b64d(k["key"]) for k in chain["keys"]}
    state = b64d(chain["chain_key"])
    for _ in range(MAX_SKIP):
        derivable.add(message_key(state))
        state = next_chain(state)
    for expired in short:
        for key in derivable:
            with pytest.raises(CryptoError):
                open_message(expired, key, alice.sign_public_key)


def test_mislabelled_messages_are_refused_by_js() -> None:
    from nacl.secret import SecretBox

    from chalicelib.domain.envelope import Envelope

    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    chain_key = new_chain_key()
    poll, other = "P" * 22, "Q" * 22

    def lying(kind: str, target: str | None, sealed: dict[str, Any], seq: int) -> dict[str, Any]:
        key = message_key(advance(chain_key, seq - 1))
        encrypted = SecretBox(key).encrypt(pad(json.dumps(sealed).encode()))
        unsigned = Envelope.model_validate(
            {
                "channel_id": CHANNEL,
                "message_id": new_message_id(),
                "sender_device": alice.device_id,
                "epoch": 0,
                "index": seq - 1,
                "kind": kind,
                "target": target,
                "sent_at": 1,
                "nonce": b64e(encrypted.nonce),
                "ciphertext": b64e(encrypted.ciphertext),
                "signature": b64e(bytes(64)),
            }
        )
        signature = b64e(alice.signing.sign(unsigned.signing_bytes()).signature)
        return _stored([{**unsigned.model_dump(mode="json"), "signature": signature}], first_seq=seq)[0]

    text = {"type": "text", "text": "un post"}
    messages = [
        lying("reaction", None, {"kind": "reaction", "target": None, "content": text}, 1),
        lying(
            "poll_close",
            poll,
            {"kind": "poll_close", "target": poll, "content": {"type": "close", "poll_id": other}},
            2,
        ),
        lying("message", None, text, 3),  # a version 1 content: no labels
        lying(
            "poll_close",
            poll,
            {"kind": "poll_close", "target": poll, "content": {"type": "close", "poll_id": poll}},
            4,
        ),
    ]
    sealed = seal_sender_key(alice, bob.device_id, bob.box_public_key, CHANNEL, 0, chain_key, 0)
    results = js(
        "ratchet_open",
        recipient=spec(bob),
        sealed=[sealed],
        sender_box_public_key=alice.box_public_key,
        sender_sign_public_key=alice.sign_public_key,
        channel_id=CHANNEL,
        messages=messages,
    )["results"]
    assert [r.get("error") for r in results] == ["MislabelledMessage"] * 3 + [None]
    assert results[3]["content"] == {"type": "close", "poll_id": poll}


def test_small_order_keys_are_the_same_in_js() -> None:
    from chalicelib.domain.x25519 import _SMALL_ORDER_U, is_small_order

    p = 2**255 - 19
    samples = [bytes(DeviceKeys.generate().box.public_key) for _ in range(8)]
    for u in _SMALL_ORDER_U:
        samples += [(u | bit).to_bytes(32, "little") for bit in (0, 1 << 255)]
        if u + p < 2**255:
            samples.append((u + p).to_bytes(32, "little"))
    assert js("is_small_order", keys=[b64e(k) for k in samples]) == [is_small_order(k) for k in samples]
    alice = DeviceKeys.generate()
    refused = js(
        "seal_sender_key",
        sender=spec(alice),
        recipient_device="d_ghost",
        recipient_box_public_key=b64e(bytes(32)),
        channel_id=CHANNEL,
        epoch=0,
        chain_key=b64e(new_chain_key()),
        index=0,
    )
    assert refused["error"] == "CryptoError" and "small order" in refused["message"]


def test_poll_tally_and_validation_match_python() -> None:
    poll_id = "P" * 22

    def msg(
        seq: int,
        kind: str,
        member: str,
        content: dict[str, Any],
        *,
        verified: bool = True,
        stored_at: int = 100,
    ) -> dict[str, Any]:
        return {
            "message_id": poll_id if kind == "poll" else f"{kind[:1]}{seq:021d}",
            "seq": seq,
            "kind": kind,
            "sender_member": member,
            "verified": verified,
            "content": content,
            "stored_at": stored_at,
            "sent_at_ms": seq * 100_000,
        }

    poll = new_poll("Aire de jeux ?", ["Oui", "Non", "Ailleurs"], closes_at=10_000)
    messages = [
        msg(1, "vote", "m_a", {"type": "vote", "poll_id": poll_id, "choices": [0]}),  # before the poll
        msg(2, "poll", "m_owner", poll),
        msg(3, "vote", "m_a", {"type": "vote", "poll_id": poll_id, "choices": [0]}),
        msg(4, "vote", "m_b", {"type": "vote", "poll_id": poll_id, "choices": [1]}),
        msg(5, "vote", "m_a", {"type": "vote", "poll_id": poll_id, "choices": [2]}),  # changed their mind
        msg(6, "vote", "m_c", {"type": "vote", "poll_id": poll_id, "choices": [0, 1]}),  # not multiple
        msg(7, "vote", "m_gone", {"type": "vote", "poll_id": poll_id, "choices": [1]}),  # left
        msg(8, "vote", "m_d", {"type": "vote", "poll_id": poll_id, "choices": [1]}, verified=False),
        msg(9, "vote", "m_e", {"type": "vote", "poll_id": poll_id, "choices": [True]}),
        msg(10, "poll_close", "m_owner", {"type": "close", "poll_id": poll_id}),
        msg(11, "vote", "m_b", {"type": "vote", "poll_id": poll_id, "choices": [0]}),  # too late
        msg(12, "vote", "m_f", {"type": "vote", "poll_id": poll_id, "choices": [0]}, stored_at=20_000),
    ]
    members = ["m_owner", "m_a", "m_b", "m_c", "m_d", "m_e", "m_f"]
    for cut in (9, 12):
        expected = tally(messages[:cut], poll_id, set(members), now=5_000)
        assert js("tally", messages=messages[:cut], poll_id=poll_id, members=members, now=5_000) == expected
    assert tally(messages, poll_id, set(members), now=5_000)["counts"] == [0, 1, 1]
    # A public tribe's followers vote too, counted apart per option (section 16), the same on both
    # clients; a follower who changes their vote (one device, so one vote) counts once, as last cast.
    follower, other = "f_" + "a" * 16, "f_" + "b" * 16
    vote = {"type": "vote", "poll_id": poll_id, "choices": [1]}
    with_follower = [
        *messages[:9],
        msg(13, "vote", follower, {**vote, "choices": [0]}),
        msg(14, "vote", other, vote),
        msg(15, "vote", follower, vote),
    ]
    expected = tally(with_follower, poll_id, {*members, follower, other}, now=5_000)
    assert (expected["follower_voters"], expected["voters"]) == (2, 4)
    assert (expected["counts"], expected["follower_counts"]) == ([0, 3, 1], [0, 2, 0])
    assert (
        js("tally", messages=with_follower, poll_id=poll_id, members=[*members, follower, other], now=5_000)
        == expected
    )
    with_follower = with_follower[:-1]  # before the follower changed their mind
    expected = tally(with_follower, poll_id, {*members, follower, other}, now=5_000)
    assert (expected["counts"], expected["follower_counts"]) == ([1, 2, 1], [1, 1, 0])
    assert (
        js("tally", messages=with_follower, poll_id=poll_id, members=[*members, follower, other], now=5_000)
        == expected
    )
    assert all("voter_ids" not in o for o in tally(messages, poll_id, set(members), now=5_000)["options"])

    # A closed poll keeps the votes of those still in when it closed (closed by seq 10, signed at
    # 1,000 s): m_gone left after, so theirs counts; m_x left then, so theirs does not.
    # While the poll is open, only the current members count.
    vote_x = msg(8, "vote", "m_x", {"type": "vote", "poll_id": poll_id, "choices": [0]})
    closed = [*messages[:7], vote_x, *messages[9:10]]
    departed = {"m_gone": 1_001, "m_x": 1_000}
    frozen = tally(closed, poll_id, set(members), now=5_000, departed=departed)
    assert frozen["closed"] is True and frozen["voter_ids"] == ["m_a", "m_b", "m_gone"]
    assert (
        js("tally", messages=closed, poll_id=poll_id, members=members, now=5_000, departed=departed) == frozen
    )
    still_open = tally(closed[:-1], poll_id, set(members), now=5_000, departed=departed)
    assert still_open["closed"] is False and still_open["voter_ids"] == ["m_a", "m_b"]
    assert (
        js("tally", messages=closed[:-1], poll_id=poll_id, members=members, now=5_000, departed=departed)
        == still_open
    )

    # A sender's poll whose closing time is not a number has none, on both clients.
    for odd in ("x", True, None, [1]):
        odd_poll = [
            msg(2, "poll", "m_owner", {**poll, "closes_at": odd}) if m["kind"] == "poll" else m
            for m in messages[:9]
        ]
        expected = tally(odd_poll, poll_id, set(members), now=5_000)
        assert expected["closed"] is False and expected["closes_at"] is None, odd
        assert js("tally", messages=odd_poll, poll_id=poll_id, members=members, now=5_000) == expected, odd

    # Created with show_voters: each option names who chose it, the same on both clients.
    named = new_poll("Aire de jeux ?", ["Oui", "Non", "Ailleurs"], closes_at=10_000, show_voters=True)
    assert (
        js(
            "new_poll",
            question="Aire de jeux ?",
            options=["Oui", "Non", "Ailleurs"],
            multiple=False,
            closes_at=10_000,
            show_voters=True,
        )
        == named
    )
    with_names = [msg(2, "poll", "m_owner", named) if m["kind"] == "poll" else m for m in messages]
    expected = tally(with_names, poll_id, set(members), now=5_000)
    assert js("tally", messages=with_names, poll_id=poll_id, members=members, now=5_000) == expected
    assert expected["show_voters"] is True
    assert [o["voter_ids"] for o in expected["options"]] == [[], ["m_b"], ["m_a"]]

    assert js("new_poll", question=" Q ? ", options=[" a", "b "], multiple=True, closes_at=None) == new_poll(
        " Q ? ", [" a", "b "], multiple=True
    )
    assert js("new_poll", question="Q", options=["a", "a"], multiple=False, closes_at=None) == {
        "error": "options_distinct"
    }


def test_french_and_english_dictionaries_cover_every_string() -> None:
    """Both languages hold the same keys, and every literal key the app uses exists."""
    import re

    dictionaries = js("i18n")
    fr, en = dictionaries["fr"], dictionaries["en"]
    assert sorted(set(fr) ^ set(en)) == []
    assert {k: v for k, v in fr.items() if v != en[k]} == {}  # plural forms match too
    used: set[str] = set()
    for source in (ROOT / "web" / "js").rglob("*.js"):
        used |= set(re.findall(r"\bt\(\s*'([a-z_]+\.[a-z0-9_]+)'", source.read_text()))
        used |= set(re.findall(r"'((?:reaction|poll)\.[a-z0-9_]+)'\]", source.read_text()))
    assert len(used) > 150
    assert sorted(used - set(fr)) == []


def test_follower_certificates_join_proofs_and_question_boxes_match_python() -> None:
    """docs/protocol.md 16.2 and 20.2: the browser's follower certificate is the Python client's,
    byte for byte (Ed25519 signs deterministically); a question sealed by either opens in the
    other, and a box bound to another question opens in neither."""
    keys, seed = DeviceKeys.generate(), secrets.token_bytes(32)
    target = JoinTarget(
        "https://x.invalid", "j_aaaaaaaaaaaaaaaa", "o_bbbbbbbbbbbbbbbb", "c_cccccccccccccccc", seed, "r"
    )
    keys_of = {"sign_public_key": keys.sign_public_key, "box_public_key": keys.box_public_key}
    expected = follower_cert(target, **keys_of, display_name="Léa du moulin", now=1_800_000_000)
    link = {"link": target.link, "org": target.org, "channel": target.channel, "ticket": b64e(seed)}
    made = js(
        "follower_cert",
        link=link,
        sign_seed=b64e(bytes(keys.signing)),
        box_secret=b64e(bytes(keys.box)),
        display_name="Léa du moulin",
        now=1_800_000_000,
    )
    assert made["cert"] == expected
    assert b64d(made["proof_message"]) == join_proof_message(target.link, keys.box_public_key)

    manager, question_id = DeviceKeys.generate(), "q_dddddddddddddddd"
    fields = {"purpose": QUESTION_PURPOSE, "channel_id": target.channel, "question_id": question_id}
    by_js = js(
        "seal_box",
        sender=spec(keys),
        recipient_device=manager.device_id,
        recipient_box=manager.box_public_key,
        fields={**fields, "text": "Où se garer ?"},
    )
    opened = open_box(manager, by_js, keys.device_id, keys.box_public_key, **fields)
    assert opened["text"] == "Où se garer ?"
    with pytest.raises(CryptoError):
        open_box(
            manager,
            by_js,
            keys.device_id,
            keys.box_public_key,
            **{**fields, "question_id": "q_eeeeeeeeeeeeeeee"},
        )
    answer_fields = {**fields, "purpose": ANSWER_PURPOSE}
    by_python = seal(
        manager,
        keys.device_id,
        keys.box_public_key,
        text="Place de l'école.",
        published_message_id=None,
        **answer_fields,
    )
    back = js(
        "open_box",
        recipient=spec(keys),
        sealed=by_python,
        sender_device=manager.device_id,
        sender_box=manager.box_public_key,
        fields=answer_fields,
    )
    assert back["text"] == "Place de l'école." and back["published_message_id"] is None
    elsewhere = {**answer_fields, "channel_id": "c_ffffffffffffffff"}
    assert (
        js(
            "open_box",
            recipient=spec(keys),
            sealed=by_python,
            sender_device=manager.device_id,
            sender_box=manager.box_public_key,
            fields=elsewhere,
        )
        is None
    )


def test_call_signals_are_the_same_bytes_from_both_clients_and_open_on_either() -> None:
    """docs/protocol.md 19.3: with the same nonce, both clients seal an offer to the same bytes;
    each opens the other's, and neither opens one relabelled for another call or signal."""
    from bocage.client.crypto import open_call_signal, seal_call_signal

    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    channel, call = "c_abcdefghijklmnop", "k_abcdefghijklmnop"
    data = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=« appel »\r\n"}
    nonce = secrets.token_bytes(24)
    from_python = seal_call_signal(
        alice, bob.device_id, bob.box_public_key, channel, call, "offer", data, nonce=nonce
    )
    common = {"recipient_box_public_key": bob.box_public_key, "channel_id": channel, "call_id": call}
    from_js = js(
        "seal_call_signal",
        sender=spec(alice),
        recipient_device=bob.device_id,
        signal="offer",
        data=data,
        nonce=b64e(nonce),
        **common,
    )
    assert from_js == from_python
    unsealed = js(
        "seal_call_signal",
        sender=spec(alice),
        recipient_device=bob.device_id,
        signal="offer",
        data=data,
        **common,
    )
    assert (
        open_call_signal(bob, unsealed, alice.device_id, alice.box_public_key, channel, call, "offer") == data
    )
    opened = {
        "recipient": spec(bob),
        "sealed": from_python,
        "sender_device": alice.device_id,
        "sender_box_public_key": alice.box_public_key,
        "channel_id": channel,
    }
    assert js("open_call_signal", call_id=call, signal="offer", **opened) == {"data": data}
    assert js("open_call_signal", call_id=call, signal="answer", **opened) == {"error": "CryptoError"}
    assert js("open_call_signal", call_id="k_otherotherother", signal="offer", **opened) == {
        "error": "CryptoError"
    }
    with pytest.raises(CryptoError):
        open_call_signal(bob, from_js, alice.device_id, alice.box_public_key, channel, call, "candidate")


def test_the_call_views_strings_exist_in_both_languages() -> None:
    """The call view carries its own strings (web/js/call/strings.js, loaded with it): the same keys
    in French and English, and every one the view asks for."""
    strings = js("call_strings")
    assert strings["fr"] == strings["en"]
    import re

    used = set(re.findall(r"\bct\(\s*'([a-z_]+\.[a-z0-9_]+)'", (ROOT / "web/js/call/call-ui.js").read_text()))
    assert len(used) > 10 and sorted(used - set(strings["fr"])) == []


def test_the_web_client_acts_only_on_call_signals_from_certified_devices() -> None:
    """protocol 19.3 and 19.4 on the web client's code: given its effective roster (certified
    devices of the signed membership, certificate keys), a signal from a device outside it, one
    naming another member, one sealed for another call, an unsealed one, one made minutes before
    (a replay), and a server notice other than leave or hang-up are refused."""
    from bocage.client.crypto import seal_call_signal

    alice, bob, ghost = DeviceKeys.generate(), DeviceKeys.generate(), DeviceKeys.generate()
    channel, call = "c_abcdefghijklmnop", "k_abcdefghijklmnop"
    roster = [{"device_id": alice.device_id, "member_id": "m_alice", "box_public_key": alice.box_public_key}]
    base = {"type": "call", "channel_id": channel, "call_id": call, "at": 1}
    sealed = seal_call_signal(
        alice, bob.device_id, bob.box_public_key, channel, call, "offer", {"sdp": "v=0"}
    )
    offer = {
        **base,
        "signal": "offer",
        "from_device": alice.device_id,
        "from_member": "m_alice",
        "sealed": sealed,
    }

    def verify(frame: dict[str, Any], now: int = NOW) -> Any:
        return js("verify_call_signal", recipient=spec(bob), devices=roster, frame=frame, now=now)

    assert verify(offer) == {"data": {"sdp": "v=0"}, "by_server": False}
    now = int(time.time())  # the web client dates signals by this device's own clock

    def ring_at(at: int) -> dict[str, Any]:
        sealed = seal_call_signal(alice, bob.device_id, bob.box_public_key, channel, call, "ring", {"at": at})
        return {**offer, "signal": "ring", "sealed": sealed}

    ring = ring_at(now)
    assert verify(ring, now=now) == {"data": None, "by_server": False}
    # Made five minutes before: a replay, even when the server sets its clock (the Date header
    # the app corrects API times by) to the replay's time.
    assert verify(ring_at(now - 301), now=now - 301) is None
    assert verify({k: v for k, v in ring.items() if k != "sealed"}) is None  # the server's word only
    assert verify({**offer, "from_device": ghost.device_id}) is None  # not a certified device of the channel
    assert verify({**offer, "from_member": "m_bob"}) is None  # the server names another member
    assert verify({**offer, "call_id": "k_otherotherother"}) is None  # sealed for another call
    assert verify({**offer, "signal": "answer"}) is None  # ...or as another signal
    notice = {**base, "from_device": alice.device_id, "from_member": "m_alice", "reason": "removed"}
    # A notice this device cannot see for itself (no view shows alice revoked or gone): dropped;
    # one it can see is tested with real trust views in test_malicious_server_calls.py.
    assert verify({**notice, "signal": "hangup"}) is None
    assert verify({**notice, "signal": "ring"}) is None  # the server only ever ends a part in a call


def test_a_ring_stops_only_on_the_caller_s_own_sealed_leave_or_hang_up() -> None:
    """protocol 19.4 on the web client's ringing screen: the server's word alone (an unsealed leave
    or hang-up with the right call id, or a notice this device cannot see for itself), another
    participant's leave, or the caller's leave sealed for another call leave the ring on; the
    caller's own sealed leave or hang-up stops it."""
    from bocage.client.crypto import seal_call_signal

    alice, bob, carol = DeviceKeys.generate(), DeviceKeys.generate(), DeviceKeys.generate()
    channel, call = "c_abcdefghijklmnop", "k_abcdefghijklmnop"
    roster = [
        {"device_id": d.device_id, "member_id": m, "box_public_key": d.box_public_key}
        for d, m in ((alice, "m_alice"), (carol, "m_carol"))
    ]
    now = int(time.time())
    ring = {"type": "call", "channel_id": channel, "call_id": call, "at": 1, "signal": "ring"}
    ring |= {"from_device": alice.device_id, "from_member": "m_alice"}

    def signal(sender: DeviceKeys, member: str, kind: str, call_id: str = call) -> dict[str, Any]:
        sealed = seal_call_signal(
            sender, bob.device_id, bob.box_public_key, channel, call_id, kind, {"at": now}
        )
        frame = {**ring, "signal": kind, "from_device": sender.device_id, "from_member": member}
        return {**frame, "call_id": call_id, "sealed": sealed}

    def stops(frame: dict[str, Any]) -> Any:
        return js("stops_ring", recipient=spec(bob), devices=roster, ring=ring, frame=frame, now=now)

    for kind in ("leave", "hangup"):
        assert stops({**ring, "signal": kind}) is False  # the server's word only
        assert stops({**ring, "signal": kind, "reason": "removed"}) is False  # not seen by this device
        assert stops(signal(carol, "m_carol", kind)) is False  # another participant's
        assert stops({**signal(alice, "m_alice", kind, "k_otherotherother"), "call_id": call}) is False
        assert stops(signal(alice, "m_alice", kind)) is True


def test_both_clients_let_a_real_choice_replace_a_kept_one_dated_ahead() -> None:
    """Section 23: a window kept from a choice dated more than 300 s ahead (believed before
    devices refused those) does not outrank later real choices on either client; one within
    the skew still does (an older choice served after it is a replay)."""
    from bocage.client.ratchet import SenderKeyRing, Window

    year = 365 * 86_400
    Step = dict[str, int | None]
    cases: list[tuple[dict[str, int] | None, list[Step], tuple[int, int]]] = [
        ({"days": 30, "issued_at": NOW + year}, [{"days": 7, "issued_at": NOW, "now": NOW}], (7, NOW)),
        ({"days": 30, "issued_at": NOW + year}, [{"days": None, "issued_at": 0, "now": NOW}], (0, 0)),
        ({"days": 30, "issued_at": NOW + 300}, [{"days": 7, "issued_at": NOW, "now": NOW}], (30, NOW + 300)),
        (
            None,
            [{"days": 7, "issued_at": NOW, "now": NOW}, {"days": 3, "issued_at": NOW - 60, "now": NOW}],
            (7, NOW),
        ),
    ]
    for kept, steps, expected in cases:
        ring = SenderKeyRing()
        if kept:
            ring._windows[CHANNEL] = Window(kept["days"], kept["issued_at"], 0)
        for step in steps:
            days, issued_at, now = step["days"], int(step["issued_at"] or 0), int(step["now"] or 0)
            if days is None:
                ring.mark_checked(CHANNEL, now)
            else:
                ring.set_window(CHANNEL, days, issued_at, now)
        window = ring.window(CHANNEL)
        assert window is not None and (window.days, window.issued_at) == expected, (kept, steps)
        web = js("history_window", channel_id=CHANNEL, kept=kept, steps=steps)
        assert (web["days"], web["issued_at"]) == expected, (kept, steps)


def test_both_clients_share_no_state_that_derives_an_expired_message() -> None:
    """Section 23 on both clients: a new follower is sealed the snapshot at the author's first
    message in the window while every message it derives lives, and the current state once one
    of them expired, even before the device's next clean-up."""
    from bocage.client.ratchet import SenderKeyRing

    day = 86_400
    messages = [{"expires_at": NOW + day}, {"expires_at": NOW + 30 * day}]
    ring = SenderKeyRing()
    ring.set_window(CHANNEL, 30, issued_at=NOW, now=NOW)
    for i, m in enumerate(messages):
        index, _ = ring.next_key(CHANNEL, 0, f"m{i}", NOW)
        ring.confirm(CHANNEL, 0, index, seq=i + 1, expires_at=m["expires_at"])
    for at, expected in ((NOW + 1, 0), (NOW + 2 * day, 2)):
        assert ring.history_state(CHANNEL, 0, at)[1] == expected
        args = {"channel_id": CHANNEL, "days": 30, "now": NOW, "messages": messages, "at": at}
        assert js("history_index", **args) == expected
