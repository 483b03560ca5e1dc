"""Chain evaluation (bocage/client/certs.py) on the protocol's worked examples and on forgeries."""

from __future__ import annotations

import copy
from typing import Any

from bocage.client.certs import TrustView
from chalicelib.domain.encoding import b64e
from chalicelib.domain.statements import public_key_of, sign_statement
from tests.trust_vectors import (
    INVITEE,
    INVITEE_DEVICE_SIGN,
    INVITEE_IK,
    LINKED_SIGN,
    ORG,
    OWNER,
    ROOT,
    T,
    build_vectors,
    device_id,
    members_and_devices,
)

OWNER_DEVICE = "d_kzdvvj2umnduyauf"
INVITEE_DEVICE = "d_nceu2whrr4wdjve6"
LINKED = device_id(LINKED_SIGN)


def view(members: list[dict[str, Any]], devices: list[dict[str, Any]], **kwargs: Any) -> TrustView:
    return TrustView(ORG, ROOT, members, devices, **kwargs)


def org() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    v = build_vectors()
    members, devices = members_and_devices(v)
    return v, members, devices


def test_the_worked_examples_chain_to_the_root() -> None:
    _, members, devices = org()
    trust = view(members, devices)
    assert trust.role(OWNER) == "owner" and trust.role(INVITEE) == "member"
    assert trust.member(INVITEE) is not None and trust.member(INVITEE).display_name == "Élise Martin"  # type: ignore[union-attr]
    for device in (OWNER_DEVICE, INVITEE_DEVICE, LINKED):
        assert trust.usable(device) is not None, trust.why_not(device)


def test_another_pinned_root_trusts_nobody() -> None:
    _, members, devices = org()
    trust = TrustView(ORG, b64e(bytes(32)), members, devices)
    assert trust.member(OWNER) is None and trust.member(INVITEE) is None
    assert trust.why_not(INVITEE_DEVICE) is not None


def test_a_ghost_device_under_a_real_member_is_refused() -> None:
    _, members, devices = org()
    ghost_seed, ghost_ik = bytes([0x77]) * 32, bytes([0x78]) * 32
    cert = copy.deepcopy(devices[1]["device_cert"])
    cert.update(device_id=device_id(ghost_seed), sign_public_key=public_key_of(ghost_seed))
    forged = sign_statement({k: v for k, v in cert.items() if k != "sig"}, ghost_ik)
    devices.append(
        {
            **devices[1],
            "device_id": forged["device_id"],
            "sign_public_key": forged["sign_public_key"],
            "device_cert": forged,
        }
    )
    trust = view(members, devices)
    assert trust.usable(forged["device_id"]) is None
    assert trust.why_not(forged["device_id"]).code == "invalid_statement"  # type: ignore[union-attr]


def test_a_swapped_box_key_is_refused() -> None:
    _, members, devices = org()
    devices[1]["box_public_key"] = b64e(bytes([9]) * 32)
    trust = view(members, devices)
    assert trust.usable(INVITEE_DEVICE) is None
    assert trust.why_not(INVITEE_DEVICE).code == "uncertified_device"  # type: ignore[union-attr]


def test_a_member_minted_with_another_ticket_is_refused() -> None:
    v, members, devices = org()
    # The server replays the ticket under a second member: both certificates name one ticket key.
    second = {**copy.deepcopy(members[1]), "member_id": "m_cccccccccccccccc"}
    trust = view([*members, second], devices)
    assert trust.member(INVITEE) is None
    assert trust.why_not_member(INVITEE).code == "ticket_reused"  # type: ignore[union-attr]
    assert v["ticket"]["ticket_key"] == second["member_cert"]["ticket_key"]


def test_a_certificate_from_another_org_is_refused() -> None:
    _, members, devices = org()
    trust = TrustView("o_bbbbbbbbbbbbbbbb", ROOT, members, devices)
    assert trust.member(OWNER) is None and trust.usable(OWNER_DEVICE) is None


def test_role_statements_removal_and_revocation() -> None:
    v, members, devices = org()
    members[1]["role_statements"] = [v["role"]]
    devices[2]["revocation"] = v["revoc"]
    trust = view(members, devices)
    assert trust.role(INVITEE) == "admin" and trust.role(INVITEE, T + 100) == "member"
    assert trust.revoked_at(LINKED) == T + 240 and trust.usable(LINKED) is None
    assert trust.usable(LINKED, T + 200) is not None
    members[1]["removal"] = v["removal"]
    trust = view(members, devices)
    assert trust.removed_at(INVITEE) == T + 300 and trust.usable(INVITEE_DEVICE) is None


def test_a_role_statement_signed_by_the_member_themselves_does_not_count() -> None:
    v, members, devices = org()
    body = {k: x for k, x in v["role"].items() if k != "sig"}
    body.update(by_device=INVITEE_DEVICE, role="owner", serial=5)
    members[1]["role_statements"] = [sign_statement(body, INVITEE_DEVICE_SIGN)]
    assert view(members, devices).role(INVITEE) == "member"


def test_an_identity_key_change_blocks_the_member() -> None:
    _, members, devices = org()
    trust = view(members, devices, seen={INVITEE: public_key_of(bytes([0x01]) * 32)})
    assert trust.member(INVITEE) is None
    assert trust.why_not_member(INVITEE).code == "identity_changed"  # type: ignore[union-attr]
    assert trust.usable(INVITEE_DEVICE) is None and trust.usable(OWNER_DEVICE) is not None


def test_an_email_invitee_is_vouched_only_until_endorsed_or_verified() -> None:
    v, members, devices = org()
    cert = {k: x for k, x in v["mc_inv"].items() if k != "sig"}
    cert["ticket_key"] = None
    members[1] = {**members[1], "member_cert": sign_statement(cert, INVITEE_IK), "ticket": None}
    trust = view(members, devices)
    assert trust.vouched_only(INVITEE) and trust.usable(INVITEE_DEVICE) is None
    assert trust.why_not_member(INVITEE).code == "server_vouched"  # type: ignore[union-attr]
    verified = view(members, devices, verified={INVITEE: public_key_of(INVITEE_IK)})
    assert verified.usable(INVITEE_DEVICE) is not None and not verified.certified(INVITEE)
    members[1]["role_statements"] = [v["role"]]
    endorsed = view(members, devices)
    assert endorsed.certified(INVITEE) and endorsed.role(INVITEE) == "admin"
    assert endorsed.usable(INVITEE_DEVICE) is not None


def test_a_low_order_box_key_is_refused_even_if_certified() -> None:
    v, members, devices = org()
    body = {k: x for k, x in v["dc_inv"].items() if k != "sig"}
    body["box_public_key"] = b64e(bytes(32))
    cert = sign_statement(body, INVITEE_IK)
    devices[1] = {**devices[1], "box_public_key": body["box_public_key"], "device_cert": cert}
    assert view(members, devices).usable(INVITEE_DEVICE) is None


def test_a_device_linked_by_another_members_device_is_refused() -> None:
    v, members, devices = org()
    body = {k: x for k, x in v["lticket"].items() if k != "sig"}
    body["issuer_device"] = OWNER_DEVICE
    devices[2]["ticket"] = sign_statement(body, bytes(range(32)))
    assert view(members, devices).usable(LINKED) is None
    assert bytes(range(32)) != INVITEE_DEVICE_SIGN
