"""Partner organisations (docs/protocol.md, section 22): invitation, acceptance, countersigning,
listing and end, through the real app on SQLite and moto's DynamoDB, with the real Python client
on both sides, and what a malicious server cannot make a client pin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bocage.client import issuing
from bocage.client.api import ApiError
from bocage.client.messenger import Messenger
from bocage.client.partners import PartnerRefused, Partners
from chalicelib.adapters.records import keys as record_keys
from chalicelib.domain.encoding import b64e
from chalicelib.domain.partners import parse_partner
from chalicelib.domain.statements import PARTNERSHIP_END_V2, public_key_of, sign_statement
from tests.integration.test_followers import follow, public_tribe
from tests.support import People, SignedApi, messenger_for, scan_all


@dataclass
class Pair:
    """The town hall (organisation A, with its people) and an architects' firm (B) on one deployment."""

    people: People
    b_owner: Messenger
    b_keys: Any
    b_org: str
    b_member: Messenger

    @property
    def a(self) -> Messenger:
        owner: Messenger = self.people.owner
        return owner

    @property
    def a_org(self) -> str:
        return str(self.people.info["owner"]["org_id"])


@pytest.fixture
def pair(people: People, api: SignedApi, operator: Any, tmp_path: Path) -> Pair:
    created = api.create_org(operator, "Cabinet Ardoise")
    keys, reply = api.activate(created["activation_code"], "Architecte")
    assert reply.status == 201, reply.body
    b_owner = messenger_for(api, keys, tmp_path / "b_owner", dict(reply.body))
    member_keys, member_info = api.join(keys, "Dessinateur")
    b_member = messenger_for(api, member_keys, tmp_path / "b_member", member_info)
    return Pair(people, b_owner, keys, str(reply.body["org_id"]), b_member)


def partnered(pair: Pair) -> dict[str, Any]:
    """A invites, B accepts with the code, A's admin device countersigns: (A's view of B)."""
    invitation = pair.a.partners.invite()
    accepted = pair.b_owner.partners.accept(invitation["code"])
    assert accepted["status"] == "pending" and accepted["partner_root"] == pair.a.trust.state.root
    [listed] = pair.a.partners.listing()
    return listed


def listed_ticket_key(messenger: Messenger, partner: str) -> str:
    """The invitation's ticket key of ``messenger``'s organisation's partnership with ``partner``,
    as the server lists it: what an end names (22.7)."""
    return next(
        str(e["ticket"]["ticket_key"]) for e in messenger.client.partners() if e["partner_org_id"] == partner
    )


def v2_end(seed: bytes, device_id: str, org_id: str, partner_org_id: str, at: int) -> dict[str, Any]:
    """An end as clients signed it before v3: naming no invitation (read where it is stored, 22.7)."""
    body = {"org_id": org_id, "partner_org_id": partner_org_id, "by_device": device_id, "issued_at": at}
    return sign_statement({"purpose": PARTNERSHIP_END_V2, **body}, seed)


def test_invite_accept_countersign_and_list_pin_each_sides_root(pair: Pair, container: Any) -> None:
    invitation = pair.a.partners.invite()
    assert invitation["code"].startswith("bocage-partner:v2:") and "#/partner?" in invitation["url"]
    target = parse_partner(invitation["url"])
    assert target.org == pair.a_org and target.root == pair.a.trust.state.root
    secret = b64e(target.ticket_seed)
    assert secret in invitation["code"] and all(secret not in str(item) for item in scan_all(container.store))
    listed = partnered(pair)
    assert listed["status"] == "active" and listed["side"] == "inviter"
    assert listed["partner_org_id"] == pair.b_org and listed["partner_name"] == "Cabinet Ardoise"
    assert listed["partner_root"] == pair.b_owner.trust.state.root
    [seen_by_b] = pair.b_owner.partners.listing()
    assert seen_by_b["status"] == "active" and seen_by_b["partner_root"] == pair.a.trust.state.root
    assert seen_by_b["partner_name"] == "Mairie de Bocage" and seen_by_b["side"] == "accepter"
    assert pair.a.partners.pinned_root(pair.b_org) == pair.b_owner.trust.state.root
    assert pair.b_owner.partners.pinned_root(pair.a_org) == pair.a.trust.state.root
    assert pair.a.trust.take_warnings() == [] and pair.b_owner.trust.take_warnings() == []
    members, devices = pair.a.client.partner_listing(pair.b_org)  # B's signers only: no directory
    assert [m["member_id"] for m in members] == [pair.b_owner.trust.member_id]
    assert [d["device_id"] for d in devices] == [pair.b_keys.device_id]


def test_a_link_of_another_deployment_and_ones_own_invitation_are_refused(pair: Pair) -> None:
    invitation = pair.a.partners.invite()
    with pytest.raises(PartnerRefused, match="another deployment"):
        pair.b_owner.partners.accept(invitation["url"])  # the profile's server is another URL
    with pytest.raises(PartnerRefused, match="your own organisation"):
        pair.a.partners.accept(invitation["code"])
    same_deployment = Partners(pair.b_owner.trust, "https://api.bocage.test")
    assert same_deployment.accept(invitation["url"])["status"] == "pending"


def test_an_invitation_is_accepted_once_and_expires(
    pair: Pair, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    invitation = pair.a.partners.invite()
    pair.b_owner.partners.accept(invitation["code"])
    created = api.create_org(operator, "Troisième")
    keys, reply = api.activate(created["activation_code"], "Tiers")
    third = messenger_for(api, keys, tmp_path / "third", dict(reply.body))
    with pytest.raises(Exception, match="already accepted") as caught:
        third.partners.accept(invitation["code"])
    assert getattr(caught.value, "status", None) == 410
    late = pair.a.partners.invite()
    api.clock.advance(8 * 86400)
    with pytest.raises(Exception, match="expired") as expired:
        third.partners.accept(late["code"])
    assert getattr(expired.value, "status", None) == 410


def test_partner_changes_are_for_admins_and_listings_for_members(
    pair: Pair, api: SignedApi, tmp_path: Path
) -> None:
    partnered(pair)
    people = pair.people
    people.join("ana")
    people.join("gus", role="guest")
    _, url = public_tribe(people)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    outsiders = {"member": people.keys["ana"], "guest": people.keys["gus"], "follower": lea.keys}
    statement: dict[str, Any] = {"statement": {}}
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/partners/invitations", {"ticket": {}}),
        ("POST", "/partners/accept", {"code": "p_aaaaaaaaaaaaaaaa", "acceptance": {}, "statement": {}}),
        ("GET", "/partners", {}),
        ("GET", f"/partners/{pair.b_org}/members", {}),
        ("PUT", f"/partners/{pair.b_org}", statement),
        ("DELETE", f"/partners/{pair.b_org}", statement),
    ]
    for who, keys in outsiders.items():
        for method, path, body in routes:
            reply = api.call(method, path, body or None, signer=keys)
            if who == "member" and method == "GET":  # a member's device verifies shared groups (22.6)
                assert reply.status == 200, (who, method, path, reply.body)
            else:
                assert reply.status == 403, (who, method, path, reply.body)


def test_another_organisations_partnerships_answer_404(
    pair: Pair, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    partnered(pair)
    created = api.create_org(operator, "Voisins")
    keys, reply = api.activate(created["activation_code"], "Voisin")
    voisin = messenger_for(api, keys, tmp_path / "voisin", dict(reply.body))
    assert voisin.client.partners() == []
    ticket_key = listed_ticket_key(pair.a, pair.b_org)
    end = issuing.partnership_end(
        keys.signing, keys.device_id, voisin.trust.org_id, pair.b_org, ticket_key, api.clock.now()
    )
    assert api.call("DELETE", f"/partners/{pair.b_org}", {"statement": end}, signer=keys).status == 404
    assert api.call("PUT", f"/partners/{pair.a_org}", {"statement": end}, signer=keys).status == 404
    assert api.call("DELETE", "/partners/o_unknownunknown00", {"statement": end}, signer=keys).status == 404
    assert api.call("GET", f"/partners/{pair.b_org}/members", signer=keys).status == 404
    assert api.call("GET", f"/partners/{voisin.trust.org_id}/members", signer=keys).status == 404
    body = {"code": "p_aaaaaaaaaaaaaaaa", "acceptance": end, "statement": end}
    assert api.call("POST", "/partners/accept", body, signer=keys).status == 404


def test_bad_statements_get_400_with_a_message(pair: Pair, api: SignedApi) -> None:
    a_keys = pair.people.keys["owner"]
    now = api.clock.now()
    stale = issuing.partner_ticket(
        a_keys.signing, a_keys.device_id, pair.a_org, now - 3600, allow_tribes=False
    )
    reply = api.call("POST", "/partners/invitations", {"ticket": stale.statement}, signer=a_keys)
    assert reply.status == 400 and "issued_at" in reply.body["message"]
    foreign = issuing.partner_ticket(
        pair.b_keys.signing, pair.b_keys.device_id, pair.a_org, now, allow_tribes=False
    )
    reply = api.call("POST", "/partners/invitations", {"ticket": foreign.statement}, signer=a_keys)
    assert reply.status == 400 and "signature" in reply.body["message"]
    invitation = pair.a.partners.invite()
    target = parse_partner(invitation["code"])
    b = pair.b_owner.trust
    statement = issuing.partnership(
        b.keys.signing,
        b.keys.device_id,
        b.org_id,
        target.org,
        target.root,
        public_key_of(target.ticket_seed),
        now,
        allow_tribes=False,
    )
    wrong_root = issuing.partner_acceptance(
        target, b.org_id, target.root, b.keys.device_id, now
    )  # A's, not B's
    body = {"code": target.code, "acceptance": wrong_root, "statement": statement}
    reply = api.call("POST", "/partners/accept", body, signer=pair.b_keys)
    assert reply.status == 400 and "root" in reply.body["message"]


def test_either_side_ends_it_and_a_new_invitation_makes_a_new_partnership(pair: Pair) -> None:
    partnered(pair)
    ended = pair.b_owner.partners.end(pair.a_org)
    assert ended["status"] == "ended" and ended["end"]["org_id"] == pair.b_org
    [seen_by_a] = pair.a.partners.listing()
    assert seen_by_a["status"] == "ended" and pair.a.partners.pinned_root(pair.b_org) is None
    assert pair.b_owner.partners.pinned_root(pair.a_org) is None
    again = partnered(pair)
    assert again["status"] == "active" and pair.a.partners.pinned_root(pair.b_org) is not None


@pytest.mark.parametrize("off", [-301, 301])
def test_an_end_dated_away_from_the_server_s_clock_is_refused(pair: Pair, off: int) -> None:
    """Clients date an end by its signature (22.7): the server takes one dated now only."""
    partnered(pair)
    trust = pair.b_owner.trust
    ticket_key = listed_ticket_key(pair.b_owner, pair.a_org)
    statement = issuing.partnership_end(
        trust.keys.signing, trust.keys.device_id, trust.org_id, pair.a_org, ticket_key, trust.now() + off
    )
    with pytest.raises(ApiError) as refused:
        trust.client.end_partner(pair.a_org, statement)
    assert refused.value.status == 400 and "server's clock (at most 300)" in str(refused.value)
    [seen_by_a] = pair.a.partners.listing()
    assert seen_by_a["status"] == "active" and seen_by_a["end"] is None


def test_an_end_must_name_this_partnerships_invitation(pair: Pair, container: Any, api: SignedApi) -> None:
    """22.7: the server takes a v3 end naming the invitation of the partnership it ends, and
    nothing else: not one naming another invitation (the first partnership's, kept by a device,
    signed again), nor a v2 end, which names none; either gets 400 and ends nothing."""
    partnered(pair)
    first = listed_ticket_key(pair.b_owner, pair.a_org)
    pair.b_owner.partners.end(pair.a_org)
    api.clock.advance(400)
    partnered(pair)
    trust = pair.b_owner.trust
    sign, device = trust.keys.signing, trust.keys.device_id
    other = issuing.partnership_end(sign, device, trust.org_id, pair.a_org, first, trust.now())
    unnamed = v2_end(bytes(sign), device, trust.org_id, pair.a_org, trust.now())
    for statement, message in (
        (other, "the end names another invitation than this partnership's"),
        (unnamed, "sign bocage/partnership-end/v3, which names the invitation"),
    ):
        reply = api.call("DELETE", f"/partners/{pair.a_org}", {"statement": statement}, signer=pair.b_keys)
        assert reply.status == 400 and message in reply.body["message"], reply.body
        stored = container.store.get(*record_keys.partnership(pair.a_org, pair.b_org))
        assert stored.get("end") is None and stored.get("ended_at") is None
    [seen_by_a] = pair.a.partners.listing()
    assert (seen_by_a["server_status"], seen_by_a["status"]) == ("active", "active")
    ended = pair.b_owner.partners.end(pair.a_org)
    assert ended["status"] == "ended" and ended["end"]["ticket_key"] == ended["ticket"]["ticket_key"] != first


def test_each_sides_admins_find_their_own_partner_actions_in_the_audit_log(pair: Pair) -> None:
    partnered(pair)
    pair.a.partners.end(pair.b_org)

    def actions(messenger: Messenger) -> set[tuple[str, str | None]]:
        entries = messenger.client.request("GET", "/audit")["entries"]
        return {
            (e["action"], e["targets"].get("org_id")) for e in entries if e["action"].startswith("partner.")
        }

    assert actions(pair.a) == {
        ("partner.ended", pair.b_org),
        ("partner.confirmed", pair.b_org),
        ("partner.invited", None),
    }
    assert actions(pair.b_owner) == {("partner.accepted", pair.a_org)}


def test_a_second_acceptance_while_partners_is_a_conflict(pair: Pair) -> None:
    partnered(pair)
    with pytest.raises(Exception, match="already partners") as caught:
        pair.b_owner.partners.accept(pair.a.partners.invite()["code"])
    assert getattr(caught.value, "status", None) == 409


# -- a malicious server (docs/protocol.md, 22.5) ---------------------------------------------------


def test_a_server_that_swaps_the_accepters_root_gets_no_countersignature(pair: Pair, container: Any) -> None:
    """The server rewrites B's acceptance with a root of its own: the ticket key's signature
    breaks, so A's admin device signs nothing and pins nothing."""
    invitation = pair.a.partners.invite()
    pair.b_owner.partners.accept(invitation["code"])
    store = container.store
    key = record_keys.partnership(pair.a_org, pair.b_org)
    item = store.get(*key)
    forged_root = public_key_of(b"\x07" * 32)
    store.put({**item, "acceptance": {**item["acceptance"], "root": forged_root}})
    [listed] = pair.a.partners.listing()
    assert listed["status"] == "pending" and listed["ours"] is None and listed["partner_root"] is None
    assert pair.a.partners.pinned_root(pair.b_org) is None
    assert [w["code"] for w in pair.a.trust.take_warnings()] == ["invalid_partnership"]


def test_a_partnership_the_server_invents_is_not_trusted(pair: Pair, container: Any, api: SignedApi) -> None:
    """The server makes up a whole partnership with a root of its own, signing with keys it made."""
    from nacl.signing import SigningKey

    from chalicelib.adapters.records.partners import PartnerRecords
    from chalicelib.domain.partners import Partnership, parse_partner

    rogue = SigningKey.generate()
    rogue_device = "d_" + "a" * 16
    now = api.clock.now()
    ticket = issuing.partner_ticket(rogue, rogue_device, pair.a_org, now, allow_tribes=True)
    target = parse_partner(issuing_code(ticket, pair.a_org, pair.a.trust.state.root))
    root = public_key_of(b"\x09" * 32)
    acceptance = issuing.partner_acceptance(target, pair.b_org, root, rogue_device, now)
    theirs = issuing.partnership(
        rogue,
        rogue_device,
        pair.b_org,
        pair.a_org,
        pair.a.trust.state.root,
        ticket.statement["ticket_key"],
        now,
        allow_tribes=True,
    )
    ours = issuing.partnership(
        rogue,
        rogue_device,
        pair.a_org,
        pair.b_org,
        root,
        ticket.statement["ticket_key"],
        now,
        allow_tribes=True,
    )
    PartnerRecords(container.store).save(
        Partnership(
            inviter=pair.a_org,
            accepter=pair.b_org,
            ticket=ticket.statement,
            acceptance=acceptance,
            statements={pair.a_org: ours, pair.b_org: theirs},
            created_at=now,
        ),
        None,
    )
    [listed] = pair.a.partners.listing()
    assert listed["server_status"] == "active" and listed["status"] == "pending"
    assert listed["partner_root"] is None and pair.a.partners.pinned_root(pair.b_org) is None
    assert "invalid_partnership" in [w["code"] for w in pair.a.trust.take_warnings()]


def issuing_code(ticket: issuing.Ticket, org_id: str, root: str) -> str:
    from chalicelib.domain.partners import partner_code

    return partner_code("p_" + "b" * 16, org_id, ticket.fragment_seed, root)


def test_a_server_that_hides_an_end_it_showed_is_caught(pair: Pair, container: Any) -> None:
    partnered(pair)
    pair.b_owner.partners.end(pair.a_org)
    assert pair.a.partners.listing()[0]["status"] == "ended"
    store = container.store
    key = record_keys.partnership(pair.a_org, pair.b_org)
    item = store.get(*key)
    store.put({k: v for k, v in item.items() if k not in ("end", "ended_at")})  # the end, hidden
    [listed] = pair.a.partners.listing()
    assert listed["server_status"] == "active" and listed["status"] == "ended"
    assert pair.a.partners.pinned_root(pair.b_org) is None
    assert [w["code"] for w in pair.a.trust.take_warnings()] == ["partnership_rollback"]


def test_an_end_racing_the_countersignature_is_not_undone(
    pair: Pair, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B ends the partnership while A's countersignature is in flight (after A's read, before its
    write): the countersignature is refused (409), the end stands, on the server too."""
    invitation = pair.a.partners.invite()
    pair.b_owner.partners.accept(invitation["code"])
    records = container.partners._records
    save = records.save

    def ended_meanwhile(partnership: Any, read: Any) -> Any:
        monkeypatch.setattr(records, "save", save)
        pair.b_owner.partners.end(pair.a_org)
        return save(partnership, read)

    monkeypatch.setattr(records, "save", ended_meanwhile)
    with pytest.raises(ApiError) as refused:
        pair.a.partners.listing()
    assert refused.value.status == 409
    [listed] = pair.a.partners.listing()
    assert listed["server_status"] == "ended" and listed["status"] == "ended"


def test_an_ended_partnership_served_again_after_a_newer_one_is_caught(pair: Pair, container: Any) -> None:
    """The first partnership ended (both sides saw it), a new invitation was accepted: a server
    that brings the first one's record back without its end revives nothing, and the inviting
    admin device does not countersign it again."""
    partnered(pair)
    store = container.store
    key = record_keys.partnership(pair.a_org, pair.b_org)
    first = store.get(*key)
    pair.b_owner.partners.end(pair.a_org)
    assert pair.a.partners.listing()[0]["status"] == "ended"
    pair.b_owner.partners.accept(pair.a.partners.invite()["code"])  # a second one, pending
    assert pair.a.partners.listing(confirm=False)[0]["status"] == "pending"
    revived = {k: v for k, v in first.items() if k not in ("end", "ended_at")}
    revived["statements"] = {pair.b_org: first["statements"][pair.b_org]}  # A's own statement dropped
    store.put(revived)  # the first partnership, back without its end
    [listed] = pair.a.partners.listing()  # and, without our statement, offered for countersigning
    assert listed["status"] == "ended" and listed["ours"] is None  # never countersigned again
    assert pair.a.partners.pinned_root(pair.b_org) is None
    assert "partnership_rollback" in [w["code"] for w in pair.a.trust.take_warnings()]


def test_a_partner_statement_not_signed_by_one_of_the_partners_admins_is_refused(
    pair: Pair, container: Any
) -> None:
    """The server, with a plain member of B, replaces B's statement with one that member's device
    signed (or with one no device of B signed): A's devices check it up to B's pinned root, find
    no admin behind it, and do not take the partnership as active."""
    partnered(pair)
    store = container.store
    key = record_keys.partnership(pair.a_org, pair.b_org)
    item = store.get(*key)
    genuine = item["statements"][pair.b_org]
    member = pair.b_member
    by_member = issuing.partnership(
        member.keys.signing,
        member.keys.device_id,
        pair.b_org,
        pair.a_org,
        genuine["partner_root"],
        genuine["ticket_key"],
        genuine["issued_at"],
        allow_tribes=True,
    )
    from nacl.signing import SigningKey

    unsigned = issuing.partnership(
        SigningKey.generate(),
        pair.b_keys.device_id,
        pair.b_org,
        pair.a_org,
        genuine["partner_root"],
        genuine["ticket_key"],
        genuine["issued_at"],
        allow_tribes=True,
    )
    for forged, why in ((by_member, "not an admin"), (unsigned, "signature")):
        store.put({**item, "statements": {**item["statements"], pair.b_org: forged}})
        [listed] = pair.a.partners.listing()
        assert listed["server_status"] == "active" and listed["status"] == "pending", why
        warnings = pair.a.trust.take_warnings()
        assert [w["code"] for w in warnings] == ["invalid_partnership"] and why in warnings[0]["message"]


def test_listing_costs_one_query_and_one_read_per_partner(
    pair: Pair, container: Any, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    """What DynamoDB bills for the partner records: GET /partners reads the organisation's
    pointers with one query and each pair's record with one get; an acceptance writes the claim,
    the record and the two pointers."""
    from chalicelib.adapters.counting_store import CountingStore
    from chalicelib.adapters.records.partners import PartnerRecords

    counting = CountingStore(container.store)
    container.partners._records = PartnerRecords(counting)
    partnered(pair)
    for i in range(4):
        created = api.create_org(operator, f"Association {i}")
        keys, reply = api.activate(created["activation_code"], "Présidente")
        messenger_for(api, keys, tmp_path / f"asso{i}", dict(reply.body)).partners.accept(
            pair.a.partners.invite()["code"]
        )
    counting.reset()
    assert len(pair.a.client.partners()) == 5
    assert dict(counting.reset()) == {"query": 1, "get": 5}
    created = api.create_org(operator, "Club")
    keys, reply = api.activate(created["activation_code"], "Président")
    club = messenger_for(api, keys, tmp_path / "club", dict(reply.body))
    code = pair.a.partners.invite()["code"]
    counting.reset()
    club.partners.accept(code)
    assert counting.counts["put"] == 4 and counting.writes == 4


def test_an_older_partnership_than_a_seen_end_is_not_active_again(
    pair: Pair, container: Any, api: SignedApi
) -> None:
    """A's owner never saw the first partnership's end but saw the second's: a server serving the
    first one's record as it was while active revives nothing (it ended before the second began)."""
    partnered(pair)
    key = record_keys.partnership(pair.a_org, pair.b_org)
    first = dict(container.store.get(*key))
    pair.b_owner.partners.end(pair.a_org)
    api.clock.advance(86_400)
    partnered(pair)
    pair.b_owner.partners.end(pair.a_org)
    assert pair.a.partners.listing()[0]["status"] == "ended"
    container.store.put({**first, "version": container.store.get(*key).get("version", 0)})
    [listed] = pair.a.partners.listing()
    assert listed["server_status"] == "active" and listed["status"] == "ended"
    assert "partnership_rollback" in [w["code"] for w in pair.a.trust.take_warnings()]
    assert pair.a.partners.pinned_root(pair.b_org) is None
