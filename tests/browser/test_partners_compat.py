"""The web app's partner code (web/js/partners.js) against the Python implementation (section 22).

Under node, like test_trust_compat.py, over two organisations: A (the worked examples of
tests/trust_vectors.py, an owner and a plain member) and B (an owner). What the browser signs
verifies in Python and is byte for byte what bocage/client/issuing.py signs; what Python signs the
browser takes as active; and the browser refuses what the Python client refuses: a root swapped
in the acceptance, a partnership statement the server invented or a partner's plain member signed,
an end hidden after it was seen, an earlier partnership's end served as the current one's (v3:
naming its invitation; v2: dated when first seen).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import pytest
from nacl.signing import SigningKey

from bocage.client import issuing
from bocage.client.partners import PartnerRefused, Partners
from bocage.client.profile import DeviceKeys, Profile
from bocage.client.trust import Trust
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.partners import (
    ContactCard,
    card_url,
    parse_card,
    parse_partner,
    partner_code,
    verify_acceptance,
    verify_end,
    verify_partner_ticket,
    verify_partnership,
)
from chalicelib.domain.statements import fingerprint, public_key_of, sign_statement
from tests.browser.test_trust_compat import HARNESS, INVITEE_DEVICE, OWNER_DEVICE
from tests.integration.test_partners import v2_end
from tests.trust_vectors import (
    INVITEE,
    INVITEE_DEVICE_SIGN,
    ORG,
    OWNER,
    OWNER_DEVICE_SIGN,
    ROOT,
    T,
    box_public,
    build_vectors,
    device_id,
    members_and_devices,
)
from tests.wire_js import run_harness

B_ORG, B_OWNER = "o_bbbbbbbbbbbbbbbb", "m_cccccccccccccccc"
B_IK, B_SIGN, B_BOX = bytes([0x81]) * 32, bytes([0x82]) * 32, bytes([0x83]) * 32
B_ROOT = fingerprint(public_key_of(B_IK))
B_DEVICE = device_id(B_SIGN)
CODE = "p_" + "b" * 16
SERVER = "https://api.bocage.test"

A_OWNER = {
    "org_id": ORG,
    "member_id": OWNER,
    "device_id": OWNER_DEVICE,
    "root": ROOT,
    "sign_seed": b64e(OWNER_DEVICE_SIGN),
}
A_MEMBER = {
    **A_OWNER,
    "member_id": INVITEE,
    "device_id": INVITEE_DEVICE,
    "sign_seed": b64e(INVITEE_DEVICE_SIGN),
}
B_OWNER_DEVICE = {
    "org_id": B_ORG,
    "member_id": B_OWNER,
    "device_id": B_DEVICE,
    "root": B_ROOT,
    "sign_seed": b64e(B_SIGN),
}


def js(op: str, **args: Any) -> Any:
    return run_harness(HARNESS, {"op": op, **args})[0]


def listing_a() -> dict[str, Any]:
    members, devices = members_and_devices(build_vectors())
    return {"members": members, "devices": devices}


def listing_b() -> dict[str, Any]:
    """B's GET /members: its first owner (the root) and that owner's device."""
    identity = public_key_of(B_IK)
    member_cert = sign_statement(
        {
            "purpose": "bocage/member-cert/v2",
            "org_id": B_ORG,
            "member_id": B_OWNER,
            "identity_key": identity,
            "display_name": "Architecte",
            "ticket_key": None,
            "root": True,
            "issued_at": T,
        },
        B_IK,
    )
    device_cert = sign_statement(
        {
            "purpose": "bocage/device-cert/v2",
            "org_id": B_ORG,
            "member_id": B_OWNER,
            "device_id": B_DEVICE,
            "sign_public_key": public_key_of(B_SIGN),
            "box_public_key": box_public(B_BOX),
            "identity_key": identity,
            "ticket_key": None,
            "issued_at": T,
        },
        B_IK,
    )
    member: dict[str, Any] = {
        "member_id": B_OWNER,
        "member_cert": member_cert,
        "ticket": None,
        "role_statements": [],
        "removal": None,
    }
    fields = ("device_id", "member_id", "sign_public_key", "box_public_key")
    device = {
        **{f: device_cert[f] for f in fields},
        "device_cert": device_cert,
        "ticket": None,
        "revocation": None,
    }
    return {"members": [member], "devices": [device]}


def python_partnership(at: int = T) -> dict[str, Any]:
    """A invites (its owner's device), B's owner accepts, A's owner countersigns: all by Python,
    from ``at`` on."""
    ticket = issuing.partner_ticket(SigningKey(OWNER_DEVICE_SIGN), OWNER_DEVICE, ORG, at, allow_tribes=True)
    target = parse_partner(partner_code(CODE, ORG, ticket.fragment_seed, ROOT))
    key = ticket.statement["ticket_key"]
    acceptance = issuing.partner_acceptance(target, B_ORG, B_ROOT, B_DEVICE, at + 10)
    theirs = issuing.partnership(
        SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, ROOT, key, at + 10, allow_tribes=False
    )
    ours = issuing.partnership(
        SigningKey(OWNER_DEVICE_SIGN), OWNER_DEVICE, ORG, B_ORG, B_ROOT, key, at + 20, allow_tribes=True
    )
    return {
        "ticket": ticket,
        "target": target,
        "a_entry": entry(B_ORG, "inviter", ticket.statement, acceptance, ours, theirs),
        "b_entry": entry(ORG, "accepter", ticket.statement, acceptance, theirs, ours),
    }


def entry(partner: str, side: str, ticket: Any, acceptance: Any, ours: Any, theirs: Any) -> dict[str, Any]:
    """One GET /partners entry as the server lists it."""
    return {
        "partner_org_id": partner,
        "partner_name": "Partenaire",
        "status": "active" if ours and theirs else "pending",
        "side": side,
        "ticket": ticket,
        "acceptance": acceptance,
        "ours": ours,
        "theirs": theirs,
        "end": None,
        "created_at": T,
        "ended_at": None,
    }


#: The browser's clock when it checks a partnership (an end first seen is dated no later, 22.7).
SEEN = T + 3600


def a_checks(e: dict[str, Any], kept: dict[str, Any] | None = None, now: int = SEEN) -> dict[str, Any]:
    """The partnership as A's owner's browser verifies it."""
    scene = {"org_id": ORG, "root": ROOT, **listing_a()}
    result: dict[str, Any] = js(
        "partner_check", **scene, entry=e, kept=kept or {}, partner_listing=listing_b(), now=now
    )
    return result


def b_checks(e: dict[str, Any]) -> dict[str, Any]:
    scene = {"org_id": B_ORG, "root": B_ROOT, **listing_b()}
    result: dict[str, Any] = js(
        "partner_check", **scene, entry=e, kept={}, partner_listing=listing_a(), now=SEEN
    )
    return result


def test_what_the_browser_signs_verifies_in_python() -> None:
    made = js("partner_ticket", device=A_OWNER, allow_tribes=True, now=T)
    ticket = verify_partner_ticket(
        made["ticket"], org_id=ORG, issuer_sign_key=public_key_of(OWNER_DEVICE_SIGN)
    )
    assert ticket["allow_tribes"] is True and ticket["expires_at"] == T + 7 * 86400
    assert ticket["ticket_key"] == public_key_of(b64d(made["seed"]))
    answer = {
        "code": CODE,
        "org_id": ORG,
        "url": f"https://app.test/#/partner?server={SERVER}&code={CODE}&org={ORG}",
    }
    links = js("partner_links", answer=answer, seed=made["seed"], root=ROOT)
    for text in (links["code"], links["url"]):
        target = parse_partner(text)
        assert (target.code, target.org, target.ticket_seed, target.root) == (
            CODE,
            ORG,
            b64d(made["seed"]),
            ROOT,
        )
    assert parse_partner(links["url"]).server == SERVER

    accepted = js(
        "partner_accept",
        device=B_OWNER_DEVICE,
        text=links["url"],
        server=SERVER,
        allow_tribes=False,
        now=T + 10,
    )
    assert accepted["code"] == CODE
    acceptance = verify_acceptance(accepted["acceptance"], ticket, B_ORG)
    assert acceptance["root"] == B_ROOT and acceptance["by_device"] == B_DEVICE
    statement = verify_partnership(
        accepted["statement"],
        org_id=B_ORG,
        partner_org_id=ORG,
        ticket_key=ticket["ticket_key"],
        signer_key=public_key_of(B_SIGN),
    )
    assert statement["partner_root"] == ROOT and statement["allow_tribes"] is False

    key = ticket["ticket_key"]
    end = js("partner_end", device=B_OWNER_DEVICE, partner=ORG, ticket_key=key, now=T + 30)
    verify_end(end, org_id=B_ORG, partner_org_id=ORG, signer_key=public_key_of(B_SIGN))
    assert (end["purpose"], end["ticket_key"]) == ("bocage/partnership-end/v3", key)
    assert end == issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, T + 30)


def test_the_browser_signs_the_same_bytes_as_python() -> None:
    """Ed25519 is deterministic: the same acceptance, statement and countersignature, byte for byte."""
    p = python_partnership()
    code = partner_code(CODE, ORG, p["ticket"].fragment_seed, ROOT)
    accepted = js(
        "partner_accept", device=B_OWNER_DEVICE, text=code, server=SERVER, allow_tribes=False, now=T + 10
    )
    assert accepted["acceptance"] == p["a_entry"]["acceptance"]
    assert accepted["statement"] == p["b_entry"]["ours"]
    pending = {**p["a_entry"], "ours": None, "theirs": p["b_entry"]["ours"]}
    scene = {"org_id": ORG, "root": ROOT, **listing_a()}
    signed = js("partner_countersign", **scene, entry=pending, device=A_OWNER, now=T + 20)
    assert signed["due"] is True and signed["codes"] == []
    assert signed["statement"] == p["a_entry"]["ours"]


def test_a_partnership_python_made_is_active_on_both_sides_in_the_browser() -> None:
    p = python_partnership()
    assert a_checks(p["a_entry"]) == {
        "status": "active",
        "partner_root": B_ROOT,
        "codes": [],
        "messages": [],
        "kept": {
            B_ORG: {
                "root": B_ROOT,
                "ticket_key": p["ticket"].statement["ticket_key"],
                "ended": False,
                "active": True,
                "ends": {},
                "begun": {p["ticket"].statement["ticket_key"]: T + 20},  # our statement's date
                "name": "Partenaire",
                "allow_tribes": True,
                "their_allow_tribes": False,
            }
        },
    }
    # The name first seen stays; the server renaming the partner later is reported, not shown (22.6).
    renamed = a_checks({**p["a_entry"], "partner_name": "Autre"}, kept=a_checks(p["a_entry"])["kept"])
    assert renamed["codes"] == ["partner_renamed"] and renamed["kept"][B_ORG]["name"] == "Partenaire"
    seen_by_b = b_checks(p["b_entry"])
    assert (seen_by_b["status"], seen_by_b["partner_root"], seen_by_b["codes"]) == ("active", ROOT, [])
    # Before the countersignature: pending on both sides, and nothing to warn about.
    waiting = b_checks({**p["b_entry"], "theirs": None})
    assert (waiting["status"], waiting["partner_root"], waiting["codes"]) == ("pending", ROOT, [])
    unsigned = a_checks({**p["a_entry"], "ours": None})
    assert (unsigned["status"], unsigned["partner_root"], unsigned["codes"]) == ("pending", None, [])


def test_codes_the_python_client_refuses_the_browser_refuses() -> None:
    p = python_partnership()
    seed = p["ticket"].fragment_seed
    own = js(
        "partner_accept",
        device=A_OWNER,
        text=partner_code(CODE, ORG, seed, ROOT),
        server=SERVER,
        allow_tribes=False,
        now=T,
    )
    assert own["error"] == "PartnerRefused" and "your own organisation" in own["message"]
    link = f"https://app.test/#/partner?server=https://elsewhere.test&code={CODE}&org={ORG}&ticket={seed}&root={ROOT}"
    other = js("partner_accept", device=B_OWNER_DEVICE, text=link, server=SERVER, allow_tribes=False, now=T)
    assert other["error"] == "PartnerRefused" and "another deployment" in other["message"]
    for text in (
        f"bocage-partner:v2:{CODE}:{ORG}:{seed}",
        f"bocage-partner:v2:{CODE}:{ORG}:abc:{ROOT}",
        "bonjour",
    ):
        assert js("partner_parse", text=text)["error"] == "PartnerRefused", text


def test_a_root_swapped_in_the_acceptance_gets_no_countersignature() -> None:
    """The server rewrites B's acceptance with a root of its own: the ticket key's signature
    breaks, A's browser signs nothing and, were our statement there, pins nothing."""
    p = python_partnership()
    forged = {**p["a_entry"]["acceptance"], "root": public_key_of(b"\x07" * 32)}
    pending = {**p["a_entry"], "ours": None, "acceptance": forged}
    scene = {"org_id": ORG, "root": ROOT, **listing_a()}
    signed = js("partner_countersign", **scene, entry=pending, device=A_OWNER, now=T + 20)
    assert signed["statement"] is None and signed["codes"] == ["invalid_partnership"]
    checked = a_checks({**p["a_entry"], "acceptance": forged})
    assert (checked["status"], checked["partner_root"], checked["codes"]) == (
        "pending",
        None,
        ["invalid_partnership"],
    )
    # A plain member's browser does not countersign at all.
    as_member = js("partner_countersign", **scene, entry=pending, device=A_MEMBER, now=T + 20)
    assert as_member["due"] is False


def test_a_statement_the_server_invented_or_a_plain_member_signed_is_refused() -> None:
    p = python_partnership()
    key = p["ticket"].statement["ticket_key"]
    # B's view of A: the server replaces A's statement with one A's plain member's device signed.
    by_member = issuing.partnership(
        SigningKey(INVITEE_DEVICE_SIGN), INVITEE_DEVICE, ORG, B_ORG, B_ROOT, key, T + 20, allow_tribes=True
    )
    seen = b_checks({**p["b_entry"], "theirs": by_member})
    assert (seen["status"], seen["codes"]) == ("pending", ["invalid_partnership"])
    # A's view: "our" statement signed by a device the server made up pins nothing.
    rogue = SigningKey(bytes([0x99]) * 32)
    invented = issuing.partnership(rogue, OWNER_DEVICE, ORG, B_ORG, B_ROOT, key, T + 20, allow_tribes=True)
    checked = a_checks({**p["a_entry"], "ours": invented})
    assert (checked["status"], checked["partner_root"], checked["codes"]) == (
        "pending",
        None,
        ["invalid_partnership"],
    )
    # B's statement pinning another root than A's is not A's partner's word.
    elsewhere = issuing.partnership(
        SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, public_key_of(b"\x05" * 32), key, T + 10, allow_tribes=False
    )
    checked = a_checks({**p["a_entry"], "theirs": elsewhere})
    assert (checked["status"], checked["codes"]) == ("pending", ["invalid_partnership"])


def test_an_end_hidden_after_it_was_seen_is_a_rollback() -> None:
    p = python_partnership()
    key = p["ticket"].statement["ticket_key"]
    end = issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, T + 30)
    ended = a_checks({**p["a_entry"], "end": end, "status": "ended"})
    assert (ended["status"], ended["codes"]) == ("ended", [])
    assert ended["kept"][B_ORG]["ended"] is True
    hidden = a_checks(p["a_entry"], kept=ended["kept"])
    assert (hidden["status"], hidden["codes"]) == ("ended", ["partnership_rollback"])
    # Our own side's end must be an admin's: a plain member's is ignored, with a warning.
    by_member = issuing.partnership_end(
        SigningKey(INVITEE_DEVICE_SIGN), INVITEE_DEVICE, ORG, B_ORG, key, T + 30
    )
    ignored = a_checks({**p["a_entry"], "end": by_member})
    assert (ignored["status"], ignored["codes"]) == ("active", ["invalid_partnership"])


def test_an_ended_partnership_served_again_after_a_newer_one_is_a_rollback() -> None:
    """The browser remembers every invitation whose end it saw: a newer partnership with the same
    organisation does not make it forget, and it never countersigns an ended one again."""
    p = python_partnership()
    key = p["ticket"].statement["ticket_key"]
    end = issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, T + 30)
    kept = a_checks({**p["a_entry"], "end": end, "status": "ended"})["kept"]
    assert kept[B_ORG]["ends"] == {key: T + 30}
    kept[B_ORG].update(ticket_key="a-newer-invitation", ended=False, active=True)  # then a second one
    revived = a_checks(p["a_entry"], kept=kept)
    assert (revived["status"], revived["codes"]) == ("ended", ["partnership_rollback"])
    pending = {**p["a_entry"], "ours": None}
    scene = {"org_id": ORG, "root": ROOT, **listing_a()}
    offered = js("partner_countersign", **scene, entry=pending, device=A_OWNER, now=T + 40, kept=kept)
    assert offered["due"] is False


def test_an_end_is_dated_by_its_signature_or_when_first_seen_and_never_moves() -> None:
    """22.7, as bocage/client/partners.py dates it: the earlier of the end's signed date, when it
    verifies (B's against B's listing up to the root A pinned, ours against ours), and the clock
    of the device that first sees it; kept per invitation and never moved."""
    p = python_partnership()
    key = p["ticket"].statement["ticket_key"]
    b_end = issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, T + 30)
    assert a_checks({**p["a_entry"], "end": b_end}, now=T + 10)["kept"][B_ORG]["ends"] == {key: T + 10}
    # B's end with a signature B's owner's device did not make: still an end (ending only takes
    # trust away, 22.5), dated when first seen, and reported.
    rogue = issuing.partnership_end(SigningKey(bytes([0x99]) * 32), B_DEVICE, B_ORG, ORG, key, T + 30)
    forged = {**b_end, "sig": rogue["sig"]}
    unsigned = a_checks({**p["a_entry"], "end": forged})
    assert (unsigned["status"], unsigned["kept"][B_ORG]["ends"]) == ("ended", {key: SEEN})
    assert unsigned["codes"] == ["invalid_partnership"]
    kept = a_checks({**p["a_entry"], "end": b_end})["kept"]
    assert kept[B_ORG]["ends"] == {key: T + 30}
    moved = issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, T + 3)
    again = a_checks({**p["a_entry"], "end": moved}, kept=copy.deepcopy(kept), now=SEEN + 100)
    assert (again["status"], again["kept"][B_ORG]["ends"]) == ("ended", {key: T + 30})
    ours = issuing.partnership_end(SigningKey(OWNER_DEVICE_SIGN), OWNER_DEVICE, ORG, B_ORG, key, T + 40)
    assert a_checks({**p["a_entry"], "end": ours})["kept"][B_ORG]["ends"] == {key: T + 40}
    # A record kept before ends had dates names the ended invitation only: the rollback is still
    # caught, and the end dated when this device first reads it.
    legacy = {k: v for k, v in kept[B_ORG].items() if k != "ends"} | {"ended_keys": [key]}
    hidden = a_checks(p["a_entry"], kept={B_ORG: legacy})
    assert hidden["codes"] == ["partnership_rollback"] and hidden["kept"][B_ORG]["ends"] == {key: SEEN}


class PartnersServer:
    """What A's owner's Python client asks the server when it lists partnerships: A's listing,
    the one entry, and B's listing."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = entry

    def member_listing(self) -> tuple[list[Any], list[Any]]:
        a = listing_a()
        return a["members"], a["devices"]

    def partners(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(self.entry)]

    def partner_listing(self, org_id: str) -> tuple[list[Any], list[Any]]:
        b = listing_b()
        return b["members"], b["devices"]


class CountingServer(PartnersServer):
    """The same server, counting the partners' listings it is asked for."""

    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry)
        self.listings_asked: list[str] = []

    def partner_listing(self, org_id: str) -> tuple[list[Any], list[Any]]:
        self.listings_asked.append(org_id)
        return super().partner_listing(org_id)


def python_checks(home: Path, e: dict[str, Any], now: int) -> dict[str, Any]:
    """The partnership as A's owner's Python client verifies it (a fresh profile ``home``, its
    clock at ``now``), in the shape of ``a_checks``, with the warnings' messages."""
    trust = python_trust(home, PartnersServer(e), now)
    [listed] = Partners(trust, SERVER).listing(confirm=False)
    warnings = trust.take_warnings()
    return {
        "status": listed["status"],
        "codes": [w["code"] for w in warnings],
        "messages": [w["message"] for w in warnings],
        "kept": trust.state.partners,
    }


def python_trust(home: Path, server: PartnersServer, now: int) -> Trust:
    """A's owner's Python client over ``server``: a fresh profile ``home``, its clock at ``now``."""
    profile = Profile(home)
    keys = DeviceKeys.generate()
    profile.save_keys(keys)
    profile.save_info({"server": SERVER, "org_id": ORG, "member_id": OWNER})
    state = profile.trust()
    state.root = ROOT
    profile.save_trust(state)
    a = listing_a()
    (home / "members.json").write_text(json.dumps({"members": a["members"], "devices": a["devices"]}))
    return Trust(profile, cast(Any, server), keys, lambda: now)


def test_a_refresh_asks_each_partners_listing_once(tmp_path: Path) -> None:
    """Review L7: refreshing the partners, both clients check B's statement (and B's end) with
    B's listing and build the shared view from it: one GET /partners/{B}/members for both."""
    p = python_partnership()
    key = p["ticket"].statement["ticket_key"]
    listing = f"/partners/{B_ORG}/members"
    a = listing_a()
    scene = {"org_id": ORG, "root": ROOT, "member_id": OWNER, "device_id": OWNER_DEVICE, **a}
    scene |= {"kept": {}, "listings": {}, "served": {B_ORG: listing_b()}, "failing": [], "usable": [B_DEVICE]}
    ended = {
        **p["a_entry"],
        "end": issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, T + 30),
    }
    for n, e in enumerate((p["a_entry"], ended)):
        web = js("learn_partners", **scene, entries=[e])
        assert web["asked"] == ["/partners", listing] and web["listed"] == [B_ORG] and web["codes"] == []
        server = CountingServer(e)
        trust = python_trust(tmp_path / f"once{n}", server, SEEN)
        trust.learn_partners()  # pinned B: a refresh now asks the partners again
        server.listings_asked.clear()
        shared = trust.view(refresh=True)
        assert server.listings_asked == [B_ORG] and trust.take_warnings() == []
        assert list(shared.partners) == [B_ORG]

    # Meeting a partner's host with nothing pinned asks the partnerships and B's listing once.
    server = CountingServer(p["a_entry"])
    trust = python_trust(tmp_path / "met", server, SEEN)
    asked: list[str] = []
    listed = server.partners

    def counted() -> list[dict[str, Any]]:
        asked.append("/partners")
        return listed()

    server.partners = counted  # type: ignore[method-assign]
    trust._met_host(B_ORG)
    assert asked == ["/partners"] and server.listings_asked == [B_ORG]
    assert trust.state.partners[B_ORG]["active"] is True


class EndingServer(PartnersServer):
    """The same server, keeping the end A's owner's Python client sends (DELETE /partners/{org})."""

    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry)
        self.ended: list[dict[str, Any]] = []

    def end_partner(self, partner: str, statement: dict[str, Any]) -> dict[str, Any]:
        self.ended.append(statement)
        return {**self.entry, "end": statement, "status": "ended"}


def test_an_end_names_only_an_invitation_this_device_verified(tmp_path: Path) -> None:
    """22.7: both clients sign an end for the invitation they kept for the partnership, or one
    the entry shows (our statement naming it, or, inviting, our ticket and an acceptance of its
    key); a key the server alone lists (another invitation of ours, not yet accepted) is refused."""
    first, second = python_partnership(), python_partnership(at=SECOND)
    key = first["ticket"].statement["ticket_key"]
    kept = a_checks(first["a_entry"])["kept"]
    swapped = {"ticket": second["ticket"].statement}
    cases = [
        ("listed", first["a_entry"], {}, key),
        ("kept", {**first["a_entry"], "ours": None}, kept, key),
        ("pending", {**first["a_entry"], "ours": None}, {}, key),
        ("swapped", {**first["a_entry"], **swapped}, {}, None),
        ("swapped_pending", {**first["a_entry"], **swapped, "ours": None}, {}, None),
        ("swapped_kept", {**first["a_entry"], **swapped}, kept, None),
    ]
    scene = {"org_id": ORG, "root": ROOT, **listing_a()}
    for name, e, before, named in cases:
        web = js("partner_end_key", **scene, entry=e, kept=before)
        server = EndingServer(e)
        trust = python_trust(tmp_path / name, server, SEEN)
        trust.state.partners = copy.deepcopy(before)
        if named is None:
            assert web["error"] == "PartnerRefused" and "its invitation does not verify" in web["message"]
            with pytest.raises(PartnerRefused, match="its invitation does not verify"):
                Partners(trust, SERVER).end(B_ORG)
            assert server.ended == []
        else:
            assert web == {"ticket_key": named}
            Partners(trust, SERVER).end(B_ORG)
            assert [end["ticket_key"] for end in server.ended] == [named]


SECOND = T + 86_400


def test_an_end_signed_before_the_partnership_began_is_dated_when_first_seen(tmp_path: Path) -> None:
    """22.7: an end naming the second invitation but signed (by either side) before the second
    partnership began, as a server could have had one signed before the invitation was accepted:
    both clients date it when first seen and report it, not by its signature."""
    second = python_partnership(at=SECOND)
    key = second["ticket"].statement["ticket_key"]
    seen = SECOND + 3600
    presigned = (
        issuing.partnership_end(SigningKey(OWNER_DEVICE_SIGN), OWNER_DEVICE, ORG, B_ORG, key, SECOND - 3000),
        issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, SECOND - 3000),
    )
    began = f"partnership with {B_ORG}: its end is dated before the partnership began: dated when first seen"
    for checked in both_check_ends(tmp_path, second["a_entry"], presigned, seen, began):
        assert (checked["status"], checked["codes"]) == ("ended", ["invalid_partnership"])
        assert checked["kept"][B_ORG]["ends"] == {key: seen}


def test_an_end_is_dated_by_its_signature_only_once_our_statement_verified(tmp_path: Path) -> None:
    """22.7: the server leaves our own statement out of the entry, so that nothing dates the
    partnership's beginning: an old end (the first partnership's v2 end) is dated when first
    seen, reported; with the beginning kept from an earlier listing, an end signed before it is
    too. A fresh end of a pending one is quietly dated now (an old v3 one too: see below)."""
    second = python_partnership(at=SECOND)
    key = second["ticket"].statement["ticket_key"]
    seen = SECOND + 3600
    unverified = f"partnership with {B_ORG}: this device never verified our statement of this partnership"
    e = {
        **second["a_entry"],
        "ours": None,
        "end": v2_end(OWNER_DEVICE_SIGN, OWNER_DEVICE, ORG, B_ORG, T + 40),
    }
    web, python = both_check(tmp_path / "strip", {**e, "status": "ended"}, seen)
    assert web["messages"] == python["messages"] == [f"{unverified}: its end is dated when first seen"]
    for checked in (web, python):
        assert (checked["status"], checked["codes"]) == ("ended", ["invalid_partnership"])
        assert checked["kept"][B_ORG]["ends"] == {key: seen}
    kept = a_checks(second["a_entry"], now=SECOND + 60)["kept"]  # seen active: began at SECOND + 20
    stale = {**second["a_entry"], "ours": None, "end": v2_end(B_SIGN, B_DEVICE, B_ORG, ORG, T + 30)}
    web = a_checks(stale, kept=copy.deepcopy(kept), now=seen)
    trust = python_trust(tmp_path / "kept", PartnersServer(stale), seen)
    trust.state.partners = copy.deepcopy(kept)
    Partners(trust, SERVER).listing(confirm=False)
    for codes, ends in (
        (web["codes"], web["kept"]),
        ([w["code"] for w in trust.take_warnings()], trust.state.partners),
    ):
        assert codes == ["invalid_partnership"] and ends[B_ORG]["ends"] == {key: seen}
    fresh = issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, seen - 100)
    for checked in both_check(tmp_path / "fresh", {**second["a_entry"], "ours": None, "end": fresh}, seen):
        assert (checked["status"], checked["codes"], checked["kept"][B_ORG]["ends"]) == (
            "ended",
            [],
            {key: seen},
        )


def test_an_older_partnership_than_a_seen_end_and_a_seen_end_behind_another_ticket_stay_ended(
    tmp_path: Path,
) -> None:
    """Rollbacks (22.5): after seeing the second partnership's end, both clients keep it ended when
    the server serves the first one as active (it ended before the second began: dated then), or
    the second one behind a ticket that is not its invitation's (the kept record stays the one
    whose end was seen). An end kept before ends had dates (dated when first read, no known
    beginning) makes no partnership older: the current one stays active."""
    first, second = python_partnership(), python_partnership(at=SECOND)
    key = second["ticket"].statement["ticket_key"]
    end = issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, SECOND + 30)
    ended = {**second["a_entry"], "end": end, "status": "ended"}
    seen = SECOND + 3600
    kept = a_checks(ended, now=seen)["kept"]
    assert kept[B_ORG]["ends"] == {key: SECOND + 30}
    older = first["ticket"].statement["ticket_key"]
    hidden = {**second["a_entry"], "ticket": {**second["a_entry"]["ticket"], "ticket_key": "x" * 43}}
    for n, (e, ends) in enumerate(
        ((first["a_entry"], {key: SECOND + 30, older: SECOND + 20}), (hidden, {key: SECOND + 30}))
    ):
        web = a_checks(e, kept=copy.deepcopy(kept), now=seen + 60)
        trust = python_trust(tmp_path / f"back{n}", PartnersServer(e), seen + 60)
        trust.state.partners = copy.deepcopy(kept)
        [listed] = Partners(trust, SERVER).listing(confirm=False)
        python = {"status": listed["status"], "codes": [w["code"] for w in trust.take_warnings()]}
        assert web["codes"] == python["codes"] and "partnership_rollback" in web["codes"]
        assert web["status"] == python["status"] == "ended"
        for record in (web["kept"][B_ORG], trust.state.partners[B_ORG]):
            assert record["ended"] is True and record["active"] is False and record["ends"] == ends
        assert Partners(trust, SERVER).pinned_root(B_ORG) is None
    upgraded = {
        B_ORG: {"root": B_ROOT, "ticket_key": key, "ended": False, "active": True, "ended_keys": [older]}
    }
    web = a_checks(second["a_entry"], kept=copy.deepcopy(upgraded), now=seen)
    trust = python_trust(tmp_path / "upgraded", PartnersServer(second["a_entry"]), seen)
    trust.state.partners = copy.deepcopy(upgraded)
    [listed] = Partners(trust, SERVER).listing(confirm=False)
    assert (web["status"], web["codes"], listed["status"], trust.take_warnings()) == (
        "active",
        [],
        "active",
        [],
    )


def both_check(home: Path, e: dict[str, Any], now: int) -> list[dict[str, Any]]:
    """The entry as A's owner's browser and Python client check it, from nothing kept."""
    return [a_checks(e, now=now), python_checks(home, e, now)]


def both_check_ends(
    home: Path, e: dict[str, Any], ends: tuple[dict[str, Any], ...], now: int, warning: str
) -> list[dict[str, Any]]:
    """Each of ``ends`` served in the entry, as both clients check it from nothing kept, once
    they both report exactly ``warning``."""
    checked = []
    for n, end in enumerate(ends):
        web, python = both_check(home / f"end{n}", {**e, "end": end, "status": "ended"}, now)
        assert web["messages"] == python["messages"] == [warning]
        checked += [web, python]
    return checked


def test_an_earlier_partnerships_end_served_again_ends_nothing(tmp_path: Path) -> None:
    """22.7: the server serves the first partnership's genuine end (B's, or our own) as the end
    of a second one a day later. It names the first invitation: both clients keep the second
    active, date nothing and report the same warning; the second's own end, naming it, ends it,
    dated by its signature, unreported."""
    first = python_partnership()
    second = python_partnership(at=T + 86_400)
    old, key = first["ticket"].statement["ticket_key"], second["ticket"].statement["ticket_key"]
    seen = T + 86_400 + 3600
    stale_ends = (
        issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, old, T + 30),
        issuing.partnership_end(SigningKey(OWNER_DEVICE_SIGN), OWNER_DEVICE, ORG, B_ORG, old, T + 40),
    )
    ignored = "end statement ignored: it names another invitation than this partnership's"
    warning = f"partnership with {B_ORG}: {ignored}"
    for checked in both_check_ends(tmp_path, second["a_entry"], stale_ends, seen, warning):
        assert (checked["status"], checked["codes"]) == ("active", ["invalid_partnership"])
        assert checked["kept"][B_ORG]["ends"] == {} and checked["kept"][B_ORG]["active"] is True
    own = issuing.partnership_end(SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, key, T + 86_400 + 30)
    for checked in both_check(tmp_path / "own", {**second["a_entry"], "end": own, "status": "ended"}, seen):
        assert (checked["status"], checked["codes"], checked["kept"][B_ORG]["ends"]) == (
            "ended",
            [],
            {key: T + 86_400 + 30},
        )


def test_an_earlier_partnerships_v2_end_served_again_is_dated_when_first_seen(tmp_path: Path) -> None:
    """22.7: a v2 end names no invitation, so a server can serve the first partnership's (B's,
    or our own, signed before v3) as the end of a second one a day later, to date it back before
    it began. Both clients take it as an end, dated when first seen, and report the same
    warning; the second partnership's own v2 end is dated by its signature, unreported."""
    second = python_partnership(at=T + 86_400)
    key = second["ticket"].statement["ticket_key"]
    seen = T + 86_400 + 3600
    stale_ends = (
        v2_end(B_SIGN, B_DEVICE, B_ORG, ORG, T + 30),
        v2_end(OWNER_DEVICE_SIGN, OWNER_DEVICE, ORG, B_ORG, T + 40),
    )
    began = "its end is dated before the partnership began: dated when first seen"
    for n, stale in enumerate(stale_ends):
        web, python = both_check(
            tmp_path / f"stale{n}", {**second["a_entry"], "end": stale, "status": "ended"}, seen
        )
        assert web["messages"] == python["messages"] == [f"partnership with {B_ORG}: {began}"]
        for checked in (web, python):
            assert (checked["status"], checked["codes"]) == ("ended", ["invalid_partnership"])
            assert checked["kept"][B_ORG]["ends"] == {key: seen}
    own = v2_end(B_SIGN, B_DEVICE, B_ORG, ORG, T + 86_400 + 30)
    for checked in both_check(tmp_path / "own", {**second["a_entry"], "end": own, "status": "ended"}, seen):
        assert (checked["status"], checked["codes"], checked["kept"][B_ORG]["ends"]) == (
            "ended",
            [],
            {key: T + 86_400 + 30},
        )


def test_a_v2_end_is_judged_against_the_statements_that_verify_only(tmp_path: Path) -> None:
    """The interim check of a v2 end reads the dates of the partnership's statements that verify:
    a partner's statement the server made up, dated a day later, does not make the partnership's
    genuine v2 end look earlier than its beginning (which would date it when first seen, later)."""
    p = python_partnership()
    key = p["ticket"].statement["ticket_key"]
    forged = issuing.partnership(
        SigningKey(bytes([0x99]) * 32), B_DEVICE, B_ORG, ORG, ROOT, key, T + 86_400, allow_tribes=False
    )
    e = {**p["a_entry"], "theirs": forged, "end": v2_end(B_SIGN, B_DEVICE, B_ORG, ORG, T + 30)}
    web, python = both_check(tmp_path / "forged", e, SEEN)
    assert web["messages"] == python["messages"]
    for checked in (web, python):
        assert (checked["status"], checked["codes"]) == ("ended", ["invalid_partnership"])
        assert checked["kept"][B_ORG]["ends"] == {key: T + 30}


def test_a_contact_card_reads_the_same_and_a_key_the_server_swapped_is_refused() -> None:
    """A member's card (22.6) made by either client parses in the other; the browser takes the
    card of B's owner against B's listing, and refuses it when the server lists another key for
    that member (a certificate of its own), when the card names another key, and when B is not an
    active partner in its view."""
    identity = public_key_of(B_IK)
    card = ContactCard(B_ORG, B_OWNER, "Architecte Émile", fingerprint(identity))
    made_by_js = js("partner_card_url", app_url="https://app.test/", card=dataclasses.asdict(card))
    assert made_by_js == card_url("https://app.test/", card) and parse_card(made_by_js) == card
    pinned = {"root": B_ROOT, "active": True, "ended": False, "ticket_key": "k", "name": "Cabinet Ardoise"}
    listing = listing_b()
    ok = js("partner_card_check", text=made_by_js, pinned=pinned, listing=listing)
    assert ok == {
        "member_id": B_OWNER,
        "org_id": B_ORG,
        "display_name": "Architecte (Cabinet Ardoise)",
        "identity_key": identity,  # checked against the card: the caller keeps it (22.6)
    }

    other_ik = bytes([0x91]) * 32
    swapped = copy.deepcopy(listing)
    forged = {**swapped["members"][0]["member_cert"], "identity_key": public_key_of(other_ik)}
    swapped["members"][0]["member_cert"] = sign_statement(
        {k: v for k, v in forged.items() if k != "sig"}, other_ik
    )
    lied = js("partner_card_check", text=made_by_js, pinned=pinned, listing=swapped)
    assert lied["code"] == "card_mismatch" and "does not match what the server lists" in lied["message"]
    wrong = card_url(
        "https://app.test", dataclasses.replace(card, fingerprint=fingerprint(public_key_of(other_ik)))
    )
    assert js("partner_card_check", text=wrong, pinned=pinned, listing=listing)["code"] == "card_mismatch"
    ended = js("partner_card_check", text=made_by_js, pinned={**pinned, "ended": True}, listing=listing)
    assert ended["code"] == "card_not_partner"
    for text in ("https://app.test/#/partner?org=x", made_by_js.split("&fp=")[0]):
        assert js("partner_card_check", text=text, pinned=pinned, listing=listing)["code"] == "card_invalid"


def test_our_pending_invitations_end_seen_late_is_reported_only_where_the_partner_was_pinned(
    tmp_path: Path,
) -> None:
    """22.7: B accepted our invitation, our admin ended it before countersigning (so nothing
    pinned B's root through it). A device of ours that keeps nothing of B first sees that end an
    hour later: ended, dated when first seen, and not reported, on both clients. The same entry
    on a device that pinned B's root in an earlier partnership is reported, as is B's side with
    B's statement left out (an honest accepter's entry always carries it)."""
    second = python_partnership(at=SECOND)
    key = second["ticket"].statement["ticket_key"]
    seen = SECOND + 3600
    ours = issuing.partnership_end(SigningKey(OWNER_DEVICE_SIGN), OWNER_DEVICE, ORG, B_ORG, key, SECOND + 30)
    pending = {**second["a_entry"], "ours": None, "end": ours, "status": "ended"}
    for checked in both_check(tmp_path / "new", pending, seen):
        assert (checked["status"], checked["messages"]) == ("ended", [])
        assert checked["kept"][B_ORG]["ends"] == {key: seen}
    kept = a_checks(python_partnership()["a_entry"], now=T + 60)["kept"]  # B's root pinned
    assert kept[B_ORG]["root"] == B_ROOT
    web = a_checks(pending, kept=copy.deepcopy(kept), now=seen)
    trust = python_trust(tmp_path / "pinned", PartnersServer(pending), seen)
    trust.state.partners = copy.deepcopy(kept)
    [listed] = Partners(trust, SERVER).listing(confirm=False)
    unverified = f"partnership with {B_ORG}: this device never verified our statement of this partnership"
    assert (
        web["messages"]
        == [w["message"] for w in trust.take_warnings()]
        == [f"{unverified}: its end is dated when first seen"]
    )
    assert web["status"] == listed["status"] == "ended"
    assert web["kept"][B_ORG]["ends"] == trust.state.partners[B_ORG]["ends"] == {key: seen}
    first = python_partnership()
    b_end = issuing.partnership_end(
        SigningKey(B_SIGN), B_DEVICE, B_ORG, ORG, first["ticket"].statement["ticket_key"], T + 30
    )
    stripped = b_checks({**first["b_entry"], "ours": None, "end": b_end, "status": "ended"})
    assert (stripped["status"], stripped["codes"]) == ("ended", ["invalid_partnership"])
