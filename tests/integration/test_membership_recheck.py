"""A live client judges senders on the kept membership log (docs/protocol.md, 14.2); a change no
frame announced (made while its connection was down) must not keep a new member refused."""

from __future__ import annotations

from typing import Any

from tests.integration.test_malicious_server_senders import let_in
from tests.support import People, SignedApi


def counted_log_fetches(messenger: Any) -> list[str]:
    """Every time the messenger's trust asks a channel's membership log again."""
    calls: list[str] = []
    membership = messenger.trust.membership

    def counting(channel_id: str, **options: Any) -> Any:
        calls.append(channel_id)
        return membership(channel_id, **options)

    messenger.trust.membership = counting
    return calls


def watching_bob(people: People) -> tuple[Any, str]:
    """Bob has read the owner's group, then listens on a live connection that missed every
    frame since (a reconnection's gap): what he keeps judges until something says otherwise."""
    bob = people.join("bob")
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    bob.read(cid)
    bob.rosters.watched = True
    return bob, cid


def test_a_member_added_while_no_frame_was_heard_is_read(people: People) -> None:
    bob, cid = watching_bob(people)
    dan = people.join("dan")
    people.owner.add_member(cid, people.info["dan"]["member_id"])
    dan.send_text(cid, "nouveau")
    read = {m.get("text"): m for m in bob.read(cid)["messages"]}
    assert read["nouveau"]["verified"] is True and read["nouveau"]["sender_name"] == "dan"
    assert "not_a_member" not in {w["code"] for w in bob.trust.take_warnings()}


def test_a_refusal_asks_the_log_again_at_most_every_two_seconds(
    people: People, container: Any, api: SignedApi
) -> None:
    bob, cid = watching_bob(people)
    eve = people.join("eve")  # certified, never added: the server lets her post
    let_in(container, people, cid, "eve")
    for i in range(5):
        eve.send_text(cid, f"faux {i}")
    fetches = counted_log_fetches(bob)
    read = bob.read(cid)["messages"]
    assert [m["error"] for m in read] == ["not a member of this channel: not shown"] * 5
    assert 1 <= len(fetches) <= 2  # the page's look, and one more for its refusals: not five
    looked = len(fetches)
    bob.read(cid)
    assert len(fetches) == looked  # within two seconds the kept state judges
    api.clock.advance(3)
    bob.read(cid)
    assert len(fetches) == looked + 1
