"""Nothing a device signs after its revocation, or after its member's removal from the
organisation, counts (docs/protocol.md, 13.7 and 14.2): through the real app, on SQLite and
moto's DynamoDB, with the real Python client. A thief holding a revoked phone, with a server
that stores what it posts, gets nothing shown under the owner's name; what the phone sent
before stays theirs."""

from __future__ import annotations

from typing import Any

from bocage.client.messenger import Messenger
from tests.integration.test_partner_groups import member_of, shared
from tests.integration.test_partners import Pair, pair
from tests.support import People, SignedApi, sealed_envelope

__all__ = ["pair"]


def post_dated(
    messenger: Messenger,
    api: SignedApi,
    cid: str,
    content: dict[str, Any],
    sent_at_ms: int,
    kind: str = "message",
) -> str:
    """A message ``messenger``'s device signs as sent at ``sent_at_ms``, stored while the server
    still takes it: the same record a complicit server would store after the revocation."""
    envelope = sealed_envelope(messenger, cid, content, kind=kind, sent_at_ms=sent_at_ms)
    assert api.call("POST", f"/channels/{cid}/messages", envelope, signer=messenger.keys).status == 201
    return str(envelope["message_id"])


def by_id(messenger: Messenger, cid: str) -> dict[str, dict[str, Any]]:
    return {m["message_id"]: m for m in messenger.read(cid)["messages"]}


def refusals(messenger: Messenger) -> list[dict[str, Any]]:
    return [w for w in messenger.trust.take_warnings() if w["code"] == "not_a_member"]


def test_a_message_dated_after_its_device_was_revoked_is_nobodys(people: People, api: SignedApi) -> None:
    """Bob's phone signs a text and a reaction dated an hour ahead, and one within the 300 s the
    clocks are allowed; then it is stolen and revoked. Only the one dated before counts."""
    bob = people.join("bob")
    bob_id = people.info["bob"]["member_id"]
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    people.owner.add_member(cid, bob_id)
    now_ms = int(bob.clock()) * 1000
    early = post_dated(bob, api, cid, {"type": "text", "text": "juste avant"}, now_ms + 200_000)
    late = post_dated(bob, api, cid, {"type": "text", "text": "volé"}, now_ms + 3_600_000)
    reaction = {"type": "reaction", "target": early, "emoji": "👍", "remove": False}
    liked = post_dated(bob, api, cid, reaction, now_ms + 3_600_000, kind="reaction")
    stolen = bob.device_id
    people.owner.trust.revoke(stolen)
    people.owner.trust.view(refresh=True)
    shown = by_id(people.owner, cid)
    assert shown[early]["verified"] is True and shown[early]["text"] == "juste avant"
    assert shown[early]["sender_member"] == bob_id and shown[early]["sender_verified"] is True
    for refused in (late, liked):
        assert shown[refused]["verified"] is False and "content" not in shown[refused]
        assert shown[refused]["sender_verified"] is False
        assert shown[refused]["error"] == "sent after its device was revoked: not shown"
    warned = refusals(people.owner)
    assert {w["device_id"] for w in warned} == {stolen}
    assert all("sent after its device was revoked" in w["message"] for w in warned)


def test_a_message_dated_after_its_member_was_removed_is_nobodys(people: People, api: SignedApi) -> None:
    """Bob is removed from the organisation: his message dated later than the removal (his
    device was not revoked by itself) is refused; his earlier one stays his."""
    bob = people.join("bob")
    bob_id = people.info["bob"]["member_id"]
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    people.owner.add_member(cid, bob_id)
    now_ms = int(bob.clock()) * 1000
    early = post_dated(bob, api, cid, {"type": "text", "text": "avant le départ"}, now_ms)
    late = post_dated(bob, api, cid, {"type": "text", "text": "après le départ"}, now_ms + 3_600_000)
    people.owner.trust.remove(bob_id)
    people.owner.trust.view(refresh=True)
    shown = by_id(people.owner, cid)
    assert shown[early]["verified"] is True and shown[early]["sender_member"] == bob_id
    assert shown[late]["verified"] is False and "content" not in shown[late]
    assert shown[late]["error"] == "sent after its member was removed from the organisation: not shown"
    assert any("removed from the organisation" in w["message"] for w in refusals(people.owner))


def test_a_partner_s_message_dated_after_its_own_organisation_revoked_the_device_is_nobodys(
    pair: Pair, api: SignedApi
) -> None:
    """The firm (a partner, 22.6) revokes its architect's phone: in the town hall's shared group,
    what the phone signed dated later is refused by the town hall's client; earlier, it is theirs."""
    cid = shared(pair)
    now_ms = int(pair.b_member.clock()) * 1000
    early = post_dated(pair.b_member, api, cid, {"type": "text", "text": "plans envoyés"}, now_ms)
    late = post_dated(pair.b_member, api, cid, {"type": "text", "text": "devis modifié"}, now_ms + 3_600_000)
    pair.b_owner.trust.revoke(pair.b_member.device_id)
    pair.a.trust.view(refresh=True)
    shown = by_id(pair.a, cid)
    assert shown[early]["verified"] is True and shown[early]["sender_member"] == member_of(pair.b_member)
    assert shown[late]["verified"] is False and "content" not in shown[late]
    assert shown[late]["error"] == "sent after its device was revoked: not shown"
    assert [w["device_id"] for w in refusals(pair.a)] == [pair.b_member.device_id]
