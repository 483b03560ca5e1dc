"""Direct conversations and edits in the web client's code against the Python implementation,
under node: the pair's channel id, the direct log rule (a third member, a leave or a role change
refused on both sides), edits sealed by one side and opened by the other, a mislabelled edit
refused, and which edit a message shows; a group under a pair's id is no direct conversation to
openDirect nor to a send from the channel list (14.1)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from nacl.secret import SecretBox

from bocage.client.certs import TrustView
from bocage.client.crypto import MislabelledMessage, open_message, pad, seal_message
from bocage.client.edits import apply_edits
from bocage.client.profile import DeviceKeys
from chalicelib.domain import membership_log
from chalicelib.domain.direct import channel_id_from_seed, direct_channel_id, is_direct_of
from chalicelib.domain.encoding import b64e
from chalicelib.domain.envelope import Envelope
from chalicelib.domain.statements import statement_hash
from tests.browser.test_trust_compat import HARNESS, _entry, org, scene
from tests.trust_vectors import INVITEE, INVITEE_DEVICE_SIGN, ORG, OWNER, OWNER_DEVICE_SIGN, ROOT
from tests.wire_js import js, run_harness, spec

THIRD = "m_cccccccccccccccc"


def test_the_pair_id_is_the_same_in_js() -> None:
    pairs = [(ORG, OWNER, INVITEE), (ORG, INVITEE, OWNER), ("o_zzzzzzzzzzzzzzzz", OWNER, THIRD)]
    got = run_harness(HARNESS, *({"op": "direct_id", "org_id": o, "a": a, "b": b} for o, a, b in pairs))
    assert got == [direct_channel_id(o, a, b) for o, a, b in pairs]
    assert got[0] == got[1] != got[2] and got[0].startswith("c_") and len(got[0]) == 18


def test_a_direct_log_takes_its_pair_and_nobody_else_in_both_clients() -> None:
    _, members, devices = org()
    cid = direct_channel_id(ORG, OWNER, INVITEE)
    create = _entry(0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="direct", channel=cid)
    add = _entry(1, statement_hash(create), "add", INVITEE, "author", OWNER_DEVICE_SIGN, channel=cid)
    after = statement_hash(add)
    other_pair = direct_channel_id(ORG, OWNER, THIRD)
    wrong = _entry(0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="direct", channel=other_pair)
    logs = {
        "honest": [create, add],
        "a role change by the owner (an admin)": [
            create,
            add,
            _entry(2, after, "role", INVITEE, "member", OWNER_DEVICE_SIGN, channel=cid),
        ],
        "the other member leaves": [
            create,
            add,
            _entry(2, after, "leave", INVITEE, None, INVITEE_DEVICE_SIGN, channel=cid),
        ],
        "the owner removes the other": [
            create,
            add,
            _entry(2, after, "remove", INVITEE, None, OWNER_DEVICE_SIGN, channel=cid),
        ],
        "a member the id does not name": [
            wrong,
            _entry(1, statement_hash(wrong), "add", INVITEE, "author", OWNER_DEVICE_SIGN, channel=other_pair),
        ],
        "added as a plain member": [
            create,
            _entry(1, statement_hash(create), "add", INVITEE, "member", OWNER_DEVICE_SIGN, channel=cid),
        ],
    }
    view = TrustView(ORG, ROOT, members, devices)
    results = run_harness(
        HARNESS, *({"op": "replay", **scene(members, devices), "entries": e} for e in logs.values())
    )
    for (name, entries), got in zip(logs.items(), results, strict=True):
        state, error = membership_log.replay(entries, view)
        assert got["state"] == (state.to_json() if state else None), name
        assert (got["error"] is None) == (error is None), name
        if name != "honest":
            assert error is not None and "direct conversation" in str(error), name
            assert "direct conversation" in got["error"], name
    assert results[0]["state"]["members"] == {OWNER: "author", INVITEE: "author"}
    assert results[1]["state"]["members"] == {OWNER: "author", INVITEE: "author"}  # the role change refused


def test_only_a_direct_log_of_exactly_the_pair_is_their_conversation_in_both_clients() -> None:
    """What open_direct / openDirect require before sending (attack review H1): a group made
    under the pair's id, with both in it, is not their direct conversation."""
    _, members, devices = org()
    cid = direct_channel_id(ORG, OWNER, INVITEE)
    create = _entry(0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="direct", channel=cid)
    add = _entry(1, statement_hash(create), "add", INVITEE, "author", OWNER_DEVICE_SIGN, channel=cid)
    squat = _entry(0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="group", channel=cid)
    joined = _entry(1, statement_hash(squat), "add", INVITEE, "author", OWNER_DEVICE_SIGN, channel=cid)
    cases = [
        ("honest", [create, add], INVITEE, True),
        ("a group under the pair's id", [squat, joined], INVITEE, False),
        ("half made: the other member not added", [create], INVITEE, False),
        ("asked for another member than the id names", [create, add], THIRD, False),
    ]
    view = TrustView(ORG, ROOT, members, devices)
    got = run_harness(
        HARNESS,
        *(
            {"op": "direct_of", **scene(members, devices), "entries": e, "channel_id": cid, "org_id": ORG}
            | {"me": OWNER, "other": other}
            for _, e, other, _ in cases
        ),
    )
    for (name, entries, other, expected), web in zip(cases, got, strict=True):
        state, _ = membership_log.replay(entries, view)
        assert state is not None, name
        python = is_direct_of(cid, ORG, state.kind, state.members, OWNER, other)
        assert (python, web) == (expected, expected), name

    # openDirect itself, with the pair's id already in the channel list (the server's listing).
    opened = run_harness(
        HARNESS,
        *(
            {"op": "open_direct", **scene(members, devices), "entries": e, "channel_id": cid, "org_id": ORG}
            | {"me": OWNER, "other": INVITEE}
            for e in ([create, add], [squat, joined])
        ),
    )
    assert opened[0] == {"opened": cid, "blocked": False, "reported": []}
    squatted = {"opened": None, "code": "direct_squatted", "blocked": True}
    assert opened[1] == {**squatted, "reported": ["direct_squatted", "direct_squatted"]}


def test_a_direct_conversation_is_named_and_sent_to_only_as_the_pair_its_id_proves() -> None:
    """The listing's ``direct_members`` is the server's word (review M-3): a lying server that
    lists our conversation with one member as another's gets neither the name nor a send."""
    _, members, devices = org()
    cid = direct_channel_id(ORG, OWNER, INVITEE)
    create = _entry(0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="direct", channel=cid)
    add = _entry(1, statement_hash(create), "add", INVITEE, "author", OWNER_DEVICE_SIGN, channel=cid)
    third = direct_channel_id(ORG, OWNER, THIRD)
    with_third = _entry(0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="direct", channel=third)
    cases = [  # (channel id, its log, the pair listed)
        (cid, [create, add], [OWNER, INVITEE]),
        (cid, [create, add], [OWNER, THIRD]),  # our conversation with Élise, listed as THIRD's
        (third, [with_third], [OWNER, INVITEE]),  # THIRD's conversation, listed as Élise's
    ]
    got = run_harness(
        HARNESS,
        *(
            {"op": "listed_direct", **scene(members, devices), "entries": e, "channel_id": c, "org_id": ORG}
            | {"me": OWNER, "listed": listed}
            for c, e, listed in cases
        ),
    )
    assert got[0] == {"name": "Élise Martin", "blocked": False, "reported": []}
    for lied in got[1:]:
        assert lied["name"] == "listed" and lied["blocked"] is True, lied  # the server's name, not a member's
        assert "direct_squatted" in lied["reported"], lied


def test_a_new_channel_id_is_made_from_its_seed_alike_in_both_clients() -> None:
    made = run_harness(HARNESS, *({"op": "new_channel_id"} for _ in range(3)))
    assert len({m["seed"] for m in made}) == 3
    assert [m["channelId"] for m in made] == [channel_id_from_seed(m["seed"]) for m in made]


def _lying_edit(sender: DeviceKeys, key: bytes, target: str, named: str) -> dict[str, Any]:
    """An edit whose clear target is ``target`` and whose sealed content edits ``named``."""
    sealed = {"kind": "edit", "target": target, "content": {"type": "edit", "target": named, "text": "x"}}
    encrypted = SecretBox(key).encrypt(
        pad(json.dumps(sealed, sort_keys=True, separators=(",", ":")).encode())
    )
    unsigned = Envelope.model_validate(
        {
            "channel_id": "c_abcdefghijklmnop",
            "message_id": "L" * 22,
            "sender_device": sender.device_id,
            "epoch": 0,
            "index": 0,
            "kind": "edit",
            "target": target,
            "sent_at": 1,
            "nonce": b64e(encrypted.nonce),
            "ciphertext": b64e(encrypted.ciphertext),
            "signature": b64e(bytes(64)),
        }
    )
    signature = b64e(sender.signing.sign(unsigned.signing_bytes()).signature)
    return {**unsigned.model_dump(mode="json"), "signature": signature}


def test_edits_sealed_by_either_side_open_on_the_other() -> None:
    alice, key = DeviceKeys.generate(), secrets.token_bytes(32)
    original = "o" * 22
    content = {"type": "edit", "target": original, "text": "Réunion à 19h 🌳"}
    fields = {
        "channel_id": "c_abcdefghijklmnop",
        "epoch": 0,
        "index": 3,
        "message_id": "E" * 22,
        "content": content,
        "kind": "edit",
        "target": original,
        "sent_at": 1,
    }
    from_js = js("seal_message", sender=spec(alice), key=b64e(key), fields=fields)
    assert Envelope.model_validate(from_js).target == original  # the server's validation
    assert open_message(from_js, key, alice.sign_public_key) == content
    from_python = seal_message(
        alice,
        key,
        index=4,
        channel_id="c_abcdefghijklmnop",
        epoch=0,
        message_id="F" * 22,
        content=content,
        sent_at_ms=1,
        kind="edit",
        target=original,
    ).model_dump(mode="json")
    assert js("open_message", envelope=from_python, key=b64e(key), sign_public_key=alice.sign_public_key) == {
        "content": content
    }
    lying = _lying_edit(alice, key, original, "someone-elses-msg")
    assert js("open_message", envelope=lying, key=b64e(key), sign_public_key=alice.sign_public_key) == {
        "error": "MislabelledMessage"
    }
    with pytest.raises(MislabelledMessage):
        open_message(lying, key, alice.sign_public_key)


def test_both_clients_show_the_same_edit() -> None:
    alice, bob = "m_alicealicealice", "m_bobbobbobbobbob"

    def opened(
        seq: int, kind: str, sender: str, content: dict[str, Any], verified: bool = True
    ) -> dict[str, Any]:
        return {
            "message_id": f"id{seq:06d}",
            "seq": seq,
            "kind": kind,
            "sender_member": sender,
            "verified": verified,
            "content": content,
        }

    def edit(seq: int, sender: str, target: int, text: object, verified: bool = True) -> dict[str, Any]:
        return opened(
            seq, "edit", sender, {"type": "edit", "target": f"id{target:06d}", "text": text}, verified
        )

    messages = [
        opened(1, "message", alice, {"type": "text", "text": "premier"}),
        opened(2, "message", bob, {"type": "text", "text": "de Bob"}),
        edit(3, alice, 1, "premier, corrigé"),
        edit(4, bob, 1, "Bob parle pour Alice"),  # not the author: ignored
        edit(5, alice, 1, "premier, corrigé deux fois"),
        edit(6, alice, 2, "Alice parle pour Bob"),  # not the author: ignored
        edit(7, bob, 2, 42),  # not a text: ignored
        edit(8, bob, 2, "pas vérifié", verified=False),
        edit(9, bob, 2, "de Bob, corrigé"),
    ]
    js_latest = js("latest_edits", messages=messages)
    python = {m["message_id"]: m for m in apply_edits(messages)}
    assert js_latest == {
        "id000001": {"text": "premier, corrigé deux fois", "seq": 5},
        "id000002": {"text": "de Bob, corrigé", "seq": 9},
    }
    for message_id, latest in js_latest.items():
        assert (
            python[message_id]["text"] == latest["text"] and python[message_id]["edited_seq"] == latest["seq"]
        )
    assert {m for m, x in python.items() if x.get("ignored")} == {"id000004", "id000006", "id000007"}
