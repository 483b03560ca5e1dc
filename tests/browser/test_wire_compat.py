"""The web app's wire code (web/js/wire.js, polls.js) against the Python implementation, under node.

Every format both clients produce is made by one side and checked by the other: request tokens,
device ids, activation proofs, envelope signing bytes, sealed messages and sealed sender keys,
padding and poll tallies. No browser needed, so an incompatibility shows in seconds.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from nacl.public import Box, PublicKey
from nacl.signing import SigningKey, VerifyKey

from bocage.client.crypto import (
    CryptoError,
    ForgedMessage,
    open_message,
    open_sender_key,
    pad,
    seal_message,
    seal_sender_key,
)
from bocage.client.polls import new_poll, tally
from bocage.client.profile import DeviceKeys, sign_token
from chalicelib.domain.activation_link import activation_url, parse_activation
from chalicelib.domain.auth_token import Claims, decode_token, request_digest
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.envelope import Envelope, signing_bytes
from chalicelib.domain.ids import device_id_for
from chalicelib.domain.invitation import activation_proof_message, new_code

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("wire_harness.mjs")


def run_js(*commands: dict[str, Any]) -> list[Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not installed: the web app's wire code cannot be checked (apt-get install nodejs)"
        )
    if not (ROOT / "node_modules" / "tweetnacl").is_dir():
        pytest.fail("node_modules/tweetnacl is missing: run `npm ci` at the repository root")
    done = subprocess.run(
        [node, str(HARNESS)],
        input=json.dumps(list(commands)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[Any] = json.loads(done.stdout)
    return result


def js(op: str, **args: Any) -> Any:
    return run_js({"op": op, **args})[0]


def spec(keys: DeviceKeys) -> dict[str, str]:
    return {
        "sign_seed": b64e(bytes(keys.signing)),
        "box_secret": b64e(bytes(keys.box)),
        "device_id": keys.device_id,
    }


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
        envelope = seal_message(
            keys,
            sender_key,
            channel_id="c_abcdefghijklmnop",
            epoch=3,
            message_id="M" * 22,
            content={"type": "text", "text": "x"},
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
        "message_id": b64e(secrets.token_bytes(16)),
        "content": content,
        "kind": "message",
        "sent_at": 1_800_000_000_000,
    }
    envelope = js("seal_message", sender=spec(alice), key=b64e(sender_key), fields=fields)
    parsed = Envelope.model_validate(envelope)  # the server's validation
    assert len(b64d(parsed.ciphertext)) % 256 == 16  # padded to 256-byte blocks, plus the MAC
    assert open_message(envelope, sender_key, alice.sign_public_key) == content

    python_env = seal_message(
        alice,
        sender_key,
        channel_id="c_abcdefghijklmnop",
        epoch=2,
        message_id="P" * 22,
        content=content,
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
    assert opened == {"content": content}

    tampered = {**python_env, "epoch": 3}
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


def test_padding_is_identical() -> None:
    for size in (0, 1, 255, 256, 600):
        data = secrets.token_bytes(size)
        assert b64d(js("pad", data=b64e(data))) == pad(data)


def test_sender_keys_sealed_by_js_open_in_python_and_back() -> None:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    sender_key = secrets.token_bytes(32)
    channel = "c_abcdefghijklmnop"
    sealed = js(
        "seal_sender_key",
        sender=spec(alice),
        recipient_device=bob.device_id,
        recipient_box_public_key=bob.box_public_key,
        channel_id=channel,
        epoch=5,
        key=b64e(sender_key),
    )
    assert sealed["sender_device"] == alice.device_id and sealed["epoch"] == 5
    assert open_sender_key(bob, sealed, alice.box_public_key, channel) == sender_key
    with pytest.raises(CryptoError):
        open_sender_key(bob, sealed, alice.box_public_key, "c_otherchannelxxxx")

    from_python = seal_sender_key(alice, bob.device_id, bob.box_public_key, channel, 7, sender_key)
    assert js(
        "open_sender_key",
        recipient=spec(bob),
        sealed=from_python,
        sender_box_public_key=alice.box_public_key,
        channel_id=channel,
    ) == {"key": b64e(sender_key)}
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
    payload = Box(bob.box, PublicKey(b64d(alice.box_public_key))).decrypt(raw[24:], raw[:24])
    assert json.loads(payload)["key"] == b64e(sender_key)


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
