"""Members of a partner organisation in a group (docs/protocol.md, 22.6): through the real app on
SQLite and moto's DynamoDB, with the real Python client on both sides, what a third organisation
cannot reach, what each side bills, and what a malicious server cannot make a client seal to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bocage.client.api import ApiError
from bocage.client.issuing import membership_entry
from bocage.client.membership import MembershipRefused
from bocage.client.messenger import Messenger
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.partners import PartnerRecords
from chalicelib.adapters.records.sender_keys import SenderKeys
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.organisation import Plan, Role
from chalicelib.domain.principal import Principal
from chalicelib.domain.statements import public_key_of, sign_statement
from chalicelib.services.shared_groups import SharedGroups
from tests.integration.test_partners import Pair, pair, partnered
from tests.support import SignedApi, messenger_for, plant_addition, sealed_envelope, ws_event
from tests.trust_vectors import box_public, device_id

__all__ = ["pair"]  # the fixture, shared with tests/integration/test_partners.py


def shared(pair: Pair, *, kind: str = "group", name: str = "Chantier de l'école") -> str:
    """A and B are partners (both sides verified) and A's owner adds B's member to a new group."""
    partnered(pair)
    pair.b_owner.partners.listing()
    cid = str(pair.a.create_channel(kind, name)["channel_id"])
    pair.a.add_member(cid, member_of(pair.b_member))
    return cid


def owner_adds(
    pair: Pair, container: Any, api: SignedApi, cid: str, who: Messenger, *, host: str, devices_from: str
) -> None:
    """What a malicious server writes: an ``add`` of ``who`` signed by A's owner's real device
    after the log's head, naming ``host``, with ``who``'s devices (of ``devices_from``) in the roster."""
    head = pair.a.client.membership_log(cid, 0)[0][-1]
    plant_addition(
        container,
        pair.people.keys["owner"],
        org_id=host,
        channel_id=cid,
        previous=head,
        member_id=member_of(who),
        now=api.clock.now(),
        devices_from=devices_from,
    )


def member_of(messenger: Messenger) -> str:
    return str(messenger.info["member_id"])


def texts(messenger: Messenger, cid: str) -> list[str]:
    return [m.get("text") for m in messenger.read(cid)["messages"] if m.get("kind") == "message"]


def third_org(api: SignedApi, operator: Any, tmp_path: Path) -> Messenger:
    created = api.create_org(operator, "Troisième")
    keys, reply = api.activate(created["activation_code"], "Tiers")
    third: Messenger = messenger_for(api, keys, tmp_path / "third", dict(reply.body))
    return third


def test_a_partner_member_reads_and_answers_in_a_group_shown_with_their_organisation(pair: Pair) -> None:
    cid = shared(pair)
    pair.a.send_text(cid, "Réunion lundi à 9 h")
    assert cid in [c["channel_id"] for c in pair.b_member.channels()]
    [read] = pair.b_member.read(cid)["messages"]
    assert read["text"] == "Réunion lundi à 9 h" and read["verified"]
    assert read["sender_name"] == "Maire (Mairie de Bocage)"
    pair.b_member.send_text(cid, "J'y serai")
    answer = pair.a.read(cid)["messages"][-1]
    assert answer["text"] == "J'y serai" and answer["verified"]
    assert answer["sender_name"] == "Dessinateur (Cabinet Ardoise)"
    assert pair.a.trust.take_warnings() == [] and pair.b_member.trust.take_warnings() == []


def test_a_partner_member_gets_live_pushes_and_hears_the_end(pair: Pair, api: SignedApi, push: Any) -> None:
    cid = shared(pair)
    assert api.ws_connect(pair.b_member.keys, "c-drafter")["statusCode"] == 200
    assert api.ws_connect(pair.people.keys["owner"], "c-mayor")["statusCode"] == 200
    envelope = sealed_envelope(pair.a, cid, {"type": "text", "text": "en direct"})
    body = json.dumps({"action": "send", "envelope": envelope})
    api.ws("ws_message", ws_event("$default", "c-mayor", body=body))
    (delivered,) = push.to("c-drafter", "message")
    assert pair.b_member.open(delivered["message"])["text"] == "en direct"
    pair.a.partners.end(pair.b_org)
    left = [f for f in push.to("c-mayor", "left") if f["member_id"] == member_of(pair.b_member)]
    assert left and left[0]["channel_id"] == cid  # A's devices re-key without B's member


def test_a_connect_reads_a_partnership_only_for_a_partner_s_shared_groups(
    pair: Pair, api: SignedApi, container: Any
) -> None:
    """What a WebSocket connect reads for its channels: one query of the member's memberships,
    and one partnership get per other organisation hosting some of them (is it still active?).
    A's owner, in a group with B's member, reads nothing more than a member never partnered
    (tests/integration/test_cost_calls.py pins that case); B's member reads A's partnership."""
    cid = shared(pair)
    pair.a.create_channel("group", "Bureau")  # a second channel of A's owner: still one query
    counting = CountingStore(container.store)
    container.channels._records = ChannelRecords(counting)
    container.channels._shared = SharedGroups(counting, container.orgs)
    container.channels.live_channel_ids(_principal(pair.a))
    assert dict(counting.reset()) == {"query": 1}
    heard = container.channels.live_channel_ids(_principal(pair.b_member))
    assert heard == [cid] and dict(counting.reset()) == {"query": 1, "get": 1}
    assert api.ws_connect(pair.b_member.keys, "c-drafter")["statusCode"] == 200


def _principal(messenger: Messenger) -> Principal:
    info = messenger.info
    return Principal(
        org_id=info["org_id"],
        member_id=info["member_id"],
        device_id=messenger.keys.device_id,
        role=Role.MEMBER,
    )


def test_a_partner_renamed_by_the_server_keeps_the_name_first_seen(pair: Pair, api: SignedApi) -> None:
    cid = shared(pair)
    assert api.call("PUT", "/org", {"name": "Mairie de Bocage"}, signer=pair.b_keys).status == 200
    pair.a.partners.listing()  # the server now calls B by A's own name
    pair.b_member.send_text(cid, "Signé : la mairie ?")
    [shown] = pair.a.read(cid)["messages"]
    assert shown["verified"] and shown["sender_name"] == "Dessinateur (Cabinet Ardoise)"
    assert "partner_renamed" in {w["code"] for w in pair.a.trust.take_warnings()}


def test_who_may_be_added_where(pair: Pair, api: SignedApi, operator: Any, tmp_path: Path) -> None:
    stranger = third_org(api, operator, tmp_path)
    cid = shared(pair)
    group = pair.a.create_channel("group", "Autre")["channel_id"]
    with pytest.raises(ApiError) as unknown:  # a third organisation's member: nobody here
        pair.a.add_member(group, member_of(stranger))
    assert unknown.value.status == 404
    with pytest.raises(ApiError) as author:
        pair.a.add_member(group, member_of(pair.b_member), role="author")
    assert author.value.status == 403 and "never a channel's author" in str(author.value)
    tribe = pair.a.create_channel("tribe", "Annonces")["channel_id"]
    with pytest.raises(ApiError) as closed:  # A's statement did not allow tribes
        pair.a.add_member(tribe, member_of(pair.b_member))
    assert closed.value.status == 403 and "allow_tribes" in str(closed.value)
    with pytest.raises(ApiError) as manage:  # a partner's member manages nothing of A's
        pair.b_member.client.rename_channel(cid, "Renommé")
    assert manage.value.status == 403
    pair.a.partners.end(pair.b_org)
    with pytest.raises(ApiError) as ended:
        pair.a.add_member(group, member_of(pair.b_member))
    assert ended.value.status == 404


def test_two_partners_that_are_not_partners_of_each_other_do_not_share_a_group(
    pair: Pair, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    third = third_org(api, operator, tmp_path)
    cid = shared(pair)  # B's member is in it
    invitation = pair.a.partners.invite()
    third.partners.accept(invitation["code"])
    pair.a.partners.listing()  # A partners with C too, B and C are not partners
    with pytest.raises(ApiError) as refused:
        pair.a.add_member(cid, member_of(third))
    assert refused.value.status == 409 and "not a partner of Cabinet Ardoise" in str(refused.value)
    group = pair.a.create_channel("group", "Avec le tiers")["channel_id"]
    pair.a.add_member(group, member_of(third))  # alone with A's members: fine
    with pytest.raises(ApiError) as reverse:
        pair.a.add_member(group, member_of(pair.b_member))
    assert reverse.value.status == 409 and "not a partner of Troisième" in str(reverse.value)


def test_a_tribe_takes_a_partner_member_when_the_host_allows_tribes(pair: Pair) -> None:
    invitation = pair.a.partners.invite(allow_tribes=True)
    pair.b_owner.partners.accept(invitation["code"])
    pair.a.partners.listing()
    pair.b_owner.partners.listing()
    tribe = pair.a.create_channel("tribe", "Annonces")["channel_id"]
    pair.a.add_member(tribe, member_of(pair.b_member))
    pair.a.send_text(tribe, "Fermeture de la mairie vendredi")
    assert texts(pair.b_member, tribe) == ["Fermeture de la mairie vendredi"]
    assert pair.a.trust.take_warnings() == [] and pair.b_member.trust.take_warnings() == []


def test_ending_the_partnership_removes_partner_members_and_rekeys(pair: Pair, api: SignedApi) -> None:
    cid = shared(pair)
    pair.a.send_text(cid, "avant")
    assert texts(pair.b_member, cid) == ["avant"]
    epoch = _epoch(pair.a, cid)
    pair.b_owner.partners.end(pair.a_org)  # either side ends it
    assert cid not in [c["channel_id"] for c in pair.b_member.channels()]
    for path in (f"/channels/{cid}/messages", f"/channels/{cid}/roster", f"/channels/{cid}/membership"):
        reply = api.call("GET", path, signer=pair.b_member.keys)
        assert reply.status == 404, (path, reply.body)
    [channel] = [c for c in pair.a.channels() if c["channel_id"] == cid]
    assert channel["epoch"] > epoch
    roster = pair.a.client.roster(cid)
    assert pair.b_member.device_id not in [d["device_id"] for d in roster["devices"]]
    pair.a.send_text(cid, "après")
    assert texts(pair.a, cid) == ["avant", "après"]


def test_the_partner_removing_or_revoking_its_member_takes_them_out_of_a_group(pair: Pair) -> None:
    cid = shared(pair)
    b_member = member_of(pair.b_member)
    pair.b_owner.trust.revoke(pair.b_member.device_id)
    assert pair.b_member.device_id not in [d["device_id"] for d in pair.a.client.roster(cid)["devices"]]
    pair.b_owner.trust.remove(b_member)
    members = pair.a.client.request("GET", f"/channels/{cid}/members")["members"]
    assert b_member not in [m["member_id"] for m in members]


def test_a_shared_group_keeps_messages_for_the_shortest_of_both_settings(pair: Pair, api: SignedApi) -> None:
    cid = shared(pair)
    assert pair.a.client.request("GET", f"/channels/{cid}/retention")["retention_days"] == 90
    reply = api.call("PUT", "/retention", {"duration": "7d"}, signer=pair.b_keys)  # B's own setting
    assert reply.status == 200, reply.body
    shown = pair.a.client.request("GET", f"/channels/{cid}/retention")
    assert shown["retention_days"] == 7 and shown["org_retention_days"] == 7
    receipt = pair.a.send_text(cid, "court")
    assert receipt["expires_at"] - api.clock.now() <= 7 * 86400
    too_long = api.call(
        "PUT", f"/channels/{cid}/retention", {"duration": "30d"}, signer=pair.people.keys["owner"]
    )
    assert too_long.status == 400


def test_after_the_end_a_shared_group_keeps_the_ended_partners_shorter_retention(
    pair: Pair, api: SignedApi
) -> None:
    cid = shared(pair)
    assert api.call("PUT", "/retention", {"duration": "7d"}, signer=pair.b_keys).status == 200
    pair.b_member.send_text(cid, "écrit sous 7 jours")
    pair.a.partners.end(pair.b_org)
    shown = pair.a.client.request("GET", f"/channels/{cid}/retention")
    assert shown["org_retention_days"] == 7  # not back to A's 90 for what B's member wrote
    [channel] = [c for c in pair.a.client.request("GET", "/channels")["channels"] if c["channel_id"] == cid]
    assert channel["partner_orgs"] == [pair.b_org]


def test_a_partner_member_leaves_with_their_own_signed_entry_and_old_messages_stay_readable(
    pair: Pair,
) -> None:
    cid = shared(pair)
    pair.b_member.send_text(cid, "bonjour")
    pair.b_member.remove_member(cid, member_of(pair.b_member))  # a `leave` signed by B's device
    assert member_of(pair.b_member) not in pair.a.trust.membership(cid).members
    pair.a.send_text(cid, "au revoir")
    assert texts(pair.a, cid) == ["bonjour", "au revoir"]
    assert cid not in [c["channel_id"] for c in pair.b_member.channels()]
    pair.a.partners.end(pair.b_org)
    [old] = [m for m in pair.a.read(cid)["messages"] if m.get("text") == "bonjour"]
    assert old["verified"] and old["sender_name"] == "Dessinateur (Cabinet Ardoise)"  # written before
    assert pair.a.trust.take_warnings() == []


def test_after_a_partner_member_leaves_the_hosts_admin_still_manages_the_group(pair: Pair) -> None:
    deputy = pair.people.join("adjointe", "admin")  # an admin of A, not the group's author
    ana = pair.people.join("ana")
    cid = shared(pair)
    pair.a.add_member(cid, member_of(deputy))
    pair.b_member.remove_member(cid, member_of(pair.b_member))  # B's member leaves: the last entry
    assert member_of(pair.b_member) not in deputy.trust.membership(cid).members  # kept as the head
    deputy.add_member(cid, member_of(ana))  # the host is still A on the deputy's next sync
    for messenger in (deputy, pair.a):
        assert member_of(ana) in messenger.trust.membership(cid).members
        assert messenger.trust.take_warnings() == []
    entries, _ = pair.a.client.membership_log(cid, 0)
    assert {e["org_id"] for e in entries} == {pair.a_org}  # B's leave names the host's organisation


def test_a_guest_reads_a_group_holding_a_partners_member_without_failing(pair: Pair) -> None:
    guest = pair.people.join("visiteuse", "guest")  # GET /partners answers a guest 403
    cid = shared(pair)
    pair.a.add_member(cid, member_of(guest))
    pair.a.send_text(cid, "pour tous")
    pair.b_member.send_text(cid, "réponse")
    shown = guest.read(cid)["messages"]  # the read goes on: B's member is someone it cannot verify
    assert "réponse" not in [m.get("text") for m in shown if m.get("verified")]
    assert {w["code"] for w in guest.trust.take_warnings()} & {"membership_invalid", "uncertified_device"}


def test_a_partner_member_who_left_by_a_signed_entry_can_be_added_again(pair: Pair) -> None:
    cid = shared(pair)
    pair.b_member.remove_member(cid, member_of(pair.b_member))  # their own signed leave
    pair.a.add_member(cid, member_of(pair.b_member))  # nothing in the log holds them: no 409
    pair.a.send_text(cid, "de retour")
    assert texts(pair.b_member, cid) == ["de retour"]
    assert member_of(pair.b_member) in pair.a.trust.membership(cid).members
    assert pair.a.trust.take_warnings() == []


def test_partnering_again_does_not_bring_back_a_member_the_end_took_out(pair: Pair) -> None:
    cid = shared(pair)
    pair.a.partners.end(pair.b_org)
    partnered(pair)  # a new partnership: the log still holds B's member (the end signs nothing)
    with pytest.raises(ApiError) as again:
        pair.a.add_member(cid, member_of(pair.b_member))
    assert again.value.status == 409 and "create a new group" in str(again.value)


def test_the_host_removes_a_partner_member_with_a_signed_entry(pair: Pair, api: SignedApi) -> None:
    cid = shared(pair)
    epoch = _epoch(pair.a, cid)
    pair.a.remove_member(cid, member_of(pair.b_member))
    assert member_of(pair.b_member) not in pair.a.trust.membership(cid).members
    assert _epoch(pair.a, cid) > epoch
    assert api.call("GET", f"/channels/{cid}/messages", signer=pair.b_member.keys).status == 404
    assert pair.a.trust.take_warnings() == []


def test_the_retention_job_follows_the_partners_change(pair: Pair, api: SignedApi, container: Any) -> None:
    cid = shared(pair)
    pair.a.send_text(cid, "gardé 90 jours, puis 7")
    container.retention.run()
    assert api.call("PUT", "/retention", {"duration": "7d"}, signer=pair.b_keys).status == 200
    report = container.retention.run()
    assert pair.a_org in report.finished and report.restamped >= 1  # A's channels swept again
    api.clock.advance(8 * 86400)
    assert texts(pair.a, cid) == []


def test_each_person_is_billed_once_by_their_own_organisation(pair: Pair, container: Any) -> None:
    cid = shared(pair)
    pair.b_member.send_text(cid, "présent")
    for org_id in (pair.a_org, pair.b_org):
        container.orgs.set_plan(org_id, Plan.PRO)
    a_bill, b_bill = (container.billing.estimate(org) for org in (pair.a_org, pair.b_org))
    assert a_bill is not None and b_bill is not None
    assert (a_bill.billable_users, b_bill.billable_users) == (1, 2)  # B's member: by B only
    assert [line.quantity for line in b_bill.lines] == [2]


def test_a_partner_member_sees_no_directory_of_the_host(pair: Pair) -> None:
    ana = pair.people.join("ana")  # in A, in no shared group
    assert ana is not None
    shared(pair)
    listed = pair.b_member.client.request("GET", "/members")["members"]
    assert {m["org_id"] for m in listed} == {pair.b_org}
    members, _ = pair.b_member.client.partner_listing(pair.a_org)
    ids = {m["member_id"] for m in members}
    assert member_of(pair.a) in ids and pair.people.info["ana"]["member_id"] not in ids


def test_a_third_organisation_gets_404_on_a_shared_group(
    pair: Pair, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    stranger = third_org(api, operator, tmp_path)
    cid = shared(pair)
    body = {"role": "member", "membership": {}}
    routes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/channels/{cid}/messages", None),
        ("GET", f"/channels/{cid}/roster", None),
        ("GET", f"/channels/{cid}/membership", None),
        ("GET", f"/channels/{cid}/members", None),
        ("PUT", f"/channels/{cid}/members/{member_of(stranger)}", body),
        ("DELETE", f"/channels/{cid}/members/{member_of(pair.b_member)}", {"membership": {}}),
        ("GET", f"/partners/{pair.a_org}/members", None),
    ]
    for method, path, payload in routes:
        reply = api.call(method, path, payload, signer=stranger.keys)
        assert reply.status == 404, (method, path, reply.body)


def test_a_crash_between_claiming_an_invitation_and_writing_the_partnership_can_be_retried(
    pair: Pair, container: Any
) -> None:
    invitation = pair.a.partners.invite()
    code = invitation["invitation"]
    records = PartnerRecords(container.store)
    found = records.invitation(code)
    assert found is not None and records.claim(found, pair.b_org)  # the claim, then the crash
    accepted = pair.b_owner.partners.accept(invitation["code"])
    assert accepted["status"] == "pending"


# -- a malicious server ---------------------------------------------------------------------------------


def test_a_member_of_a_non_partner_slipped_in_by_the_server_gets_no_key(
    pair: Pair, api: SignedApi, operator: Any, tmp_path: Path, container: Any
) -> None:
    stranger = third_org(api, operator, tmp_path)
    cid = shared(pair)
    owner_adds(pair, container, api, cid, stranger, host=pair.a_org, devices_from=stranger.info["org_id"])
    pair.a.send_text(cid, "secret")
    codes = {w["code"] for w in pair.a.trust.take_warnings()}
    assert "membership_invalid" in codes
    assert texts(pair.b_member, cid) == ["secret"]
    assert _sealed_to(container, cid, _epoch(pair.a, cid), stranger.device_id) == []


def test_a_partner_member_the_server_keeps_after_the_end_gets_no_key(pair: Pair, container: Any) -> None:
    cid = shared(pair)
    pair.a.send_text(cid, "avant")
    pair.b_owner.partners.end(pair.a_org)
    records = ChannelRecords(container.store)  # the server puts them back, as if nothing ended
    records.save_membership(
        ChannelMember(
            channel_id=cid,
            member_id=member_of(pair.b_member),
            role=ChannelRole.MEMBER,
            added_at=1,
            added_by="x",
        )
    )
    records.add_devices(cid, container.orgs.devices_of(pair.b_org, member_of(pair.b_member)))
    pair.a.send_text(cid, "après")
    assert _sealed_to(container, cid, _epoch(pair.a, cid), pair.b_member.device_id) == []
    assert "uncertified_member" in {w["code"] for w in pair.a.trust.take_warnings()}


def test_a_connect_after_the_end_does_not_subscribe_the_partners_member(
    pair: Pair, api: SignedApi, push: Any, container: Any
) -> None:
    cid = shared(pair)
    pair.b_owner.partners.end(pair.a_org)
    records = ChannelRecords(container.store)  # as if the end's clean-up had not reached them yet
    records.save_membership(
        ChannelMember(
            channel_id=cid,
            member_id=member_of(pair.b_member),
            role=ChannelRole.MEMBER,
            added_at=1,
            added_by="x",
            host_org=pair.a_org,
        )
    )
    assert api.ws_connect(pair.b_member.keys, "c-drafter")["statusCode"] == 200
    assert api.ws_connect(pair.people.keys["owner"], "c-mayor")["statusCode"] == 200
    envelope = sealed_envelope(pair.a, cid, {"type": "text", "text": "après la fin"})
    api.ws(
        "ws_message",
        ws_event("$default", "c-mayor", body=json.dumps({"action": "send", "envelope": envelope})),
    )
    assert push.to("c-drafter", "message") == []


def test_a_partner_device_not_certified_by_its_chain_gets_no_key(pair: Pair, container: Any) -> None:
    cid = shared(pair)
    device = container.orgs.get_device(pair.b_member.device_id)
    forged = dict(device.device_cert)
    forged["issued_at"] = int(forged["issued_at"]) + 1  # its signature no longer verifies
    container.orgs.write_device(device.model_copy(update={"device_cert": forged}))
    pair.a.send_text(cid, "secret")
    assert _sealed_to(container, cid, _epoch(pair.a, cid), pair.b_member.device_id) == []
    assert "invalid_statement" in {w["code"] for w in pair.a.trust.take_warnings()}  # a bad signature


def test_an_entry_naming_another_organisation_than_the_host_is_refused(
    pair: Pair, api: SignedApi, container: Any
) -> None:
    ana = pair.people.join("ana")
    cid = shared(pair)
    pair.a.send_text(cid, "avant")
    head = pair.a.client.membership_log(cid, 0)[0][-1]
    leave = membership_entry(  # B's member signs a leave naming B: the server refuses it
        pair.b_member.keys.signing,
        pair.b_member.device_id,
        org_id=pair.b_org,
        channel_id=cid,
        previous=head,
        op="leave",
        member_id=member_of(pair.b_member),
        role=None,
        now=api.clock.now(),
    )
    path = f"/channels/{cid}/members/{member_of(pair.b_member)}"
    refused = api.call("DELETE", path, {"membership": leave}, signer=pair.b_member.keys)
    assert refused.status == 400 and "another organisation than the channel's host" in str(refused.body)
    # The server writes an entry by A's owner that names B as the channel's host.
    owner_adds(pair, container, api, cid, ana, host=pair.b_org, devices_from=pair.a_org)
    pair.a.send_text(cid, "après")
    assert member_of(ana) not in pair.a.trust.membership(cid).members
    assert "membership_invalid" in {w["code"] for w in pair.a.trust.take_warnings()}
    assert _sealed_to(container, cid, _epoch(pair.a, cid), ana.device_id) == []


def test_an_id_listed_by_both_our_organisation_and_a_partner_is_refused(
    pair: Pair, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = pair.people.join("ana")
    cid = shared(pair)
    pair.a.add_member(cid, member_of(ana))
    honest = pair.a.client.partner_listing

    def claiming_ana(org_id: str) -> tuple[list[Any], list[Any]]:
        """The server's partner listing also names Ana's member id and device (a B member
        certified under her id would otherwise pass as her, with her keys and her role)."""
        members, devices = honest(org_id)
        own = pair.a.trust.own_view()
        members += [dict(m) for m in own.listed_members() if m["member_id"] == member_of(ana)]
        devices += [dict(d) for d in own.listed_devices() if d["device_id"] == ana.device_id]
        return members, devices

    monkeypatch.setattr(pair.a.client, "partner_listing", claiming_ana)
    pair.a.send_text(cid, "secret")
    assert _sealed_to(container, cid, _epoch(pair.a, cid), ana.device_id) == []
    warnings = [
        w for w in pair.a.trust.take_warnings() if w["code"] in ("uncertified_member", "uncertified_device")
    ]
    assert any("more than one organisation" in w["message"] for w in warnings)
    assert texts(pair.b_member, cid) == ["secret"]  # B's own member still gets the key


def _epoch(messenger: Messenger, cid: str) -> int:
    return int(next(c for c in messenger.client.channels()["channels"] if c["channel_id"] == cid)["epoch"])


def _sealed_to(container: Any, cid: str, epoch: int, device_id: str) -> list[Any]:
    """The sender keys stored for a device, read beside the API (which would answer 404)."""
    return list(SenderKeys(container.store).sealed_to(cid, epoch, device_id))


def test_a_partner_listing_the_server_fails_to_serve_blocks_no_send(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /partners and a partner's listing answer 503 (a transient failure, or a server that
    withholds them): the device keeps the listings it verified, warns, and still sends in our
    own groups and, to the members it knew, in the shared one."""
    ana = pair.people.join("ana")
    cid = shared(pair)
    pair.a.send_text(cid, "avant")
    own = str(pair.a.create_channel("group", "Bureau")["channel_id"])
    pair.a.add_member(own, member_of(ana))

    def unavailable(*_: Any) -> Any:
        raise ApiError(503, "unavailable", "the server is not answering")

    monkeypatch.setattr(pair.a.client, "partner_listing", unavailable)
    monkeypatch.setattr(pair.a.client, "partners", unavailable)
    pair.a.trust.learn_partners()
    pair.a.trust.view(refresh=True)
    pair.a.send_text(own, "ordre du jour")
    pair.a.send_text(cid, "après")
    assert texts(ana, own) == ["ordre du jour"]
    assert texts(pair.b_member, cid) == ["avant", "après"]
    codes = [w["code"] for w in pair.a.trust.take_warnings()]
    assert codes.count("partners_unavailable") >= 2  # the partnerships and B's listing


def test_another_channel_s_log_served_for_a_group_gets_it_no_key(
    pair: Pair, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Host substitution (review groups3 H1): Ana's device reads our group "Bureau" for the
    first time and the server answers with the log of the shared group, which holds B's member.
    Ana's device refuses it (membership_invalid) and seals nothing to B's member."""
    ana = pair.people.join("ana")
    cid = shared(pair)
    bureau = str(pair.a.create_channel("group", "Bureau")["channel_id"])
    pair.a.add_member(bureau, member_of(ana))
    honest = ana.client.membership_log
    substituted = pair.a.client.membership_log(cid, 0)

    def other_channel(channel_id: str, start: int = 0) -> Any:
        if channel_id != bureau:
            return honest(channel_id, start)
        entries, head = substituted
        return entries[start:], head

    monkeypatch.setattr(ana.client, "membership_log", other_channel)
    with pytest.raises(MembershipRefused):
        ana.send_text(bureau, "confidentiel")
    assert "membership_invalid" in {w["code"] for w in ana.trust.take_warnings()}
    assert _sealed_to(container, bureau, _epoch(ana, bureau), pair.b_member.device_id) == []


def test_a_partner_member_only_the_server_vouches_for_is_no_sender(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server adds to B's listing a "Directrice" whose certificates sign themselves (no chain
    to B's pinned root) with a device certified by that key (review groups3 M1): A's device does
    not take that device as a sender, nor as a recipient, and says server_vouched."""
    cid = shared(pair)
    identity_seed, sign_seed = bytes([0x91]) * 32, bytes([0x92]) * 32
    fake_member, fake_device = "m_ffffffffffffffff", device_id(sign_seed)
    common = {
        "org_id": pair.b_org,
        "member_id": fake_member,
        "identity_key": public_key_of(identity_seed),
        "ticket_key": None,
        "issued_at": 1,
    }
    member_cert = sign_statement(
        {**common, "purpose": "bocage/member-cert/v2", "display_name": "Directrice", "root": False},
        identity_seed,
    )
    keys = {
        "device_id": fake_device,
        "member_id": fake_member,
        "sign_public_key": public_key_of(sign_seed),
        "box_public_key": box_public(bytes([0x93]) * 32),
    }
    device_cert = sign_statement({**common, **keys, "purpose": "bocage/device-cert/v2"}, identity_seed)
    honest = pair.a.client.partner_listing

    def with_directrice(org_id: str) -> tuple[list[Any], list[Any]]:
        members, devices = honest(org_id)
        members.append(
            {"member_id": fake_member, "member_cert": member_cert, "ticket": None, "role_statements": []}
        )
        devices.append({**keys, "device_cert": device_cert, "ticket": None, "revocation": None})
        return members, devices

    monkeypatch.setattr(pair.a.client, "partner_listing", with_directrice)
    pair.a.trust.view(refresh=True)
    certified, forged = pair.a.trust.sender(fake_device, fake_member, cid)
    assert certified is None and forged
    assert pair.a.trust.view().member(fake_member) is None
    assert "server_vouched" in {w["code"] for w in pair.a.trust.take_warnings()}
    honest_sender, lied = pair.a.trust.sender(pair.b_member.device_id, member_of(pair.b_member), cid)
    assert honest_sender is not None and not lied  # B's chained member still is a sender


def test_a_partners_guest_slipped_in_by_the_server_gets_no_key(
    pair: Pair, api: SignedApi, tmp_path: Path, container: Any
) -> None:
    """A guest of B stays in B's channels (21, 22.6): an ``add`` of them in A's group, even signed
    by A's own admin device, is refused by A's devices, which seal them nothing."""
    keys, info = api.join(pair.b_keys, "Invité du cabinet", "guest")
    guest = messenger_for(api, keys, tmp_path / "b_guest", info)
    cid = shared(pair)
    pair.b_owner.partners.listing()
    owner_adds(pair, container, api, cid, guest, host=pair.a_org, devices_from=pair.b_org)
    pair.a.send_text(cid, "réservé aux membres")
    assert "membership_invalid" in {w["code"] for w in pair.a.trust.take_warnings()}
    assert member_of(guest) not in pair.a.trust.membership(cid).members
    assert _sealed_to(container, cid, _epoch(pair.a, cid), guest.device_id) == []
    assert texts(pair.b_member, cid) == ["réservé aux membres"]


def test_a_partner_members_identity_key_is_kept_and_a_change_is_caught(pair: Pair, container: Any) -> None:
    """A's devices keep the identity key of B's member they first verified (22.6), as for their
    own organisation's members: a listing with another key (B's admin and the server together
    re-certifying them) is ``identity_changed``, nothing sealed to them, their messages not shown."""
    cid = shared(pair)
    pair.b_member.send_text(cid, "clé d'origine")
    assert texts(pair.a, cid) == ["clé d'origine"]
    b_member = member_of(pair.b_member)
    identity = pair.b_member.trust.view().identity_key(b_member)
    assert identity is not None and pair.a.trust.state.partner_seen[pair.b_org][b_member] == identity
    assert b_member not in pair.a.trust.state.seen  # our own members' keys are kept apart
    pair.a.trust.pin_identity(pair.b_org, b_member, public_key_of(bytes([0x42]) * 32))  # as if seen so
    pair.a.send_text(cid, "après le changement")
    assert _sealed_to(container, cid, _epoch(pair.a, cid), pair.b_member.device_id) == []
    [changed] = [w for w in pair.a.trust.take_warnings() if w["member_id"] == b_member]
    assert "identity key changed" in changed["message"]
    assert texts(pair.a, cid) == [None, "après le changement"]  # theirs no longer shown
