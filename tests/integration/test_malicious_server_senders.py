"""A message's sender must be in the channel's verified membership (docs/protocol.md, 14.2),
against a server that lets a certified device of someone not in the channel post there: through
the real app and the real Python client, the server's own records planted as an attacker would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.messages import MessageRecords
from chalicelib.domain.channel import ChannelMember, ChannelRole
from tests.support import People, SignedApi

Setup = tuple[People, Any, str]


@pytest.fixture
def group(people: People) -> Setup:
    """A group of the owner and Bob, where the owner has said hello."""
    bob = people.join("bob")
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    people.owner.send_text(cid, "bonjour")
    return people, bob, cid


def let_in(
    container: Any, people: People, cid: str, name: str, role: ChannelRole = ChannelRole.MEMBER
) -> None:
    """The server's records say ``name`` is in the channel with ``role``, with no signed entry for it."""
    channels = ChannelRecords(container.store)
    member_id = people.info[name]["member_id"]
    channels.save_membership(
        ChannelMember(channel_id=cid, member_id=member_id, role=role, added_at=1, added_by="x")
    )
    device = MemberRecords(container.store).device(people.keys[name].device_id)
    assert device is not None
    channels.add_device(cid, device)
    channels.bump_roster(cid)


def shown(messenger: Any, cid: str) -> dict[str, dict[str, Any]]:
    return {m.get("text") or m["message_id"]: m for m in messenger.read(cid)["messages"]}


def warned(messenger: Any) -> dict[str, dict[str, Any]]:
    return {w["code"]: w for w in messenger.trust.take_warnings()}


def test_a_certified_member_not_in_the_channel_is_not_a_sender(group: Setup, container: Any) -> None:
    people, bob, cid = group
    eve = people.join("eve")  # certified by the organisation, never added to this channel
    let_in(container, people, cid, "eve")
    receipt = eve.send_text(cid, "je parle au nom du conseil")  # sealed to the owner and Bob
    read = bob.read(cid)["messages"]
    assert [m["text"] for m in read if m["verified"]] == ["bonjour"]
    planted = next(m for m in read if m["message_id"] == receipt["message_id"])
    assert planted["verified"] is False and "content" not in planted and planted.get("text") is None
    assert planted["sender_verified"] is False
    assert planted["error"] == "not a member of this channel: not shown"
    warning = warned(bob)["not_a_member"]
    assert warning["member_id"] == people.info["eve"]["member_id"]
    assert warning["device_id"] == people.keys["eve"].device_id
    # Her own device holds her message's key, and still does not show it as the channel's.
    hers = [m for m in eve.read(cid)["messages"] if m["message_id"] == receipt["message_id"]]
    assert hers and not any(m["verified"] for m in hers)


def test_a_removed_member_sends_nothing_after_leaving_but_keeps_what_came_before(
    group: Setup, container: Any, api: SignedApi
) -> None:
    people, bob, cid = group
    carol = people.join("carol")
    people.owner.add_member(cid, people.info["carol"]["member_id"])
    carol.send_text(cid, "avant")
    assert shown(bob, cid)["avant"]["verified"] is True
    people.owner.remove_member(cid, people.info["carol"]["member_id"])
    api.clock.advance(301)  # past the 5 minutes of clock skew allowed
    let_in(container, people, cid, "carol")  # the server lets her back without a signed entry
    receipt = carol.send_text(cid, "après")
    messages = shown(bob, cid)
    assert messages["avant"]["verified"] is True and messages["avant"]["sender_verified"] is True
    late = next(m for m in messages.values() if m["message_id"] == receipt["message_id"])
    assert late["verified"] is False and late.get("text") is None
    assert late["error"] == "sent after leaving the channel: not shown"
    assert warned(bob)["not_a_member"]["member_id"] == people.info["carol"]["member_id"]


def test_members_added_later_or_again_are_senders(group: Setup) -> None:
    people, bob, cid = group
    carol, dan = people.join("carol"), people.join("dan")
    people.owner.add_member(cid, people.info["carol"]["member_id"])
    carol.send_text(cid, "première fois")
    people.owner.remove_member(cid, people.info["carol"]["member_id"])
    people.owner.add_member(cid, people.info["carol"]["member_id"])  # back: no longer a former member
    people.owner.add_member(cid, people.info["dan"]["member_id"])
    carol.send_text(cid, "de retour")
    dan.send_text(cid, "nouveau")
    people.owner.send_text(cid, "bienvenue")
    messages = shown(bob, cid)
    for text in ("bonjour", "première fois", "de retour", "nouveau", "bienvenue"):
        assert messages[text]["verified"] is True and messages[text]["sender_verified"] is True, text
    assert "not_a_member" not in warned(bob)
    read_by_dan = [m["text"] for m in dan.read(cid)["messages"] if m["verified"]]
    assert read_by_dan == ["de retour", "nouveau", "bienvenue"]


def carol_wrote_and_left(group: Setup) -> Path:
    """Carol wrote "avant" and was removed from the channel; Bob keeps the log's state as before
    it kept who left. Bob's trust.json."""
    people, bob, cid = group
    carol = people.join("carol")
    people.owner.add_member(cid, people.info["carol"]["member_id"])
    carol.send_text(cid, "avant")
    people.owner.remove_member(cid, people.info["carol"]["member_id"])
    bob.trust.membership(cid)
    path: Path = bob.profile.dir / "trust.json"
    stored = json.loads(path.read_text())
    del stored["logs"][cid]["former"]
    path.write_text(json.dumps(stored))
    return path


def test_a_state_kept_before_former_existed_is_rebuilt_once(group: Setup, api: SignedApi) -> None:
    """Bob kept the log's state before it kept who left: his next check replays the log from
    entry 0, so Carol's earlier messages still read and her later ones do not."""
    _, bob, cid = group
    path = carol_wrote_and_left(group)
    again = type(bob)(bob.profile, client=bob.client, clock=api.clock.now)
    assert shown(again, cid)["avant"]["verified"] is True
    assert "former" in json.loads(path.read_text())["logs"][cid]


def test_a_member_since_removed_from_the_organisation_stops_no_replay(group: Setup, api: SignedApi) -> None:
    """Carol was added, wrote, left the channel and then the organisation; Dan came after. A
    device replaying from entry 0 (a new one) and one rebuilding who left both judge her ``add``
    by her standing at its date: her earlier message and Dan's are still shown (section 14)."""
    people, bob, cid = group
    path = carol_wrote_and_left(group)
    api.clock.advance(3600)
    reply = api.remove(people.keys["owner"], people.info["carol"]["member_id"])
    assert reply.status < 300, reply.body
    dan = people.join("dan")
    people.owner.add_member(cid, people.info["dan"]["member_id"])
    dan.send_text(cid, "nouveau")
    again = type(bob)(bob.profile, client=bob.client, clock=api.clock.now)
    again.trust.view(refresh=True)  # it has learnt of her removal
    messages = shown(again, cid)
    assert messages["avant"]["verified"] is True and messages["nouveau"]["verified"] is True
    assert "not_a_member" not in warned(again) and "former" in json.loads(path.read_text())["logs"][cid]
    fresh = [m["text"] for m in dan.read(cid)["messages"] if m["verified"]]  # replays from entry 0
    assert fresh == ["nouveau"] and "not_a_member" not in warned(dan)


def test_a_tribe_s_plain_member_posts_nothing_even_if_the_server_lets_them(
    people: People, container: Any
) -> None:
    """In a tribe only authors post (section 14.2, the server's own rule): a member whose signed
    role is ``member`` and whom a complicit server's records call an author is not shown; their
    reactions are, and the author's posts are."""
    bob, carol = people.join("bob"), people.join("carol")
    cid = people.owner.create_channel("tribe", "Mairie")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])  # a plain member
    people.owner.add_member(cid, people.info["carol"]["member_id"])
    official = people.owner.send_text(cid, "officiel")
    let_in(container, people, cid, "bob", ChannelRole.AUTHOR)
    planted = bob.send_text(cid, "annonce de la mairie")
    reaction = bob.react(cid, official["message_id"], "👍")
    read = {m["message_id"]: m for m in carol.read(cid)["messages"]}
    assert read[official["message_id"]]["verified"] is True
    assert (
        read[planted["message_id"]]["verified"] is False and read[planted["message_id"]].get("text") is None
    )
    assert read[planted["message_id"]]["error"] == "not an author of this tribe: not shown"
    assert warned(carol)["not_a_member"]["member_id"] == people.info["bob"]["member_id"]
    assert (
        read[reaction["message_id"]]["verified"] is True
        and read[reaction["message_id"]]["content"]["emoji"] == "👍"
    )


def test_a_rewritten_date_is_a_forgery_not_the_former_member_s_doing(
    group: Setup, container: Any, api: SignedApi
) -> None:
    """The signature is checked before the sender's standing: a server that moves a former
    member's message after their departure gets it called forged, and no warning blames her."""
    people, bob, cid = group
    carol = people.join("carol")
    people.owner.add_member(cid, people.info["carol"]["member_id"])
    receipt = carol.send_text(cid, "avant")
    people.owner.remove_member(cid, people.info["carol"]["member_id"])
    records = MessageRecords(container.store)
    stored = records.find(cid, receipt["message_id"])
    assert stored is not None
    records.store(stored.model_copy(update={"sent_at": stored.sent_at + 3_600_000}))
    moved = next(m for m in bob.read(cid)["messages"] if m["message_id"] == receipt["message_id"])
    assert moved["verified"] is False and moved.get("text") is None
    assert moved["error"] == "forged or tampered message: signature does not verify"
    assert "not_a_member" not in warned(bob)
