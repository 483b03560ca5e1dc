"""Direct conversations (docs/protocol.md, 14.1) through the app and the Python client, on both
stores: one per pair, found again, even when both members open it at once, never a third member,
and a server that slips one into the log is caught by the clients."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.api import ApiError
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.sender_keys import SenderKeys
from chalicelib.domain.direct import direct_channel_id
from chalicelib.domain.organisation import Role
from chalicelib.domain.principal import Principal
from chalicelib.errors import Conflict
from tests.support import People, SignedApi, messenger_for, plant_addition


def principal(people: People, name: str) -> Principal:
    info = people.info[name]
    return Principal(info["org_id"], info["member_id"], people.keys[name].device_id, Role(info["role"]))


def test_a_direct_conversation_is_found_again_and_works_like_a_group(people: People) -> None:
    alice, bob = people.join("alice"), people.join("bob")
    alice_id, bob_id = people.info["alice"]["member_id"], people.info["bob"]["member_id"]
    opened = alice.open_direct(bob_id)
    cid = opened["channel_id"]
    assert cid == direct_channel_id(people.info["owner"]["org_id"], alice_id, bob_id)
    assert (opened["kind"], opened["created"], opened["my_role"]) == ("direct", True, "author")
    assert sorted(opened["direct_members"]) == sorted([alice_id, bob_id])
    again, from_bob = alice.open_direct(bob_id), bob.open_direct(alice_id)
    assert (again["channel_id"], again["created"]) == (cid, False)
    assert (from_bob["channel_id"], from_bob["created"]) == (cid, False)
    alice.send_text(cid, "Bonjour Bob")
    sent = bob.send_text(cid, "Bonjour Alice")
    alice.react(cid, sent["message_id"], "👍")
    messages = alice.read(cid)["messages"]
    assert [(m["text"], m["sender_name"]) for m in messages if m.get("text")] == [
        ("Bonjour Bob", "alice"),
        ("Bonjour Alice", "bob"),
    ]
    assert [m["content"]["emoji"] for m in bob.read(cid)["messages"] if m["kind"] == "reaction"] == ["👍"]
    listed = {c["channel_id"]: c for c in bob.channels()}
    assert listed[cid]["kind"] == "direct" and listed[cid]["latest_seq"] == 3
    assert all(c["channel_id"] != cid for c in people.join("carol").channels())


def test_two_members_opening_at_once_get_one_conversation(people: People, container: Any) -> None:
    alice, bob = people.join("alice"), people.join("bob")
    alice_id, bob_id = people.info["alice"]["member_id"], people.info["bob"]["member_id"]
    records = container.channels._records
    create = records.create
    seen: list[tuple[int, str]] = []

    def bob_arrives_meanwhile(channel: Any) -> None:
        """Bob's request lands between Alice's conditional write and her log entries."""
        create(channel)
        with pytest.raises(Conflict) as raced:
            container.channels.open_direct(
                principal(people, "bob"), alice_id, bob.trust.direct_entries(alice_id)
            )
        seen.append((raced.value.status, str(raced.value)))

    records.create = bob_arrives_meanwhile
    try:
        cid = alice.open_direct(bob_id)["channel_id"]
    finally:
        records.create = create
    assert seen == [(409, "the other member is opening this conversation right now; retry")]
    assert (bob.open_direct(alice_id)["channel_id"], bob.open_direct(alice_id)["created"]) == (cid, False)
    assert len(container.channels.membership_log(principal(people, "alice"), cid, 0, 500)["entries"]) == 2


def test_the_loser_of_the_conditional_write_retries_and_finds_it(people: People, container: Any) -> None:
    """Bob's own write fails on Alice's record; his client asks again and finds the conversation."""
    alice, bob = people.join("alice"), people.join("bob")
    alice_id, bob_id = people.info["alice"]["member_id"], people.info["bob"]["member_id"]
    records = container.channels._records
    create = records.create

    def alice_wins(channel: Any) -> None:
        records.create = create
        alice.open_direct(bob_id)  # Alice's request completes first
        create(channel)  # Bob's conditional write now fails

    records.create = alice_wins
    found = bob.open_direct(alice_id)
    assert (found["created"], found["kind"]) == (False, "direct")
    assert found["channel_id"] == direct_channel_id(people.info["owner"]["org_id"], alice_id, bob_id)


def test_a_direct_conversation_gains_no_member_and_loses_none(people: People) -> None:
    alice = people.join("alice")
    people.join("eve")
    cid = people.owner.open_direct(people.info["alice"]["member_id"])["channel_id"]
    with pytest.raises(ApiError) as added:
        people.owner.add_member(cid, people.info["eve"]["member_id"])  # even the organisation's owner
    assert added.value.status == 403 and "keeps its two members" in added.value.message
    with pytest.raises(ApiError) as left:
        alice.remove_member(cid, people.info["alice"]["member_id"])
    assert left.value.status == 403
    assert {m["member_id"] for m in alice.client.request("GET", f"/channels/{cid}/members")["members"]} == {
        people.info["owner"]["member_id"],
        people.info["alice"]["member_id"],
    }


def test_bad_requests_are_refused_clearly(people: People, api: SignedApi) -> None:
    alice = people.join("alice")
    bob_keys, bob_info = api.join(people.keys["owner"], "bob")
    alice_id, bob_id = people.info["alice"]["member_id"], bob_info["member_id"]
    owner = people.keys["owner"]

    def put(member: str, body: dict[str, Any]) -> tuple[int, str]:
        reply = api.call("PUT", f"/direct/{member}", body, signer=owner)
        return reply.status, str(reply.body.get("message", ""))

    myself = people.info["owner"]["member_id"]
    assert put(myself, {"membership": people.owner.trust.direct_entries(alice_id)})[0] == 400
    assert put(alice_id, {})[0] == 400  # no entries
    status, message = put(alice_id, {"membership": people.owner.trust.direct_entries(bob_id)})
    assert status == 400 and "direct conversation" in message  # entries for another pair
    creation, _ = people.owner.trust.direct_entries(alice_id)
    assert put(alice_id, {"membership": [creation, creation]})[0] == 400
    assert put("m_aaaaaaaaaaaaaaaa", {"membership": []})[0] == 404
    assert put("nonsense", {"membership": []})[0] == 404
    invited = api.invite(owner, "pas encore là")
    status, message = put(
        invited["member_id"], {"membership": people.owner.trust.direct_entries(invited["member_id"])}
    )
    assert status == 409 and "not activated" in message
    assert bob_keys and alice


def test_other_organisations_get_404(people: People, api: SignedApi, operator: Any) -> None:
    alice = people.join("alice")
    alice_id = people.info["alice"]["member_id"]
    cid = people.owner.open_direct(alice_id)["channel_id"]
    people.owner.send_text(cid, "entre nous")
    other = api.create_org(operator, name="Autre")
    stranger_keys, info = api.activate(other["activation_code"], "Stranger")
    stranger = messenger_for(api, stranger_keys, people.tmp / "stranger", info.body)
    with pytest.raises(ApiError) as across:
        stranger.open_direct(alice_id)
    assert across.value.status == 404
    with pytest.raises(ApiError) as back:
        alice.open_direct(info.body["member_id"])
    assert back.value.status == 404
    with pytest.raises(ApiError) as hidden:
        stranger.read(cid)
    assert hidden.value.status == 404


def test_a_third_member_in_the_pair_is_refused(people: People) -> None:
    """A member outside the pair cannot read it (403), like any channel they are not in."""
    people.join("alice")
    eve = people.join("eve")
    cid = people.owner.open_direct(people.info["alice"]["member_id"])["channel_id"]
    with pytest.raises(ApiError) as refused:
        eve.read(cid)
    assert refused.value.status == 403


def test_a_server_that_adds_a_third_member_is_caught(people: People, container: Any, api: SignedApi) -> None:
    """The organisation's owner signs an addition of Eve (admins may add anyone to a group); the
    server writes it into the direct conversation's log and rosters Eve's device. Alice's client
    refuses the entry and seals nothing to Eve."""
    alice = people.join("alice")
    eve = people.join("eve")
    alice_id, eve_id = people.info["alice"]["member_id"], people.info["eve"]["member_id"]
    cid = alice.open_direct(people.info["owner"]["member_id"])["channel_id"]
    alice.send_text(cid, "bonjour")
    alice.trust.take_warnings()
    head = container.channels.membership_log(principal(people, "alice"), cid, 0, 500)["entries"][-1]
    plant_addition(
        container,
        people.keys["owner"],  # the organisation's owner may add anyone to a group, not here
        org_id=people.info["owner"]["org_id"],
        channel_id=cid,
        previous=head,
        member_id=eve_id,
        now=api.clock.now(),
    )
    channels = ChannelRecords(container.store)
    device = MemberRecords(container.store).device(people.keys["eve"].device_id)
    assert device is not None
    channels.add_device(cid, device)
    channels.bump_roster(cid)
    container.channels.rekey(cid)  # a new epoch: Alice seals her key again
    alice.send_text(cid, "toujours entre nous")
    epoch = channels.epoch(cid).number
    assert list(SenderKeys(container.store).sealed_to(cid, epoch, people.keys["eve"].device_id)) == []
    assert {w["code"] for w in alice.trust.take_warnings()} >= {"membership_invalid", "not_in_membership"}
    assert (
        alice_id in alice.trust.membership(cid).members and eve_id not in alice.trust.membership(cid).members
    )
    assert not any(m["verified"] for m in eve.read(cid)["messages"])


def test_the_new_routes_need_a_device_token(people: People, api: SignedApi) -> None:
    alice = people.join("alice")
    alice_id = people.info["alice"]["member_id"]
    cid = people.owner.open_direct(alice_id)["channel_id"]
    entries = people.owner.trust.direct_entries(alice_id)
    assert api.call("PUT", f"/direct/{alice_id}", {"membership": entries}).status == 401
    assert api.call("GET", f"/channels/{cid}/seen").status == 401
    assert alice is not None
