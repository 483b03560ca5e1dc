"""Channels and end-to-end encrypted messages through the Chalice app, on both stores."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bocage.client.api import ApiError
from bocage.client.profile import DeviceKeys
from chalicelib.domain.envelope import MAX_CIPHERTEXT_BYTES
from tests.support import People, RecordingPush, SignedApi, messenger_for, sealed_envelope

Owner = tuple[DeviceKeys, dict[str, Any]]


def test_group_conversation_both_ways(people: People) -> None:
    alice, bob = people.join("alice"), people.join("bob")
    group = alice.create_channel("group", "Conseil")
    assert group["kind"] == "group" and group["my_role"] == "author"
    alice.add_member(group["channel_id"], people.info["bob"]["member_id"])
    alice.send_text(group["channel_id"], "Bonjour Bob")
    bob.send_text(group["channel_id"], "Bonjour Alice")
    for reader in (alice, bob):
        messages = reader.read(group["channel_id"])["messages"]
        assert [(m["text"], m["verified"]) for m in messages] == [
            ("Bonjour Bob", True),
            ("Bonjour Alice", True),
        ]
        assert [m["sender_name"] for m in messages] == ["alice", "bob"]


def test_tribe_authors_post_members_read(people: People, api: SignedApi) -> None:
    tribe = people.owner.create_channel("tribe", "Infos mairie")
    citizen = people.join("citizen")
    people.owner.add_member(tribe["channel_id"], people.info["citizen"]["member_id"])
    people.owner.send_text(tribe["channel_id"], "Collecte des encombrants jeudi")
    assert [m["text"] for m in citizen.read(tribe["channel_id"])["messages"]] == [
        "Collecte des encombrants jeudi"
    ]
    with pytest.raises(ApiError) as refused:
        citizen.send_text(tribe["channel_id"], "spam")
    assert refused.value.status == 403 and "only authors post" in refused.value.message


def test_only_admins_create_tribes_anyone_creates_groups(people: People) -> None:
    member = people.join("agent")
    with pytest.raises(ApiError) as refused:
        member.create_channel("tribe", "Mine")
    assert refused.value.status == 403
    assert member.create_channel("group", "Équipe")["kind"] == "group"


def test_non_members_and_other_organisations_are_refused(
    people: People, api: SignedApi, operator: Any
) -> None:
    group = people.owner.create_channel("group", "Bureau")
    people.owner.send_text(group["channel_id"], "ordre du jour")
    outsider = people.join("outsider")
    with pytest.raises(ApiError) as refused:
        outsider.read(group["channel_id"])
    assert refused.value.status == 403
    other = api.create_org(operator, name="Autre")
    stranger_keys, info = api.activate(other["activation_code"], "Stranger")
    stranger = messenger_for(api, stranger_keys, people.tmp / "stranger", info.body)
    with pytest.raises(ApiError) as hidden:
        stranger.read(group["channel_id"])
    assert hidden.value.status == 404


def test_removed_member_cannot_read_what_follows_even_with_the_ciphertext(
    people: People, api: SignedApi
) -> None:
    group = people.owner.create_channel("group", "Commission")
    cid = group["channel_id"]
    leaver = people.join("leaver")
    people.owner.add_member(cid, people.info["leaver"]["member_id"])
    people.owner.send_text(cid, "avant")
    assert [m["text"] for m in leaver.read(cid)["messages"]] == ["avant"]

    removed = people.owner.remove_member(cid, people.info["leaver"]["member_id"])
    assert removed["epoch"] == 1
    people.owner.send_text(cid, "après")
    with pytest.raises(ApiError) as refused:
        leaver.read(cid)
    assert refused.value.status == 403
    # Even handed the stored ciphertext, the leaver holds only epoch-0 keys.
    stored = people.owner.client.request("GET", f"/channels/{cid}/messages")["messages"]
    after = next(m for m in stored if m["epoch"] == 1)
    opened = leaver.open(after)
    assert opened["verified"] is False and "no key" in opened["error"]


def test_resent_message_is_stored_and_pushed_once(
    people: People, api: SignedApi, push: RecordingPush
) -> None:
    group = people.owner.create_channel("group", "G")
    cid = group["channel_id"]
    people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    assert api.ws_connect(people.keys["bob"], "conn-bob")["statusCode"] == 200
    envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": "once"})
    first = api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])
    again = api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])
    assert first.status == again.status == 201
    assert (first.body["duplicate"], again.body["duplicate"]) == (False, True)
    assert first.body["seq"] == again.body["seq"]
    assert len(people.owner.read(cid)["messages"]) == 1
    assert len(push.to("conn-bob", "message")) == 1


def test_messages_carry_the_organisation_retention(people: People, api: SignedApi) -> None:
    group = people.owner.create_channel("group", "G")
    sent = people.owner.send_text(group["channel_id"], "x")
    (message,) = people.owner.read(group["channel_id"])["messages"]
    assert sent["expires_at"] == message["expires_at"] == message["stored_at"] + 90 * 86400


def test_ciphertext_over_64_kib_is_refused_clearly(people: People, api: SignedApi) -> None:
    group = people.owner.create_channel("group", "G")
    cid = group["channel_id"]
    envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": "x"})
    envelope["ciphertext"] = base64.urlsafe_b64encode(b"\0" * (MAX_CIPHERTEXT_BYTES + 1)).decode().rstrip("=")
    reply = api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])
    assert reply.status == 413 and "64 KiB" in reply.body["message"]
    assert people.owner.read(cid)["messages"] == []


def test_a_version_1_envelope_is_refused_with_a_call_to_update(people: People, api: SignedApi) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": "x"})
    old = {k: v for k, v in envelope.items() if k != "index"} | {"v": 1}
    reply = api.call("POST", f"/channels/{cid}/messages", old, signer=people.keys["owner"])
    assert reply.status == 400
    assert "version 1" in reply.body["message"] and "update the client" in reply.body["message"]
    for bad in ({"index": None}, {"index": -1}, {"index": True}, {"index": "3"}, {"index": 2**31}, {"v": 3}):
        reply = api.call("POST", f"/channels/{cid}/messages", envelope | bad, signer=people.keys["owner"])
        assert reply.status == 400, bad
    missing = {k: v for k, v in envelope.items() if k != "index"}
    reply = api.call("POST", f"/channels/{cid}/messages", missing, signer=people.keys["owner"])
    assert reply.status == 400 and "index" in reply.body["message"]
    assert people.owner.read(cid)["messages"] == []
    stored = api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])
    assert stored.status == 201
    page = api.call("GET", f"/channels/{cid}/messages", signer=people.keys["owner"])
    assert [m["index"] for m in page.body["messages"]] == [envelope["index"]]  # stored and relayed


def test_forged_envelope_is_flagged_not_shown(people: People, api: SignedApi) -> None:
    group = people.owner.create_channel("group", "G")
    cid = group["channel_id"]
    bob = people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    envelope = sealed_envelope(bob, cid, {"type": "text", "text": "real"})
    envelope["sent_at"] = 2  # tampered after signing
    assert api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["bob"]).status == 201
    (shown,) = people.owner.read(cid)["messages"]
    assert shown["verified"] is False and "forged" in shown["error"] and "text" not in shown


def test_sender_must_be_the_signing_device(people: People, api: SignedApi) -> None:
    group = people.owner.create_channel("group", "G")
    cid = group["channel_id"]
    bob = people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": "x"})
    reply = api.call("POST", f"/channels/{cid}/messages", envelope, signer=bob.keys)
    assert reply.status == 403


def test_a_new_device_reads_from_its_link_on(people: People, api: SignedApi) -> None:
    """Multi-device: a member's device linked later gets the senders' current ratchet state, so it
    reads what is sent from then on, and nothing sent before it existed (protocol v2)."""
    cid = people.owner.create_channel("tribe", "T")["channel_id"]
    bob_phone = people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    people.owner.send_text(cid, "sent before the laptop existed")
    link = api.link(people.keys["bob"])
    laptop_keys, activated = api.activate(link["activation_code"], "bob")
    assert activated.status == 201
    laptop = messenger_for(api, laptop_keys, people.tmp / "bob-laptop", activated.body)
    people.owner.read(cid)  # any read (or a live "device" event) lets the sender share its key
    people.owner.send_text(cid, "sent after the link")
    seen = laptop.read(cid)["messages"]
    assert [m.get("text") for m in seen] == [None, "sent after the link"]
    assert "no key for this message" in seen[0]["error"] and not seen[0]["verified"]
    assert [m["verified"] for m in bob_phone.read(cid)["messages"]] == [True, True]


def test_own_messages_show_on_all_my_devices(people: People, api: SignedApi) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    link = api.link(people.keys["owner"])
    tablet_keys, activated = api.activate(link["activation_code"], "Maire")
    tablet = messenger_for(api, tablet_keys, people.tmp / "owner-tablet", activated.body)
    people.owner.send_text(cid, "from my phone")
    tablet.send_text(cid, "from my tablet")
    for device in (people.owner, tablet):
        assert [m["text"] for m in device.read(cid)["messages"]] == ["from my phone", "from my tablet"]


def test_a_fresh_gap_is_waited_for_then_skipped(people: People, api: SignedApi, container: Any) -> None:
    """A number taken by a writer that has not stored yet holds readers back, briefly."""
    from chalicelib.adapters.records import keys

    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.owner.send_text(cid, "one")
    container.store.increment(*keys.channel_state(cid), "seq")  # #2 taken by a writer still at work
    people.owner.send_text(cid, "three")
    first = people.owner.read(cid)
    assert [m["text"] for m in first["messages"]] == ["one"] and first["cursor"] == 1
    api.clock.advance(11)  # the writer crashed: the gap is skipped
    assert [m["text"] for m in people.owner.read(cid, since=first["cursor"])["messages"]] == ["three"]


def test_channel_members_with_their_roles(people: People) -> None:
    cid = people.owner.create_channel("tribe", "T")["channel_id"]
    people.join("ana")
    people.owner.add_member(cid, people.info["ana"]["member_id"])
    listed = people.owner.client.request("GET", f"/channels/{cid}/members")["members"]
    roles = {m["member_id"]: m["role"] for m in listed}
    assert roles == {people.info["owner"]["member_id"]: "author", people.info["ana"]["member_id"]: "member"}
    outsider = people.join("outsider")
    with pytest.raises(ApiError) as refused:
        outsider.client.request("GET", f"/channels/{cid}/members")
    assert refused.value.status == 403


def test_sealed_keys_only_for_devices_in_the_channel_roster(people: People) -> None:
    """Red-team finding: a key sealed for a device outside the channel was stored."""
    alice, outsider = people.join("alice"), people.join("outsider")
    group = alice.create_channel("group", "Voirie")
    cid = group["channel_id"]
    epoch = group["epoch"]
    sealed = base64.urlsafe_b64encode(b"x" * 80).decode().rstrip("=")
    entry: Any = {"recipient_device": outsider.device_id, "sealed": sealed}
    with pytest.raises(ApiError) as refused:
        alice.client.put_sender_keys(cid, epoch, [entry])
    assert refused.value.status == 400 and outsider.device_id in refused.value.message
    alice.add_member(cid, outsider.info["member_id"])  # once in the roster, the same key is accepted
    assert alice.client.put_sender_keys(cid, epoch, [entry])["stored"] == 1
    assert [k["sender_device"] for k in outsider.client.sender_keys(cid, epoch)["keys"]] == [alice.device_id]
