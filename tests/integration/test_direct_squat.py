"""A group squatting on a pair's direct-conversation id (docs/protocol.md, 14.1; attack review H1).

The pair's id is public (derived from the two member ids). The server makes every other channel's
id from a seed, so nobody creates a group under it; and a server that does anyway (or lies about
what it found) gets nothing from the clients: a conversation opened as direct must have a
verified ``direct`` log of exactly the pair, else nothing is sealed there."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest

from bocage.client.api import ApiError
from bocage.client.trust import MembershipRefused
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.domain.channel import ChannelKind
from chalicelib.domain.direct import direct_channel_id, new_channel_seed
from tests.support import People, SignedApi

SECRET = "Bob, le code de la porte est 4711"


def pair_id(people: People) -> str:
    org = people.info["owner"]["org_id"]
    return direct_channel_id(org, people.info["alice"]["member_id"], people.info["bob"]["member_id"])


def squat(people: People) -> tuple[Any, str]:
    """Carol's group under Alice and Bob's direct id, with both in it: written as a server that
    skipped its own id check would (the seed's check is what an honest server does, tested below)."""
    carol, pair = people.join("carol"), pair_id(people)
    with (
        patch("bocage.client.trust.channel_id_from_seed", return_value=pair),
        patch("chalicelib.services.channels.channel_id_from_seed", return_value=pair),
    ):
        assert carol.create_channel("group", "bob")["channel_id"] == pair
    carol.add_member(pair, people.info["alice"]["member_id"], "author")
    carol.add_member(pair, people.info["bob"]["member_id"], "author")
    return carol, pair


def test_the_server_refuses_a_group_whose_id_is_a_pairs_direct_id(people: People, api: SignedApi) -> None:
    for name in ("alice", "bob"):
        people.join(name)
    carol = people.join("carol")
    pair, seed = pair_id(people), new_channel_seed()
    with patch("bocage.client.trust.channel_id_from_seed", return_value=pair):
        entry = carol.trust.new_channel_entry("group", seed)
    body = {"kind": "group", "name": "bob", "membership": entry, "id_seed": seed}
    refused = api.call("POST", "/channels", body, signer=people.keys["carol"])
    assert refused.status == 400 and "id_seed" in refused.body["message"], refused.body
    unseeded = api.call("POST", "/channels", {**body, "id_seed": None}, signer=people.keys["carol"])
    assert unseeded.status == 400 and "update it" in unseeded.body["message"], unseeded.body
    assert api.call("GET", f"/channels/{pair}/membership", signer=people.keys["owner"]).status == 404


def test_opening_a_squatted_pair_is_refused_by_the_server(people: People) -> None:
    alice = people.join("alice")
    people.join("bob")
    squat(people)
    with pytest.raises(ApiError) as refused:
        alice.open_direct(people.info["bob"]["member_id"])
    assert refused.value.status == 409 and "taken by a group" in str(refused.value)


def test_a_server_answering_a_squatting_group_as_the_direct_conversation_gets_nothing_sealed(
    people: People, container: Any
) -> None:
    alice, bob = people.join("alice"), people.join("bob")
    bob_id = people.info["bob"]["member_id"]
    carol, pair = squat(people)
    channels = container.channels
    squatted = channels.find(pair)

    def lying_open_direct(who: Any, member_id: str, entries: object) -> dict[str, Any]:
        """What the server answered before H1's fix, and labelled direct as a lying one would."""
        found = channels._describe(squatted, channels.membership(pair, who.member_id).role)
        return {
            **found,
            "kind": "direct",
            "direct_members": sorted([who.member_id, member_id]),
            "created": False,
        }

    with patch.object(channels, "open_direct", lying_open_direct):
        for opener, other in [(alice, bob_id), (bob, people.info["alice"]["member_id"])]:
            with pytest.raises(MembershipRefused) as refused:
                opened = opener.open_direct(other)
                opener.send_text(opened["channel_id"], SECRET)  # what a user depends on: never reached
            assert refused.value.warning.code == "direct_squatted"
            assert "direct_squatted" in [w["code"] for w in opener.trust.take_warnings()]
    read_by_carol = [m.get("text") for m in carol.read(pair)["messages"]]
    assert SECRET not in read_by_carol
    assert not list(
        channels._sealed.sealed_to(pair, channels.epoch(pair).number, people.keys["carol"].device_id)
    )


def test_a_group_the_server_lists_as_a_direct_conversation_gets_nothing_sent(
    people: People, container: Any
) -> None:
    """Carol's group of Alice, Bob and herself, relabelled by the server as Alice and Bob's direct
    conversation: the listing is its word, the signed log says a group, so Alice sends nothing."""
    alice, bob = people.join("alice"), people.join("bob")
    carol = people.join("carol")
    cid = carol.create_channel("group", "Projet")["channel_id"]
    for name in ("alice", "bob"):
        carol.add_member(cid, people.info[name]["member_id"])
    records = ChannelRecords(container.store)
    channel = records.get(cid)
    assert channel is not None
    pair = tuple(sorted(people.info[n]["member_id"] for n in ("alice", "bob")))
    records.save(channel.model_copy(update={"kind": ChannelKind.DIRECT, "direct_members": pair}))
    listed = next(c for c in alice.channels() if c["channel_id"] == cid)
    assert listed["kind"] == "direct"
    with pytest.raises(MembershipRefused) as refused:
        alice.send_text(cid, SECRET)
    assert refused.value.warning.code == "direct_squatted"
    assert "direct_squatted" in {w["code"] for w in alice.trust.take_warnings()}
    assert [m for m in carol.read(cid)["messages"] if m.get("text") == SECRET] == []
    # The true direct conversation is sent to as before.
    direct = alice.open_direct(people.info["bob"]["member_id"])["channel_id"]
    alice.channels()
    alice.send_text(direct, SECRET)
    assert [m.get("text") for m in bob.read(direct)["messages"]] == [SECRET]
