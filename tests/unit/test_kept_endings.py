"""What a device keeps of revocations, removals and partners' identity keys (docs/protocol.md,
13.7 and 22.6) is kept per organisation, and only for the ids a listing speaks for: a partner's
listing (filled by the server) naming one of our devices cannot revoke it on our devices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bocage.client.certs import TrustView
from bocage.client.profile import DeviceKeys, Profile, TrustState
from bocage.client.shared import PartnerView, SharedView
from bocage.client.trust import Trust
from chalicelib.domain.statements import public_key_of, sign_statement
from tests.browser.test_partners_compat import B_DEVICE, B_IK, B_ORG, B_OWNER, B_ROOT, B_SIGN, listing_b
from tests.browser.test_trust_compat import INVITEE_DEVICE, org
from tests.trust_vectors import ORG, OWNER, ROOT, T


def trust_of_owner(tmp_path: Path) -> Trust:
    profile = Profile(tmp_path)
    keys = DeviceKeys.generate()
    profile.save_keys(keys)
    profile.save_info({"server": "http://in-process.invalid", "org_id": ORG, "member_id": OWNER})
    profile.save_trust(TrustState(root=ROOT))
    client: Any = None  # nothing here asks the server
    return Trust(profile, client, keys, lambda: T + 100)


def partner_listing_naming(device: dict[str, Any]) -> dict[str, Any]:
    """B's listing, in which B's owner certified to themselves a device with our device's id and
    keys, then revoked it (a member may revoke their own device)."""
    b = listing_b()
    cert = {
        "purpose": "bocage/device-cert/v2",
        "org_id": B_ORG,
        "member_id": B_OWNER,
        "device_id": device["device_id"],
        "sign_public_key": device["sign_public_key"],
        "box_public_key": device["box_public_key"],
        "identity_key": public_key_of(B_IK),
        "ticket_key": None,
        "issued_at": T + 10,
    }
    revocation = {
        "purpose": "bocage/revocation/v2",
        "org_id": B_ORG,
        "member_id": B_OWNER,
        "device_id": device["device_id"],
        "sign_public_key": device["sign_public_key"],
        "issued_at": T + 20,
        "by_device": B_DEVICE,
    }
    b["devices"].append(
        {
            **{k: device[k] for k in ("device_id", "sign_public_key", "box_public_key")},
            "member_id": B_OWNER,
            "device_cert": sign_statement(cert, B_IK),
            "ticket": None,
            "revocation": sign_statement(revocation, B_SIGN),
        }
    )
    return b


def test_a_partners_listing_cannot_revoke_one_of_our_devices(tmp_path: Path) -> None:
    trust = trust_of_owner(tmp_path)
    _, members, devices = org()
    ours = next(d for d in devices if d["device_id"] == INVITEE_DEVICE)
    b = partner_listing_naming(ours)
    partner = PartnerView(
        B_ORG, "Cabinet Ardoise", False, TrustView(B_ORG, B_ROOT, b["members"], b["devices"])
    )
    assert partner.view.revoked_at(INVITEE_DEVICE) is not None  # B's listing alone would say so
    trust._pin_partners(SharedView(ORG, ROOT, members, devices, partners=[partner]))
    assert INVITEE_DEVICE not in trust.state.revoked.get(ORG, {})
    assert INVITEE_DEVICE not in trust.state.revoked.get(B_ORG, {})  # listed twice: nobody's
    later = TrustView(ORG, ROOT, members, devices, revoked=trust.state.revoked.get(ORG))
    assert later.usable(INVITEE_DEVICE) is not None and later.rollbacks == []


def test_a_partners_own_revocation_is_kept_under_the_partner(tmp_path: Path) -> None:
    trust = trust_of_owner(tmp_path)
    _, members, devices = org()
    b = listing_b()
    [owner_device] = [d for d in b["devices"] if d["device_id"] == B_DEVICE]
    revocation = {
        "purpose": "bocage/revocation/v2",
        "org_id": B_ORG,
        "member_id": B_OWNER,
        "device_id": B_DEVICE,
        "sign_public_key": owner_device["sign_public_key"],
        "issued_at": T + 30,
        "by_device": B_DEVICE,
    }
    owner_device["revocation"] = sign_statement(revocation, B_SIGN)
    partner = PartnerView(
        B_ORG, "Cabinet Ardoise", False, TrustView(B_ORG, B_ROOT, b["members"], b["devices"])
    )
    trust._pin_partners(SharedView(ORG, ROOT, members, devices, partners=[partner]))
    assert trust.state.revoked[B_ORG] == {B_DEVICE: T + 30} and not trust.state.revoked.get(ORG)
    assert trust.state.partner_seen[B_ORG][B_OWNER] == public_key_of(B_IK)
    assert B_OWNER not in trust.state.seen
