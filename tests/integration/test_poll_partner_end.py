"""Poll tallies count the verified membership cut at the partnership ends (docs/protocol.md,
sections 8 and 22.7), not the server's roster: through the real app on SQLite and moto's
DynamoDB, with the real Python client on both sides."""

from __future__ import annotations

from typing import Any

from tests.integration.test_partner_groups import member_of, shared
from tests.integration.test_partners import Pair, pair
from tests.integration.test_partnership_end_dates import put_back
from tests.support import SignedApi, sealed_envelope

__all__ = ["pair"]


def test_an_ended_partners_member_no_longer_votes_whatever_the_roster_says(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """B's member votes while partners, and signs a second vote dated just after the end (within
    the 300 s the sender check allows the clocks). After the end the server keeps them in the
    group (its records and roster, no signed entry): A's tally counts A's own members only."""
    cid = shared(pair)
    poll = str(pair.a.create_poll(cid, "Réunion de chantier ?", ["Lundi", "Mardi"])["poll_id"])
    pair.a.vote(cid, poll, [1])
    pair.b_member.vote(cid, poll, [0])
    while_partners = pair.a.poll_results(cid, poll)
    assert while_partners["voters"] == 2 and while_partners["counts"] == [1, 1]

    vote = {"type": "vote", "poll_id": poll, "choices": [0]}
    sent_at_ms = (int(pair.b_member.clock()) + 200) * 1000
    late = sealed_envelope(pair.b_member, cid, vote, kind="vote", sent_at_ms=sent_at_ms)
    assert api.call("POST", f"/channels/{cid}/messages", late, signer=pair.b_member.keys).status == 201
    pair.a.partners.end(pair.b_org)
    put_back(container, cid, pair)
    listed = {d["member_id"] for d in pair.a.client.roster(cid)["devices"]}
    assert member_of(pair.b_member) in listed  # the server still says they are in

    stored = next(m for m in pair.a.history(cid) if m["message_id"] == late["message_id"])
    assert stored["verified"] is True  # signed within the end's 300 s: theirs, but no vote now
    after = pair.a.poll_results(cid, poll)
    assert after["voter_ids"] == [member_of(pair.a)]
    assert after["voters"] == 1 and after["counts"] == [0, 1]


def test_another_device_of_ours_sees_the_end_before_it_tallies(pair: Pair, container: Any) -> None:
    """Bob, A's plain member in the group, never sent there and did not sign the end: his tally
    asks the partnerships again (someone of another organisation is in the channel), so the
    ended partner's vote drops out on his device too, as on the web app's next load."""
    cid = shared(pair)
    bob = pair.people.join("Bob")
    pair.a.add_member(cid, member_of(bob))
    poll = str(pair.a.create_poll(cid, "Réunion de chantier ?", ["Lundi", "Mardi"])["poll_id"])
    pair.a.vote(cid, poll, [1])
    pair.b_member.vote(cid, poll, [0])
    assert bob.poll_results(cid, poll)["voters"] == 2  # while partners, Bob's device knows B's member

    pair.a.partners.end(pair.b_org)
    put_back(container, cid, pair)
    after = bob.poll_results(cid, poll)
    assert after["voter_ids"] == [member_of(pair.a)]
    assert after["voters"] == 1 and after["counts"] == [0, 1]
