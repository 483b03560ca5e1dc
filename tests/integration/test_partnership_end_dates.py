"""A partnership's end has a date (docs/protocol.md, 22.7): through the real app on SQLite and
moto's DynamoDB with the real Python client on both sides. What the ended partner's members wrote
while partners stays theirs, on devices that first replay the group after the end too; what the
server attributes to them after the end, or seals to them after partnering again, does not."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client import issuing
from bocage.client.messenger import Messenger
from bocage.client.partners import PartnerRefused
from bocage.client.trust import Trust
from chalicelib.adapters.records import keys as record_keys
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.organisation import Plan
from chalicelib.domain.partners import parse_partner
from chalicelib.domain.statements import public_key_of
from tests.integration.test_partner_groups import _epoch, _sealed_to, member_of, shared
from tests.integration.test_partners import Pair, listed_ticket_key, pair, partnered, v2_end
from tests.support import People, SignedApi, sealed_envelope

__all__ = ["pair"]


def by_text(messenger: Messenger, cid: str) -> dict[str, dict[str, Any]]:
    return {m.get("text") or m["message_id"]: m for m in messenger.read(cid)["messages"]}


def codes(messenger: Messenger) -> set[str]:
    return {w["code"] for w in messenger.trust.take_warnings()}


def post_dated(messenger: Messenger, api: SignedApi, cid: str, text: str, sent_at_ms: int) -> str:
    """A message ``messenger``'s device signs as sent at ``sent_at_ms`` (its clock, or a lie)."""
    envelope = sealed_envelope(messenger, cid, {"type": "text", "text": text}, sent_at_ms=sent_at_ms)
    assert api.call("POST", f"/channels/{cid}/messages", envelope, signer=messenger.keys).status == 201
    return str(envelope["message_id"])


def put_back(container: Any, cid: str, pair: Pair) -> None:
    """What a server does to keep B's member in the group after the end: their membership and
    devices back in the records, with no signed entry."""
    records = ChannelRecords(container.store)
    member = ChannelMember(
        channel_id=cid, member_id=member_of(pair.b_member), role=ChannelRole.MEMBER, added_at=1, added_by="x"
    )
    records.save_membership(member)
    records.add_devices(cid, container.orgs.devices_of(pair.b_org, member_of(pair.b_member)))
    records.bump_roster(cid)


def test_members_added_after_the_end_replay_past_the_ended_partners_entries(
    pair: Pair, people: People
) -> None:
    """Bob and Carol join the group after the end: their devices never saw B, replay the log from
    entry 0 (B's member's add included, dated before the end) and read each other."""
    cid = shared(pair)
    pair.b_member.send_text(cid, "plans envoyés")
    pair.a.partners.end(pair.b_org)
    bob, carol = people.join("bob"), people.join("carol")
    for name in ("bob", "carol"):
        pair.a.add_member(cid, people.info[name]["member_id"])
    carol.send_text(cid, "bien reçu")
    read = by_text(bob, cid)["bien reçu"]
    assert read["verified"] is True and read["sender_verified"] is True
    log = bob.trust.events(cid)
    assert [e["op"] for e in log["events"]] == ["create", "add", "add", "add"]  # B's member's add verified
    assert {"membership_invalid", "not_a_member"}.isdisjoint(codes(bob))
    kept = bob.trust.state.partners[pair.b_org]
    assert kept["ended"] is True and len(kept["ends"]) == 1


def test_an_ended_partners_member_sends_nothing_dated_after_the_end(
    pair: Pair, people: People, api: SignedApi
) -> None:
    """B's member, with the server, signs messages dated later than the end: from 300 s after it,
    they are not theirs to send any more; before, they are."""
    cid = shared(pair)
    now_ms = int(pair.b_member.clock()) * 1000
    post_dated(pair.b_member, api, cid, "juste avant", now_ms + 200_000)
    late = post_dated(pair.b_member, api, cid, "bien après", now_ms + 3_600_000)
    pair.b_owner.partners.end(pair.a_org)
    pair.a.partners.listing()  # A's owner sees the end, dated by B's admin's signature
    ended_at = next(iter(pair.a.trust.state.partners[pair.b_org]["ends"].values()))
    assert abs(ended_at * 1000 - now_ms) <= 5_000
    shown = by_text(pair.a, cid)
    assert shown["juste avant"]["verified"] is True
    assert shown["juste avant"]["sender_name"] == "Dessinateur (Cabinet Ardoise)"
    assert shown[late]["verified"] is False and shown[late].get("text") is None
    assert shown[late]["error"] == "sent after leaving the channel: not shown"
    assert "not_a_member" in codes(pair.a)


def test_partnering_again_neither_seals_to_nor_hears_a_member_the_end_took_out(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """After a new partnership, a server that puts B's member back in the group without a signed
    entry gets them no key and their new messages are refused; their old ones stay theirs."""
    cid = shared(pair)
    pair.b_member.send_text(cid, "première époque")
    pair.a.partners.end(pair.b_org)
    api.clock.advance(400)
    partnered(pair)
    pair.b_member.trust.learn_partners()
    put_back(container, cid, pair)
    pair.a.send_text(cid, "deuxième époque")
    assert _sealed_to(container, cid, _epoch(pair.a, cid), pair.b_member.device_id) == []
    assert "not_in_membership" in codes(pair.a)
    late = pair.b_member.send_text(cid, "me revoilà")
    shown = by_text(pair.a, cid)
    assert shown["première époque"]["verified"] is True
    again = next(m for m in shown.values() if m["message_id"] == late["message_id"])
    assert again["verified"] is False and again["error"] == "sent after leaving the channel: not shown"


def test_an_end_that_does_not_verify_still_ends_dated_when_first_seen_and_never_moves(
    pair: Pair, container: Any
) -> None:
    """B's end arrives with a signature that does not verify (a server that rewrote it): it still
    ends the partnership (ending only takes trust away), dated when A first saw it, and a later
    listing does not move that date."""
    shared(pair)
    pair.b_owner.partners.end(pair.a_org)
    key = record_keys.partnership(pair.a_org, pair.b_org)
    item = container.store.get(*key)
    end = dict(item["end"])
    end["issued_at"] = int(end["issued_at"]) - 86_400  # backdated by a day: the signature breaks
    container.store.put({**item, "end": end})
    first_seen = pair.a.trust.now()
    [listed] = pair.a.partners.listing()
    assert listed["status"] == "ended" and "invalid_partnership" in codes(pair.a)
    [(ticket_key, ended_at)] = pair.a.trust.state.partners[pair.b_org]["ends"].items()
    assert ended_at == first_seen  # not the server's date, a day earlier
    pair.a.trust.now = lambda: first_seen + 86_400  # type: ignore[method-assign]
    pair.a.partners.listing()
    assert pair.a.trust.state.partners[pair.b_org]["ends"] == {ticket_key: ended_at}


def test_an_end_kept_before_ends_had_dates_is_dated_when_the_profile_is_opened(pair: Pair) -> None:
    """A profile written before 22.7 kept the ended invitations' keys only: opening it dates
    them now (as first seen), as the web app does, and keeps that date."""
    shared(pair)
    pair.a.partners.end(pair.b_org)
    trust = pair.a.trust
    kept = trust.state.partners[pair.b_org]
    [ticket_key] = kept["ends"]
    trust.state.partners[pair.b_org] = {k: v for k, v in kept.items() if k != "ends"} | {
        "ended_keys": [ticket_key]
    }
    trust.save()
    opened_at = trust.now() + 3_600
    again = Trust(trust.profile, trust.client, trust.keys, lambda: opened_at)
    assert again.state.partners[pair.b_org]["ends"] == {ticket_key: opened_at}
    assert Trust(trust.profile, trust.client, trust.keys, lambda: opened_at + 99).state.partners[pair.b_org][
        "ends"
    ] == {ticket_key: opened_at}


def two_partnerships(
    pair: Pair, container: Any, api: SignedApi, *, legacy: bool = False
) -> tuple[str, dict[str, Any], Any]:
    """A and B partner, B ends it, a day later they partner again and share a new group: the
    first partnership's signed end (as an old client signed it: v2, if ``legacy``), which A's
    owner never saw (the second acceptance replaced the record first)."""
    partnered(pair)
    pair.b_owner.partners.listing()
    pair.b_owner.partners.end(pair.a_org)
    key = record_keys.partnership(pair.a_org, pair.b_org)
    first_end = dict(container.store.get(*key)["end"])
    if legacy:
        signer = pair.b_owner.keys
        first_end = v2_end(
            bytes(signer.signing), signer.device_id, pair.b_org, pair.a_org, first_end["issued_at"]
        )
    api.clock.advance(86_400)
    partnered(pair)
    pair.b_owner.partners.listing()
    pair.b_member.trust.learn_partners()
    cid = str(pair.a.create_channel("group", "Deuxième chantier")["channel_id"])
    pair.a.add_member(cid, member_of(pair.b_member))
    return cid, first_end, key


def test_an_earlier_partnerships_end_served_again_ends_nothing(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """The server shows the first partnership's genuine end as the second's (to end it a day
    back): it names the first invitation, so the second stays active, reported, and B's member's
    message of the second partnership reads on a device that replays everything again; the
    second's own end then ends it, dated by its signature."""
    cid, first_end, key = two_partnerships(pair, container, api)
    assert first_end["purpose"] == "bocage/partnership-end/v3"
    pair.b_member.send_text(cid, "deuxième époque")
    api.clock.advance(10)
    genuine = container.store.get(*key)
    container.store.put({**genuine, "end": first_end})
    pair.a.trust.state.logs.pop(cid, None)  # as a new device of A: nothing kept of the group
    pair.a.trust.save()
    [listed] = pair.a.partners.listing()
    assert (listed["server_status"], listed["status"]) == ("ended", "active")
    warnings = pair.a.trust.take_warnings()
    assert [w["code"] for w in warnings] == ["invalid_partnership"]
    assert "names another invitation" in warnings[0]["message"]
    assert pair.a.trust.state.partners[pair.b_org]["ends"] == {}  # nothing dated
    shown = by_text(pair.a, cid)["deuxième époque"]
    assert shown["verified"] is True and shown["sender_name"] == "Dessinateur (Cabinet Ardoise)"
    container.store.put(genuine)  # the server lets the real end through
    api.clock.advance(50)
    real = pair.b_owner.partners.end(pair.a_org)["end"]
    [listed] = pair.a.partners.listing()
    assert listed["status"] == "ended" and pair.a.trust.take_warnings() == []
    current = listed["ticket"]["ticket_key"]
    assert real["ticket_key"] == current != first_end["ticket_key"]
    assert pair.a.trust.state.partners[pair.b_org]["ends"] == {current: real["issued_at"]}


def test_an_earlier_partnerships_end_served_after_the_real_one_was_seen_is_caught(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """B's member signs a message dated an hour ahead, the partnership ends, A's owner sees it;
    then the server shows the first partnership's end instead: still ended (a rollback, the
    date kept), and the message is still refused."""
    cid, first_end, key = two_partnerships(pair, container, api)
    now_ms = int(pair.b_member.clock()) * 1000
    late = post_dated(pair.b_member, api, cid, "bien après la fin", now_ms + 3_600_000)
    pair.b_owner.partners.end(pair.a_org)
    pair.a.partners.listing()
    ends = dict(pair.a.trust.state.partners[pair.b_org]["ends"])
    container.store.put({**container.store.get(*key), "end": first_end})
    [listed] = pair.a.partners.listing()
    assert listed["status"] == "ended" and "partnership_rollback" in codes(pair.a)
    assert pair.a.trust.state.partners[pair.b_org]["ends"] == ends
    shown = next(m for m in pair.a.read(cid)["messages"] if m["message_id"] == late)
    assert shown["verified"] is False and shown["error"] == "sent after leaving the channel: not shown"


def test_an_earlier_partnerships_v2_end_served_again_is_dated_when_seen(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """The first partnership's end is a v2 one (an old client's, naming no invitation), served
    as the second's: it ends the partnership, but dated when first seen, and reported; B's
    member's message of the second partnership still reads on a device that replays again."""
    cid, first_end, key = two_partnerships(pair, container, api, legacy=True)
    pair.b_member.send_text(cid, "deuxième époque")
    api.clock.advance(10)
    container.store.put({**container.store.get(*key), "end": first_end})
    pair.a.trust.state.logs.pop(cid, None)  # as a new device of A: nothing kept of the group
    pair.a.trust.save()
    first_seen = pair.a.trust.now()
    [listed] = pair.a.partners.listing()
    assert listed["status"] == "ended" and "invalid_partnership" in codes(pair.a)
    assert first_seen in pair.a.trust.state.partners[pair.b_org]["ends"].values()
    shown = by_text(pair.a, cid)["deuxième époque"]
    assert shown["verified"] is True and shown["sender_name"] == "Dessinateur (Cabinet Ardoise)"


def test_an_earlier_partnerships_v2_end_cannot_hide_the_real_one(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """B's member signs a message dated an hour ahead, then the partnership ends, and the server
    shows the first partnership's v2 end instead of the real one: the message is still refused."""
    cid, first_end, key = two_partnerships(pair, container, api, legacy=True)
    now_ms = int(pair.b_member.clock()) * 1000
    late = post_dated(pair.b_member, api, cid, "bien après la fin", now_ms + 3_600_000)
    pair.b_owner.partners.end(pair.a_org)
    container.store.put({**container.store.get(*key), "end": first_end})
    pair.a.partners.listing()
    shown = next(m for m in pair.a.read(cid)["messages"] if m["message_id"] == late)
    assert shown["verified"] is False and shown["error"] == "sent after leaving the channel: not shown"


def test_a_member_the_end_took_out_cannot_ring_after_partnering_again(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """Calls are live acts judged on the cut membership too (22.7): after a new partnership, B's
    member, still in the group's log from before the end, rings A's owner: refused."""
    from bocage.client.calls import UntrustedSignal
    from tests.integration.test_malicious_server_calls import sealed_by

    for org_id in (pair.a_org, pair.b_org):
        container.orgs.set_plan(org_id, Plan.PRO)
    cid = shared(pair)
    ring = sealed_by(pair.b_member, cid, pair.a)
    assert pair.a.calls.open(ring).signal.value == "ring"  # while partners
    pair.a.partners.end(pair.b_org)
    api.clock.advance(400)
    partnered(pair)
    pair.b_member.trust.learn_partners()
    put_back(container, cid, pair)  # the server lets them in again, without a signed entry
    again = sealed_by(pair.b_member, cid, pair.a)
    with pytest.raises(UntrustedSignal, match="not in the channel's signed membership"):
        pair.a.calls.open(again)


def test_an_admin_signs_no_end_for_an_invitation_the_listing_alone_names(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """The first partnership ended; A posts a new invitation. B's admin ends the old one again
    while the server lists the new invitation's key in its entry (to keep an end of a partnership
    not yet begun): B's device signs nothing. Had it, that end served once the new partnership
    began would date it before it began: A dates it when first seen, reported, and B's member's
    message of the new partnership reads on a device that replays it."""
    partnered(pair)
    pair.b_owner.partners.listing()
    pair.b_owner.partners.end(pair.a_org)
    api.clock.advance(3_600)
    invitation = pair.a.partners.invite()
    new_key = public_key_of(parse_partner(invitation["code"]).ticket_seed)  # the server stores it
    honest, signed = pair.b_owner.client.partners, list[dict[str, Any]]()
    lying = [{**e, "ticket": {**e["ticket"], "ticket_key": new_key}} for e in honest()]
    pair.b_owner.client.partners = lambda: lying  # type: ignore[method-assign]

    def recording(org_id: str, statement: dict[str, Any]) -> dict[str, Any]:
        signed.append(statement)
        return {}

    pair.b_owner.client.end_partner = recording  # type: ignore[method-assign]
    with pytest.raises(PartnerRefused, match="its invitation does not verify"):
        pair.b_owner.partners.end(pair.a_org)
    assert signed == []
    presigned_at = pair.b_owner.trust.now()
    presigned = issuing.partnership_end(
        pair.b_owner.keys.signing, pair.b_owner.keys.device_id, pair.b_org, pair.a_org, new_key, presigned_at
    )
    api.clock.advance(86_400)
    pair.b_owner.client.partners = honest  # type: ignore[method-assign]
    pair.b_owner.partners.accept(invitation["code"])
    assert pair.a.partners.listing()[0]["status"] == "active"
    pair.b_member.trust.learn_partners()
    cid = str(pair.a.create_channel("group", "Deuxième chantier")["channel_id"])
    pair.a.add_member(cid, member_of(pair.b_member))
    pair.b_member.send_text(cid, "deuxième époque, honnête")
    api.clock.advance(60)
    key = record_keys.partnership(pair.a_org, pair.b_org)
    container.store.put({**container.store.get(*key), "end": presigned})
    pair.a.trust.state.logs.pop(cid, None)  # as a device replaying the group
    pair.a.trust.save()
    first_seen = pair.a.trust.now()
    [listed] = pair.a.partners.listing()
    warnings = pair.a.trust.take_warnings()
    assert listed["status"] == "ended" and [w["code"] for w in warnings] == ["invalid_partnership"]
    assert "dated before the partnership began" in warnings[0]["message"]
    assert pair.a.trust.state.partners[pair.b_org]["ends"][new_key] == first_seen != presigned_at
    shown = by_text(pair.a, cid)["deuxième époque, honnête"]
    assert shown["verified"] is True and shown["sender_name"] == "Dessinateur (Cabinet Ardoise)"


def test_an_earlier_v2_end_with_our_statement_left_out_is_dated_when_seen(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """As above with a v2 end, the server also leaving A's own statement out of the entry (so
    that nothing of the second partnership verifies in this listing): A's device verified that
    statement before and kept when the partnership began, so the end is still dated when first
    seen, reported, and B's member's message of the second partnership still reads."""
    cid, first_end, key = two_partnerships(pair, container, api, legacy=True)
    pair.b_member.send_text(cid, "deuxième époque")
    api.clock.advance(10)
    item = container.store.get(*key)
    statements = {org: s for org, s in item["statements"].items() if org != pair.a_org}
    container.store.put({**item, "end": first_end, "statements": statements})
    pair.a.trust.state.logs.pop(cid, None)  # as a device replaying the group
    pair.a.trust.save()
    first_seen = pair.a.trust.now()
    [listed] = pair.a.partners.listing()
    assert listed["status"] == "ended" and "invalid_partnership" in codes(pair.a)
    assert list(pair.a.trust.state.partners[pair.b_org]["ends"].values()) == [first_seen]
    shown = by_text(pair.a, cid)["deuxième époque"]
    assert shown["verified"] is True and shown["sender_name"] == "Dessinateur (Cabinet Ardoise)"


def test_our_pending_invitations_end_seen_late_is_reported_only_where_the_partner_was_pinned(
    pair: Pair, api: SignedApi
) -> None:
    """A's and B's first partnership ended; B accepts A's second invitation and A's owner ends it
    before countersigning it (nothing pinned B's root through it). A device of A's that keeps
    nothing of B first lists it an hour later: ended, dated then, not reported (that date changes
    nothing it judges). A device of A's that pinned B's root in the first partnership reports it."""
    partnered(pair)
    pinned = pair.people.join("Secrétaire")
    assert pinned.partners.listing(confirm=False)[0]["status"] == "active"
    pair.a.partners.end(pair.b_org)
    assert pinned.partners.listing(confirm=False)[0]["status"] == "ended"
    api.clock.advance(400)
    pair.b_owner.partners.accept(pair.a.partners.invite()["code"])
    assert pair.a.partners.end(pair.b_org)["status"] == "ended"
    key = listed_ticket_key(pair.a, pair.b_org)
    api.clock.advance(3_600)
    fresh = pair.people.join("Comptable")
    [listed] = fresh.partners.listing(confirm=False)
    assert (listed["status"], codes(fresh)) == ("ended", set())
    assert fresh.trust.state.partners[pair.b_org]["ends"] == {key: fresh.trust.now()}
    [listed] = pinned.partners.listing(confirm=False)
    warnings = pinned.trust.take_warnings()
    assert listed["status"] == "ended" and [w["code"] for w in warnings] == ["invalid_partnership"]
    assert "never verified our statement of this partnership" in warnings[0]["message"]
    assert pinned.trust.state.partners[pair.b_org]["ends"][key] == pinned.trust.now()


def test_an_accepted_partnerships_end_with_the_accepters_statement_left_out_is_reported(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """B's owner ends an active partnership; an hour later the server leaves B's own statement out
    of the entry, as if it were pending, for a device of B's that keeps nothing of A: the end is
    still reported (an honest accepter's entry always carries its own statement)."""
    partnered(pair)
    pair.b_owner.partners.listing(confirm=False)
    pair.b_owner.partners.end(pair.a_org)
    api.clock.advance(3_600)
    key = record_keys.partnership(pair.a_org, pair.b_org)
    item = container.store.get(*key)
    statements = {org: s for org, s in item["statements"].items() if org != pair.b_org}
    container.store.put({**item, "statements": statements})
    [listed] = pair.b_member.partners.listing(confirm=False)
    warnings = pair.b_member.trust.take_warnings()
    assert listed["status"] == "ended" and [w["code"] for w in warnings] == ["invalid_partnership"]
    assert "never verified our statement of this partnership" in warnings[0]["message"]
