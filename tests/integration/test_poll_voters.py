"""Named votes (docs/protocol.md, section 8): a poll created with ``show_voters`` names who chose
each option in its results; any other poll gives totals only. Both on the device: the server
relays sealed votes and never learns a choice."""

from __future__ import annotations

from typing import Any

from tests.support import People, scan_all


def test_named_votes_are_named_and_other_polls_give_totals(people: People, container: Any) -> None:
    alice, bob = people.join("alice"), people.join("bob")
    alice_id, bob_id = people.info["alice"]["member_id"], people.info["bob"]["member_id"]
    cid = alice.create_channel("group", "Conseil")["channel_id"]
    alice.add_member(cid, bob_id)
    named = alice.create_poll(cid, "Date ?", ["Lundi", "Mardi"], show_voters=True)["poll_id"]
    totals = alice.create_poll(cid, "Lieu ?", ["Mairie", "École"])["poll_id"]
    for poll in (named, totals):
        bob.vote(cid, poll, [1])
        alice.vote(cid, poll, [1])
    shown = alice.poll_results(cid, named)
    assert shown["show_voters"] is True
    assert [o["voter_ids"] for o in shown["options"]] == [[], sorted([alice_id, bob_id])]
    hidden = bob.poll_results(cid, totals)
    assert hidden["show_voters"] is False and hidden["counts"] == [0, 2]
    assert all("voter_ids" not in o for o in hidden["options"])
    assert not any("Mardi" in repr(item) or "show_voters" in repr(item) for item in scan_all(container.store))
