"""Guests (docs/protocol.md, section 21): people from outside, invited with the role `guest` in the
signed ticket, billed to the inviting organisation, who see only the channels they are added to.
Through the real app on SQLite and moto's DynamoDB, with the real Python client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bocage.client.api import ApiError
from bocage.client.issuing import membership_entry, role_statement
from bocage.client.trust import TrustError
from chalicelib.adapters.records import keys as record_keys
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.domain.organisation import Role
from chalicelib.domain.principal import Principal
from tests.support import People, SignedApi, messenger_for, plant_addition


def principal(people: People, name: str) -> Principal:
    info = people.info[name]
    return Principal(info["org_id"], info["member_id"], people.keys[name].device_id, Role(info["role"]))


@pytest.fixture
def site(people: People) -> tuple[People, Any, str]:
    """The owner's group « Chantier » with Bob (a member) and Gus, a guest; Ana is in no channel."""
    people.join("ana")
    bob = people.join("bob")
    gus = people.join("gus", role="guest")
    cid = people.owner.create_channel("group", "Chantier")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    people.owner.add_member(cid, people.info["gus"]["member_id"])
    assert bob is not None
    return people, gus, cid


def test_a_guest_reads_and_writes_in_their_group_and_is_certified_as_a_guest(
    site: tuple[People, Any, str],
) -> None:
    people, gus, cid = site
    gus_id = people.info["gus"]["member_id"]
    assert people.info["gus"]["role"] == "guest"
    people.owner.send_text(cid, "Réunion de chantier lundi")
    assert [m["text"] for m in gus.read(cid)["messages"]] == ["Réunion de chantier lundi"]
    gus.send_text(cid, "J'y serai")
    read = people.owner.read(cid)["messages"]
    assert read[-1]["text"] == "J'y serai" and read[-1]["verified"] and read[-1]["sender_name"] == "gus"
    assert people.owner.trust.view(refresh=True).role(gus_id) == "guest"
    assert gus.trust.take_warnings() == [] and people.owner.trust.take_warnings() == []


def test_a_guest_sees_only_their_channels_and_no_directory(
    site: tuple[People, Any, str], api: SignedApi
) -> None:
    people, gus, cid = site
    other = people.owner.create_channel("group", "Conseil")["channel_id"]
    assert [c["channel_id"] for c in gus.channels()] == [cid]
    listed = {m["member_id"] for m in gus.client.request("GET", "/members")["members"]}
    ids = {name: people.info[name]["member_id"] for name in ("owner", "bob", "gus", "ana")}
    assert listed == {ids["owner"], ids["bob"], ids["gus"]}  # Ana, in no channel of his: unseen
    assert len(people.owner.client.request("GET", "/members")["members"]) == 4
    keys = people.keys["gus"]
    assert api.call("GET", f"/channels/{other}/messages", signer=keys).status == 403


def _signed_role(people: People, member_id: str, role: str) -> Any:
    trust = people.owner.trust
    return trust.client.set_role(member_id, role, trust.role_statement(member_id, role))


def test_the_sdk_signs_no_role_across_the_guest_line(site: tuple[People, Any, str]) -> None:
    """An honest server would refuse such a statement, but a dishonest one could keep the admin's
    signature and serve it alone: the SDK does not sign it (docs/protocol.md, 21)."""
    people, _, _ = site
    for name, role in (("gus", "member"), ("gus", "admin"), ("bob", "guest")):
        with pytest.raises(TrustError, match="stays a guest"):
            people.owner.trust.set_role(people.info[name]["member_id"], role)
    assert people.owner.trust.view(refresh=True).role(people.info["gus"]["member_id"]) == "guest"


@pytest.mark.parametrize(
    ("attempt", "says"),
    [
        (lambda p, g, cid: g.create_channel("group", "À moi"), "creates none"),
        (lambda p, g, cid: g.create_channel("tribe", "À moi"), "creates none"),
        (lambda p, g, cid: g.open_direct(p.info["bob"]["member_id"]), "creates none"),
        (lambda p, g, cid: g.add_member(cid, p.info["ana"]["member_id"]), "authors"),
        (lambda p, g, cid: g.trust.invite("Zoé", role="member", email=None), "admins"),
        (lambda p, g, cid: g.trust.invite("Zoé", role="guest", email=None), "admins"),
        (lambda p, g, cid: p.owner.add_member(cid, p.info["gus"]["member_id"], "author"), "never"),
        # The SDK refuses to sign these (below); a client that signs anyway meets the server's 403.
        (lambda p, g, cid: _signed_role(p, p.info["gus"]["member_id"], "admin"), "stays a guest"),
        (lambda p, g, cid: _signed_role(p, p.info["gus"]["member_id"], "member"), "stays a guest"),
        (lambda p, g, cid: _signed_role(p, p.info["bob"]["member_id"], "guest"), "cannot be made a guest"),
    ],
)
def test_what_a_guest_may_not_do_or_become_answers_403(
    site: tuple[People, Any, str], attempt: Any, says: str
) -> None:
    people, gus, cid = site
    with pytest.raises(ApiError) as refused:
        attempt(people, gus, cid)
    assert refused.value.status == 403, refused.value
    assert says in str(refused.value)


def test_a_member_opens_a_direct_conversation_with_a_guest(site: tuple[People, Any, str]) -> None:
    people, gus, _ = site
    gus_id = people.info["gus"]["member_id"]
    dm = people.owner.open_direct(gus_id)
    assert dm["created"] is True
    people.owner.send_text(dm["channel_id"], "Un mot en privé")
    assert [m["text"] for m in gus.read(dm["channel_id"])["messages"]] == ["Un mot en privé"]
    again = gus.open_direct(people.info["owner"]["member_id"])  # he finds it; he opens none
    assert again["channel_id"] == dm["channel_id"] and again["created"] is False


def test_another_organisations_guest_and_ids_answer_404(
    site: tuple[People, Any, str], api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    people, _, _ = site
    other = api.create_org(operator, "Autre mairie")
    other_keys, reply = api.activate(other["activation_code"], "Voisin")
    voisin = messenger_for(api, other_keys, tmp_path / "voisin", dict(reply.body))
    gus_id = people.info["gus"]["member_id"]
    assert api.set_role(other_keys, gus_id, "guest").status == 404
    assert api.call("PUT", f"/direct/{gus_id}", {"membership": []}, signer=other_keys).status == 404
    theirs = voisin.create_channel("group", "Chez eux")["channel_id"]
    for path in (
        f"/channels/{theirs}/messages",
        f"/channels/{theirs}/roster",
        f"/channels/{theirs}/membership",
    ):
        assert api.call("GET", path, signer=people.keys["gus"]).status == 404
    assert (
        api.call(
            "PUT", f"/direct/{reply.body['member_id']}", {"membership": []}, signer=people.keys["gus"]
        ).status
        == 404
    )


def test_a_guest_is_billed_once_to_the_inviting_organisation(
    api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    created = api.create_org(operator, "Mairie abonnée", plan="pro")
    keys, reply = api.activate(created["activation_code"], "Maire")
    owner = messenger_for(api, keys, tmp_path / "owner", dict(reply.body))
    guest_keys, guest = api.join(keys, "Gus", "guest")
    api.link(guest_keys)  # a second device of the guest: still one billed person
    other = api.create_org(operator, "Autre", plan="pro")
    other_keys, _ = api.activate(other["activation_code"], "Voisin")
    plan = owner.client.request("GET", "/plan")
    assert plan["month_to_date"]["billable_users"] == 2  # the owner and the guest
    other_plan = api.call("GET", "/plan", signer=other_keys).body
    assert other_plan["month_to_date"]["billable_users"] == 1
    roles = {m["member_id"]: m["role"] for m in owner.client.request("GET", "/members")["members"]}
    assert roles[guest["member_id"]] == "guest"
    api.clock.advance(40 * 86400)
    run = api.call("POST", "/billing/run", {}, signer=operator)
    assert run.status == 200, run.body
    invoice = owner.client.request("GET", f"/invoices/{run.body['month']}")
    assert [line["quantity"] for line in invoice["lines"]] == [2]  # the owner and the guest
    theirs = api.call("GET", f"/invoices/{run.body['month']}", signer=other_keys).body
    assert [line["quantity"] for line in theirs["lines"]] == [1]


# -- a malicious server (docs/protocol.md, 21.3) ---------------------------------------------------


def test_a_guest_the_server_makes_admin_adds_nobody(
    site: tuple[People, Any, str], container: Any, api: SignedApi
) -> None:
    """The server promotes Gus in its records and accepts his signed addition of Ana: every client
    still reads his ticket's role, so the entry stops the replay and Ana gets no key."""
    people, _, cid = site
    members = MemberRecords(container.store)
    row = members.get(people.info["owner"]["org_id"], people.info["gus"]["member_id"])
    assert row is not None
    members.save(row.model_copy(update={"role": Role.ADMIN}))
    head = container.channels.membership_log(principal(people, "owner"), cid, 0, 500)["entries"][-1]
    plant_addition(
        container,
        people.keys["gus"],
        org_id=people.info["owner"]["org_id"],
        channel_id=cid,
        previous=head,
        member_id=people.info["ana"]["member_id"],
        now=api.clock.now(),
    )
    listed = {m["member_id"]: m["role"] for m in people.owner.client.request("GET", "/members")["members"]}
    assert listed[people.info["gus"]["member_id"]] == "admin"  # the server's word
    assert people.owner.trust.view(refresh=True).role(people.info["gus"]["member_id"]) == "guest"
    people.owner.send_text(cid, "sans Ana")
    assert {w["code"] for w in people.owner.trust.take_warnings()} >= {"membership_invalid"}
    ana = messenger_for(api, people.keys["ana"], people.tmp / "ana2", people.info["ana"])
    assert not any(m.get("text") == "sans Ana" for m in ana.read(cid)["messages"])


def test_signed_role_changes_across_the_guest_line_are_ignored(
    site: tuple[People, Any, str], container: Any, api: SignedApi
) -> None:
    """An owner's genuine signature cannot make a guest an admin or a member a guest: the server
    refuses them (403) and, should it store them anyway, clients ignore them."""
    people, gus, cid = site
    owner = people.keys["owner"]
    members = MemberRecords(container.store)
    org_id = people.info["owner"]["org_id"]
    for name, role in (("gus", "admin"), ("bob", "guest")):
        member_id = people.info[name]["member_id"]
        entry = api.member_row(owner, member_id)
        statement = role_statement(owner.signing, owner.device_id, entry, role, 1, api.clock.now())
        row = members.get(org_id, member_id)
        assert row is not None
        members.save(row.model_copy(update={"role": Role(role), "role_statements": (statement,)}))
    view = people.owner.trust.view(refresh=True)
    assert view.role(people.info["gus"]["member_id"]) == "guest"
    assert view.role(people.info["bob"]["member_id"]) == "member"
    # and an owner's addition of Gus as an author, stored past the server's refusal, stops the replay
    head = container.channels.membership_log(principal(people, "owner"), cid, 0, 500)["entries"][-1]
    signed = membership_entry(
        owner.signing,
        owner.device_id,
        org_id=org_id,
        channel_id=cid,
        previous=head,
        op="role",
        member_id=people.info["gus"]["member_id"],
        role="author",
        now=api.clock.now(),
    )
    container.store.put(
        record_keys.record(record_keys.membership_entry(cid, signed["seq"]), {"entry": signed})
    )
    people.owner.send_text(cid, "toujours membre")
    assert "membership_invalid" in {w["code"] for w in people.owner.trust.take_warnings()}
    assert gus.trust.view(refresh=True).role(people.info["gus"]["member_id"]) == "guest"


def test_an_emailed_guest_is_endorsed_as_a_guest_and_stays_one(
    people: People, api: SignedApi, container: Any
) -> None:
    """By e-mail there is no ticket: the admin's endorsement is the first signed role and fixes
    the side; a later statement making them a member is refused (403) or, stored anyway, ignored."""
    invitation = people.owner.trust.invite("Paul", role="guest", email="paul@example.org")
    keys, reply = api.activate(invitation["activation_code"], "Paul")
    assert reply.status == 201 and reply.body["role"] == "guest"
    paul_id = reply.body["member_id"]
    assert people.owner.trust.view(refresh=True).role(paul_id) is None  # vouched by the server only
    assert people.owner.trust.endorse(paul_id)["role"] == "guest"
    assert people.owner.trust.view(refresh=True).role(paul_id) == "guest"
    with pytest.raises(TrustError, match="stays a guest"):
        people.owner.trust.set_role(paul_id, "member")  # not even signed
    with pytest.raises(ApiError) as refused:
        _signed_role(people, paul_id, "member")
    assert refused.value.status == 403
    owner = people.keys["owner"]
    entry = api.member_row(owner, paul_id)
    later = role_statement(owner.signing, owner.device_id, entry, "member", 2, api.clock.now())
    members = MemberRecords(container.store)
    row = members.get(reply.body["org_id"], paul_id)
    assert row is not None
    members.save(
        row.model_copy(update={"role": Role.MEMBER, "role_statements": (*row.role_statements, later)})
    )
    assert people.owner.trust.view(refresh=True).role(paul_id) == "guest"
    assert messenger_for(api, keys, people.tmp / "paul", reply.body).channels() == []


def test_a_guest_gets_403_on_every_admin_route(site: tuple[People, Any, str], api: SignedApi) -> None:
    people, _, cid = site
    keys = people.keys["gus"]
    bob_id = people.info["bob"]["member_id"]
    for method, path, body in [
        ("GET", "/plan", None),
        ("GET", "/audit", None),
        ("GET", "/invoices", None),
        ("GET", "/report", None),
        ("GET", "/impact/org", None),
        ("GET", "/files/usage", None),
        ("PUT", "/org", {"name": "Chez Gus"}),
        ("PUT", "/retention", {"duration": "7d"}),
        ("PUT", f"/channels/{cid}/retention", {"duration": "7d"}),
        ("PUT", f"/channels/{cid}", {"name": "Renommé"}),
        ("DELETE", f"/members/{bob_id}", None),
    ]:
        reply = api.call(method, path, body, signer=keys)
        assert reply.status == 403, (method, path, reply.body)
        assert reply.body["error"] == "forbidden" and reply.body["message"], reply.body
