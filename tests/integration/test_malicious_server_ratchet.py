"""The attacker holds the database (or is a member whose client lies): label gaps, replays and
history before one's join, against the real store and API. Each case is read by the Python
client and by the web client's code under node (tests/browser/wire_harness.mjs), from the same
stored rows.
"""

from __future__ import annotations

import json
from typing import Any

from nacl.secret import SecretBox

from bocage.client.crypto import CryptoError, new_message_id, open_message, open_sender_key, pad
from bocage.client.profile import DeviceKeys
from bocage.client.ratchet import MAX_SKIP, message_key, next_chain
from chalicelib.adapters.records.messages import MessageRecords
from chalicelib.domain.encoding import b64e
from chalicelib.domain.envelope import Envelope
from chalicelib.domain.frames import StoredMessage
from tests.support import People, SignedApi, messenger_for, scan_all
from tests.wire_js import js, spec


def stored_page(api: SignedApi, keys: DeviceKeys, cid: str) -> list[dict[str, Any]]:
    """The channel's messages exactly as the server hands them to ``keys``' device."""
    reply = api.call("GET", f"/channels/{cid}/messages", signer=keys, query={"since": "0", "limit": "200"})
    assert reply.status == 200, reply.body
    return list(reply.body["messages"])


def sealed_rows(container: Any, cid: str) -> list[dict[str, Any]]:
    """Every sealed chain state stored for the channel, whoever it is addressed to."""
    return [r for r in scan_all(container.store) if r["pk"] == f"CHAN#{cid}" and "sealed" in r]


def js_read(cid: str, keys: DeviceKeys, sender: DeviceKeys, messages: list[Any], container: Any) -> Any:
    """The web client's reading path over the stored rows: what each message becomes."""
    mine = [s for s in sealed_rows(container, cid) if s["recipient_device"] == keys.device_id]
    return js(
        "ratchet_open",
        recipient=spec(keys),
        sealed=[{k: s[k] for k in ("recipient_device", "sender_device", "epoch", "sealed")} for s in mine],
        sender_box_public_key=sender.box_public_key,
        sender_sign_public_key=sender.sign_public_key,
        channel_id=cid,
        messages=messages,
    )["results"]


def lying_envelope(
    messenger: Any, cid: str, kind: str, target: str | None, sealed: dict[str, Any]
) -> dict[str, Any]:
    """An envelope its (member) sender signs whatever its sealed plaintext says: clear labels
    chosen for the server, content for the readers."""
    epoch = messenger.distribute_key(cid)
    unsigned = Envelope.model_validate(
        {
            "channel_id": cid,
            "message_id": new_message_id(),
            "sender_device": messenger.device_id,
            "epoch": epoch,
            "index": 0,
            "kind": kind,
            "target": target,
            "sent_at": 1,
            "nonce": b64e(bytes(24)),
            "ciphertext": b64e(bytes(16)),
            "signature": b64e(bytes(64)),
        }
    )
    index, key = messenger.ring.next_key(cid, epoch, unsigned.message_id, int(messenger.clock()))
    messenger.save()
    encrypted = SecretBox(key).encrypt(pad(json.dumps(sealed).encode()))
    unsigned = unsigned.model_copy(
        update={"index": index, "nonce": b64e(encrypted.nonce), "ciphertext": b64e(encrypted.ciphertext)}
    )
    signature = messenger.keys.signing.sign(unsigned.signing_bytes()).signature
    return {**unsigned.model_dump(mode="json"), "signature": b64e(signature)}


# --- history before one's join ------------------------------------------------------------------


def test_no_one_added_later_reads_what_was_sent_before(
    people: People, api: SignedApi, container: Any
) -> None:
    """A new member, an admin who adds herself and a newly linked device: nothing before their
    arrival opens, even with every sealed key stored for the channel; what follows does."""
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    before = [f"avant {i}" for i in range(1, 6)]
    for text in before:
        people.owner.send_text(cid, text)
    bob = people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    ada = people.join("ada", role="admin")
    ada.add_member(cid, people.info["ada"]["member_id"])  # an admin joins on her own
    link = api.link(people.keys["owner"])
    tablet_keys, activated = api.activate(link["activation_code"], "Maire")
    assert activated.status == 201, activated.body
    tablet = messenger_for(api, tablet_keys, people.tmp / "owner-tablet", activated.body)
    people.owner.send_text(cid, "après")

    latecomers = {
        "bob": (bob, people.keys["bob"]),
        "ada": (ada, people.keys["ada"]),
        "tablet": (tablet, tablet_keys),
    }
    for reader, _ in latecomers.values():
        shown = reader.read(cid)["messages"]
        assert [m.get("text") for m in shown] == [None] * 5 + ["après"]
        assert all("no key" in m["error"] for m in shown[:5])

    owner = people.keys["owner"]
    rows = [r for r in scan_all(container.store) if r.get("channel_id") == cid and "ciphertext" in r]
    early = sorted((r for r in rows if r["index"] < 5), key=lambda r: r["seq"])
    assert len(early) == 5 and {r["sender_device"] for r in early} == {owner.device_id}
    sealed = sealed_rows(container, cid)
    for name, (_, keys) in latecomers.items():
        states = []
        for row in sealed:
            try:
                states.append(open_sender_key(keys, row, owner.box_public_key, cid))
            except CryptoError:
                continue  # sealed to another device: not theirs to open
        assert states, name
        for chain_key, index in states:
            assert index >= 5, name
            assert not any(opens(row, chain_key, owner) for row in early), f"{name} opened an earlier message"
        page = stored_page(api, keys, cid)
        results = js_read(cid, keys, owner, page, container)
        assert [r.get("error") for r in results] == ["KeyUnavailable"] * 5 + [None], name
        assert results[5]["content"]["text"] == "après"


def opens(row: dict[str, Any], chain_key: bytes, sender: Any) -> bool:
    """Whether any key a chain state leads to, as far as a reader may skip ahead, opens ``row``."""
    for _ in range(MAX_SKIP + 1):
        try:
            open_message(row, message_key(chain_key), sender.sign_public_key)
        except CryptoError:
            chain_key = next_chain(chain_key)
            continue
        return True
    return False


# --- label gaps -------------------------------------------------------------------------------


def test_a_post_labelled_as_a_reaction_is_dropped(people: People, api: SignedApi, container: Any) -> None:
    """A tribe member may only react; her client labels a post as a reaction: the server lets
    it through (it reads labels only), both clients drop it."""
    cid = people.owner.create_channel("tribe", "Infos")["channel_id"]
    ana = people.join("ana")
    people.owner.add_member(cid, people.info["ana"]["member_id"])
    post = {"type": "text", "text": "Réunion annulée (faux)"}
    for sealed in (
        {"kind": "reaction", "target": None, "content": post},
        {"kind": "message", "target": None, "content": post},
    ):
        envelope = lying_envelope(ana, cid, "reaction", None, sealed)
        assert (
            api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["ana"]).status == 201
        )
    shown = people.owner.read(cid)["messages"]
    assert [m["verified"] for m in shown] == [False, False]
    assert all("mislabelled" in m["error"] and "text" not in m for m in shown)
    page = stored_page(api, people.keys["owner"], cid)
    results = js_read(cid, people.keys["owner"], people.keys["ana"], page, container)
    assert [r.get("error") for r in results] == ["MislabelledMessage"] * 2


def test_a_poll_close_retargeted_in_its_content_closes_nothing(
    people: People, api: SignedApi, container: Any
) -> None:
    """Bea may close her own poll; her close names it in clear (what the server checks) and the
    mayor's poll inside: readers drop it, and the mayor's poll stays open."""
    cid = people.owner.create_channel("group", "Sondages")["channel_id"]
    bea = people.join("bea")
    people.owner.add_member(cid, people.info["bea"]["member_id"])
    mayors = people.owner.create_poll(cid, "Fête le 14 ?", ["Oui", "Non"])["poll_id"]
    beas = bea.create_poll(cid, "Pique-nique ?", ["Oui", "Non"])["poll_id"]
    close = {"type": "close", "poll_id": mayors}
    envelope = lying_envelope(
        bea, cid, "poll_close", beas, {"kind": "poll_close", "target": beas, "content": close}
    )
    assert api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["bea"]).status == 201
    shown = people.owner.read(cid)["messages"]
    assert "mislabelled" in shown[-1]["error"] and not shown[-1]["verified"]
    assert people.owner.poll_results(cid, mayors)["closed"] is False
    assert people.owner.poll_results(cid, beas)["closed"] is False
    page = stored_page(api, people.keys["owner"], cid)
    results = js_read(cid, people.keys["owner"], people.keys["bea"], page[1:], container)
    assert results[0]["content"]["question"] == "Pique-nique ?"
    assert results[1]["error"] == "MislabelledMessage" and "poll_id" in results[1]["message"]


# --- replays ----------------------------------------------------------------------------------


def test_a_replayed_envelope_is_shown_once(
    people: People, api: SignedApi, container: Any, clock: Any
) -> None:
    """The database re-inserts a stored message under a new seq, then again later: the readers
    show it once, and the copies are flagged as replays."""
    cid = people.owner.create_channel("group", "Trésorerie")["channel_id"]
    bob = people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    people.owner.send_text(cid, "Virez 500 € à l'association")
    records = MessageRecords(container.store)
    original = records.get(cid, 1)
    assert original is not None

    def replay(seq: int) -> None:
        copy = original.model_dump() | {"seq": seq, "stored_at": clock.now() - 60}
        records.add(StoredMessage.model_validate(copy))

    replay(50)  # past a gap wider than 8: the server hands it out at once
    assert [m.get("text") for m in bob.read(cid)["messages"]] == ["Virez 500 € à l'association", None]
    people.owner.send_text(cid, "Merci")
    replay(60)  # an old envelope slipped in again, after a real message
    shown = bob.read(cid)["messages"]
    assert [m.get("text") for m in shown] == ["Virez 500 € à l'association", "Merci", None, None]
    assert [bool(m.get("replayed")) for m in shown] == [False, False, True, True]
    assert "seq 1" in shown[2]["error"]
    page = stored_page(api, people.keys["bob"], cid)
    results = js_read(cid, people.keys["bob"], people.keys["owner"], page, container)
    assert [r.get("error") for r in results] == [None, None, "ReplayedMessage", "ReplayedMessage"]
