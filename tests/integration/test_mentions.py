"""Mentions (docs/protocol.md, section 7): the member ids a text mentions travel inside the
sealed content, so the mentioned member's device knows, and the server, which stores only the
ciphertext, does not learn who was mentioned."""

from __future__ import annotations

from typing import Any

from tests.support import People, scan_all


def test_a_mention_reaches_the_reader_and_never_the_server(people: People, container: Any) -> None:
    alice, bob = people.join("alice"), people.join("bob")
    bob_id = people.info["bob"]["member_id"]
    cid = alice.create_channel("group", "Conseil")["channel_id"]
    alice.add_member(cid, bob_id)
    sent = alice.send_text(cid, "@bob les plans, s'il te plaît", mentions=[bob_id, bob_id])["message_id"]
    plain = alice.send_text(cid, "Merci")["message_id"]
    shown = {m["message_id"]: m for m in bob.read(cid)["messages"]}
    assert shown[sent]["mentions"] == [bob_id]  # each member once
    assert "mentions" not in shown[plain]
    stored = [item for item in scan_all(container.store) if item.get("message_id") == sent]
    assert stored, "the message is stored"
    assert all(bob_id not in repr(item) for item in stored)
