"""A partner's member's contact card (docs/protocol.md, 22.6): `GET /partners/{o}/members/{m}`
through the real app on SQLite and moto's DynamoDB, who it answers and with what, and the Python
client checking a card against it before adding the member to a group (a server listing another
key is refused)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bocage.client.partners import CARD_MISMATCH, PartnerRefused
from chalicelib.domain.partners import parse_card
from chalicelib.domain.statements import fingerprint
from tests.integration.test_followers import follow, public_tribe
from tests.integration.test_partner_groups import member_of, texts, third_org
from tests.integration.test_partners import Pair, pair, partnered
from tests.support import SignedApi

__all__ = ["pair"]  # the fixture, shared with tests/integration/test_partners.py

UNKNOWN = "no member"


def card_of(pair: Pair) -> str:
    return str(pair.b_member.partners.card("https://app.bocage.test")["url"])


def lookup(api: SignedApi, keys: Any, org_id: str, member_id: str) -> Any:
    return api.call("GET", f"/partners/{org_id}/members/{member_id}", signer=keys)


def test_an_active_partner_gets_that_one_member_with_its_certifiers(pair: Pair, api: SignedApi) -> None:
    partnered(pair)
    api.join(pair.b_keys, "Comptable")  # another member of B: not listed
    reply = lookup(api, pair.people.keys["owner"], pair.b_org, member_of(pair.b_member))
    assert reply.status == 200, reply.body
    listed = {m["member_id"] for m in reply.body["members"]}
    assert listed == {member_of(pair.b_member), pair.b_owner.trust.member_id}  # and their certifier
    assert pair.b_member.device_id in {d["device_id"] for d in reply.body["devices"]}
    assert reply.body["cursor"] is None
    plain = pair.people.join("ana")  # a plain member of A adds to groups they author
    reply = lookup(api, plain.keys, pair.b_org, member_of(pair.b_member))
    assert reply.status == 200


def test_nobody_outside_an_active_partnership_is_answered_and_all_alike(
    pair: Pair, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    a_keys = pair.people.keys["owner"]
    drafter = member_of(pair.b_member)
    invitation = pair.a.partners.invite()
    pair.b_owner.partners.accept(invitation["code"])  # pending: not countersigned yet
    assert lookup(api, a_keys, pair.b_org, drafter).status == 404
    pair.a.partners.listing()  # now active
    _, guest = api.join(pair.b_keys, "Stagiaire", role="guest")
    _, removed = api.join(pair.b_keys, "Ancien")
    pair.b_owner.trust.remove(removed["member_id"])
    invited = api.invite(pair.b_keys, "Pas encore là")
    stranger = third_org(api, operator, tmp_path)
    refused = {
        "a guest of B": (pair.b_org, guest["member_id"]),
        "a removed member of B": (pair.b_org, removed["member_id"]),
        "an invitee of B not activated": (pair.b_org, invited["member_id"]),
        "an unknown id": (pair.b_org, "m_nopenopenopenope"),
        "not a member id": (pair.b_org, "nothing"),
        "a member of A asked as B's": (pair.b_org, pair.a.trust.member_id),
        "a third organisation's member asked as B's": (pair.b_org, member_of(stranger)),
        "a third organisation, not a partner": (stranger.trust.org_id, member_of(stranger)),
        "our own organisation": (pair.a_org, pair.a.trust.member_id),
    }
    for case, (org_id, member_id) in refused.items():
        reply = lookup(api, a_keys, org_id, member_id)
        assert reply.status == 404 and UNKNOWN in reply.body["message"], (case, reply.body)
    assert lookup(api, stranger.keys, pair.b_org, drafter).status == 404  # B is not its partner
    assert lookup(api, a_keys, pair.b_org, drafter).status == 200
    pair.b_owner.partners.end(pair.a_org)
    reply = lookup(api, a_keys, pair.b_org, drafter)
    assert reply.status == 404 and UNKNOWN in reply.body["message"]


def test_a_guest_or_a_follower_of_a_gets_403(pair: Pair, api: SignedApi, tmp_path: Path) -> None:
    partnered(pair)
    people = pair.people
    people.join("gus", role="guest")
    _, url = public_tribe(people)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    for keys in (people.keys["gus"], lea.keys):
        reply = lookup(api, keys, pair.b_org, member_of(pair.b_member))
        assert reply.status == 403, reply.body


def test_a_card_adds_the_partners_member_who_then_talks_in_the_group(pair: Pair) -> None:
    partnered(pair)
    pair.b_owner.partners.listing()
    card = pair.b_member.partners.card("https://app.bocage.test")
    target = parse_card(card["url"])
    assert card["url"].startswith("https://app.bocage.test/#/card?")
    assert (target.org_id, target.member_id) == (pair.b_org, member_of(pair.b_member))
    assert target.name == "Dessinateur"
    assert card["fingerprint"] == target.fingerprint == fingerprint(pair.b_member.trust.my_identity_key())
    checked = pair.a.partners.check_card(card["url"])
    assert checked == {
        "member_id": member_of(pair.b_member),
        "org_id": pair.b_org,
        "display_name": "Dessinateur (Cabinet Ardoise)",
    }
    cid = str(pair.a.create_channel("group", "Chantier")["channel_id"])
    pair.a.add_member(cid, checked["member_id"])
    pair.a.send_text(cid, "Bienvenue")
    assert texts(pair.b_member, cid) == ["Bienvenue"]
    pair.b_member.send_text(cid, "Merci")
    assert texts(pair.a, cid) == ["Bienvenue", "Merci"]


def test_a_card_whose_key_the_server_does_not_list_is_refused(pair: Pair, api: SignedApi) -> None:
    partnered(pair)
    url = card_of(pair)
    other_key = pair.b_owner.trust.my_identity_key()  # a real key of B, not this member's
    wrong = url.replace(parse_card(url).fingerprint, fingerprint(other_key))
    with pytest.raises(PartnerRefused, match="does not match what the server lists"):
        pair.a.partners.check_card(wrong)
    # A malicious server lists, for that member, a certificate naming another key (a device it
    # holds): the card's fingerprint no longer matches, and nothing is added.
    honest = pair.a.trust.client.partner_member

    def swapped(org_id: str, member_id: str) -> tuple[list[Any], list[Any]]:
        members, devices = honest(org_id, member_id)
        for m in members:
            if m["member_id"] == member_id:
                m["member_cert"] = {**m["member_cert"], "identity_key": other_key}
        return members, devices

    pair.a.trust.client.partner_member = swapped  # type: ignore[method-assign]
    with pytest.raises(PartnerRefused) as caught:
        pair.a.partners.check_card(url)
    assert str(caught.value) == CARD_MISMATCH


def test_a_card_of_a_non_partner_or_a_bad_link_is_refused(
    pair: Pair, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    partnered(pair)
    stranger = third_org(api, operator, tmp_path)
    with pytest.raises(PartnerRefused, match="not an active partner"):
        pair.a.partners.check_card(stranger.partners.card("https://app.bocage.test")["url"])
    with pytest.raises(PartnerRefused, match="your own organisation"):
        pair.a.partners.check_card(pair.a.partners.card()["url"])
    with pytest.raises(PartnerRefused, match="not a contact card"):
        pair.a.partners.check_card("https://app.bocage.test/#/partner?code=x")
    with pytest.raises(PartnerRefused, match="lacks fp"):
        pair.a.partners.check_card(card_of(pair).split("&fp=")[0])
