"""Attack (review): a member squats on another pair's direct-conversation id with a group of
their own (docs/protocol.md, 14.1). The pair's id is public (derived from the two member ids),
so Carol creates a *group* under it and adds Alice and Bob; when Alice then opens her direct
conversation with Bob, the server finds "it" (the caller and the peer are in it) and answers
``created: false`` without looking at its kind, and Alice's client seals to Carol too."""

from __future__ import annotations

from unittest.mock import patch

from chalicelib.domain.direct import direct_channel_id
from tests.support import People


def test_a_group_squatting_on_the_pairs_id_is_not_taken_for_their_direct_conversation(people: People) -> None:
    alice, carol = people.join("alice"), people.join("carol")
    people.join("bob")
    org = people.info["owner"]["org_id"]
    alice_id, bob_id = people.info["alice"]["member_id"], people.info["bob"]["member_id"]
    pair = direct_channel_id(org, alice_id, bob_id)

    # Carol makes a group whose id is Alice and Bob's direct conversation's, named after Bob.
    with patch("bocage.client.trust.new_id", return_value=pair):
        squat = carol.create_channel("group", "bob")
    assert squat["channel_id"] == pair
    carol.add_member(pair, alice_id, "author")
    carol.add_member(pair, bob_id, "author")

    # Alice opens "her direct conversation with Bob" and writes to him.
    opened = alice.open_direct(bob_id)
    if opened["channel_id"] == pair and opened.get("kind") != "direct":
        # what a user depends on: the conversation they open as direct has exactly the pair in it
        alice.send_text(pair, "Bob, le code de la porte est 4711")
        read_by_carol = [m.get("text") for m in carol.read(pair)["messages"]]
        assert "Bob, le code de la porte est 4711" not in read_by_carol, (
            f"open_direct returned a {opened.get('kind')!r} channel and Carol reads the direct message"
        )
    assert opened.get("kind") == "direct", f"open_direct returned a {opened.get('kind')!r} channel"
