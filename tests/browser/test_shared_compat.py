"""The web app's shared groups (web/js/shared.js, 22.6) against the Python client's
(bocage/client/shared.py), under node like test_trust_compat.py.

Two organisations: A (the worked examples: an owner and a plain member) and its active partner B
(an owner, pinned through A's statement). Both clients replay the same logs from the host's side
to the same state, refuse the same entries, and decide alike who of B is trusted, shown as
"Name (Organisation)" and given a key: a partner's member added to A's group, never as its
author, in A's tribe only if A's statement allows it; a member of a third organisation refused;
an id that two organisations list is nobody's; after the end B's members get nothing; and A's
member in B's group is a partner there.
"""

from __future__ import annotations

from typing import Any

from bocage.client.certs import TrustView
from bocage.client.shared import HostAuthority, PartnerView, SharedView
from chalicelib.domain import membership_log
from chalicelib.domain.statements import public_key_of, sign_statement, statement_hash
from tests.browser.test_partners_compat import B_DEVICE, B_ORG, B_OWNER, B_ROOT, B_SIGN, listing_b
from tests.browser.test_trust_compat import INVITEE_DEVICE, OWNER_DEVICE, org, run_js, scene
from tests.trust_vectors import (
    INVITEE,
    INVITEE_DEVICE_SIGN,
    ORG,
    OWNER,
    OWNER_DEVICE_SIGN,
    ROOT,
    T,
    box_public,
    device_id,
)

NAME = "Cabinet Ardoise"
GROUP, TRIBE, B_GROUP = "c_gggggggggggggggg", "c_rrrrrrrrrrrrrrrr", "c_bbbbbbbbbbbbbbbb"
THIRD = "m_tttttttttttttttt"


def entry(
    channel: str,
    seq: int,
    prev: dict[str, Any] | None,
    op: str,
    member: str,
    role: str | None,
    signer: bytes,
    **kw: Any,
) -> dict[str, Any]:
    return sign_statement(
        {
            "purpose": "bocage/membership/v2",
            "org_id": kw.get("org", ORG),
            "channel_id": channel,
            "seq": seq,
            "prev": statement_hash(prev) if prev else None,
            "op": op,
            "member_id": member,
            "role": role,
            "kind": kw.get("kind"),
            "by_device": device_id(signer),
            "issued_at": T + 300 + seq,
        },
        signer,
    )


def kept(*, active: bool = True, allow_tribes: bool = False, theirs: bool = False) -> dict[str, Any]:
    return {
        B_ORG: {
            "root": B_ROOT,
            "ended": not active,
            "active": active,
            "name": NAME,
            "allow_tribes": allow_tribes,
            "their_allow_tribes": theirs,
        }
    }


def python(
    members: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    b: dict[str, Any],
    pinned: dict[str, Any],
    host: str,
    entries: list[dict[str, Any]],
    asked: str | None = None,
) -> tuple[SharedView, Any, Any]:
    p = pinned[B_ORG]
    partner = PartnerView(
        B_ORG,
        NAME,
        p["allow_tribes"],
        TrustView(B_ORG, B_ROOT, b["members"], b["devices"]),
        p["their_allow_tribes"],
        active=p["active"] and not p["ended"],
    )
    view = SharedView(ORG, ROOT, members, devices, partners=[partner])
    state, error = membership_log.replay(entries, HostAuthority({"org_id": host}, lambda: view), asked)
    return view, state, error


def case(
    entries: list[dict[str, Any]],
    *,
    host: str = ORG,
    pinned: dict[str, Any] | None = None,
    b: dict[str, Any] | None = None,
    roster: list[dict[str, Any]] | None = None,
    asked: str | None = None,
) -> tuple[dict[str, Any], SharedView, Any, Any]:
    """The same replay in both clients: the JS result, and the Python view, state and error."""
    _, members, devices = org()
    b = b or listing_b()
    pinned = pinned or kept()
    got = run_js(
        {
            "op": "shared",
            **scene(members, devices),
            "kept": pinned,
            "listings": {B_ORG: b},
            "host": host,
            "entries": entries,
            "roster": roster,
            "self": OWNER_DEVICE,
            "channel_id": asked,
        }
    )[0]
    view, state, error = python(members, devices, b, pinned, host, entries, asked)
    assert got["state"] == (state.to_json() if state else None)
    assert (got["error"] is None) == (error is None), (got["error"], error)
    for mid, verdict in got["verdicts"]["members"].items():
        why = view.why_not_member(mid)
        trusted = view.member(mid)
        assert (verdict["trusted"], verdict["display_name"], verdict["why_not"]) == (
            trusted is not None,
            trusted.display_name if trusted else None,
            why.code if why else None,
        ), mid
    for did, verdict in got["verdicts"]["devices"].items():
        why_d = view.why_not(did)
        assert (verdict["usable"], verdict["why_not"]) == (
            view.usable(did) is not None,
            why_d.code if why_d else None,
        ), did
    return got, view, state, error


def roster() -> list[dict[str, Any]]:
    _, _, devices = org()
    b = listing_b()["devices"][0]
    rows = [devices[1], b]
    return [{k: d[k] for k in ("device_id", "member_id", "box_public_key")} for d in rows]


def a_group(*more: tuple[str, str, str | None]) -> list[dict[str, Any]]:
    """A's group created by its owner, then owner-signed entries (op, member, role)."""
    log = [entry(GROUP, 0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="group")]
    for op, member, role in more:
        log.append(entry(GROUP, len(log), log[-1], op, member, role, OWNER_DEVICE_SIGN))
    return log


def test_a_partner_member_in_our_group_is_verified_shown_and_sealed_to() -> None:
    log = a_group(("add", INVITEE, "member"), ("add", B_OWNER, "member"))
    leave = entry(GROUP, 3, log[-1], "leave", B_OWNER, None, B_SIGN)  # B's member signs, naming A
    got, _, state, _ = case([*log, leave], roster=roster())
    assert got["error"] is None and got["state"]["org_id"] == ORG and B_OWNER not in got["state"]["members"]
    got, _, state, _ = case(log, roster=roster())
    assert state.members == {OWNER: "author", INVITEE: "member", B_OWNER: "member"}
    assert got["verdicts"]["members"][B_OWNER]["display_name"] == f"Architecte ({NAME})"
    assert got["recipients"] == sorted([INVITEE_DEVICE, B_DEVICE]) and got["warnings"] == []


def test_what_a_partner_member_may_not_be_or_do_is_refused_alike() -> None:
    as_author = case(a_group(("add", B_OWNER, "author")))[0]
    assert "never a channel's author" in as_author["error"] and as_author["state"]["seq"] == 0
    added = a_group(("add", B_OWNER, "member"))
    adds = entry(GROUP, 2, added[-1], "add", INVITEE, "member", B_SIGN)  # a partner manages nothing
    assert "may not manage" in case([*added, adds])[0]["error"]
    creates = entry(B_GROUP, 0, None, "create", B_OWNER, "author", B_SIGN, kind="group")
    assert "own members create" in case([creates])[0]["error"]  # B's member creates no channel of A
    tribe = [entry(TRIBE, 0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="tribe")]
    tribe.append(entry(TRIBE, 1, tribe[0], "add", B_OWNER, "member", OWNER_DEVICE_SIGN))
    assert "into its tribes" in case(tribe)[0]["error"]
    assert case(tribe, pinned=kept(allow_tribes=True))[0]["error"] is None


def test_a_member_of_a_third_organisation_cannot_be_added() -> None:
    got = case(a_group(("add", THIRD, "member")), roster=roster())[0]
    assert "cannot be added" in got["error"] and got["state"]["members"] == {OWNER: "author"}


def test_an_id_two_organisations_list_is_nobodys() -> None:
    """The server lists, in B's listing, a member under our invitee's id: neither is trusted."""
    b = listing_b()
    _, members, _ = org()
    b["members"].append({**members[1]})
    got = case(a_group(("add", INVITEE, "member")), b=b, roster=roster())[0]
    assert "cannot be added" in got["error"]
    assert got["verdicts"]["members"][INVITEE]["why_not"] == "uncertified_member"
    assert INVITEE_DEVICE not in got["recipients"]
    assert any(
        (w["code"], w["device_id"]) == ("uncertified_device", INVITEE_DEVICE)
        and "more than one organisation" in w["message"]
        for w in got["warnings"]
    )


def test_after_the_end_the_partner_s_members_get_nothing() -> None:
    log = a_group(("add", B_OWNER, "member"))
    live = case(log, roster=roster())[0]
    assert B_DEVICE in live["recipients"]
    ended = case(log[:1], pinned=kept(active=False), roster=roster())[0]
    assert ended["recipients"] == [INVITEE_DEVICE] or ended["recipients"] == []
    assert B_DEVICE not in ended["recipients"]
    assert {w["code"] for w in ended["warnings"] if w["device_id"] == B_DEVICE} == {"uncertified_member"}
    assert "cannot be added" in case(log, pinned=kept(active=False))[0]["error"]


def test_our_member_in_the_partner_s_group_is_a_partner_there() -> None:
    log = [entry(B_GROUP, 0, None, "create", B_OWNER, "author", B_SIGN, kind="group", org=B_ORG)]
    log.append(entry(B_GROUP, 1, log[0], "add", INVITEE, "member", B_SIGN, org=B_ORG))
    log.append(entry(B_GROUP, 2, log[1], "leave", INVITEE, None, INVITEE_DEVICE_SIGN, org=B_ORG))
    got = case(log, host=B_ORG)[0]
    assert got["error"] is None and got["state"]["org_id"] == B_ORG and got["state"]["seq"] == 2
    as_author = [*log[:1], entry(B_GROUP, 1, log[0], "add", INVITEE, "author", B_SIGN, org=B_ORG)]
    assert "never a channel's author" in case(as_author, host=B_ORG)[0]["error"]
    # A group of an organisation that is not an active partner verifies nobody.
    assert case(log, host=B_ORG, pinned=kept(active=False))[0]["state"] is None


def test_a_partner_s_group_log_served_for_our_channel_is_refused() -> None:
    """Host substitution: asked for A's channel, the server serves B's group B_GROUP (host B, our
    invitee a partner there). Neither client takes it for A's channel, so nothing is sealed to
    B's members under A's channel's name; asked for B_GROUP itself, the same log is B's group."""
    log = [entry(B_GROUP, 0, None, "create", B_OWNER, "author", B_SIGN, kind="group", org=B_ORG)]
    log.append(entry(B_GROUP, 1, log[0], "add", INVITEE, "member", B_SIGN, org=B_ORG))
    got, _, state, _ = case(log, host=B_ORG, asked=GROUP, roster=roster())
    assert got["state"] is None and state is None and "another channel" in got["error"]
    assert got["recipients"] == []
    honest = case(log, host=B_ORG, asked=B_GROUP)[0]
    assert honest["error"] is None and honest["state"]["channel_id"] == B_GROUP


UNCHAINED = "m_ffffffffffffffff"
UNCHAINED_IK, UNCHAINED_SIGN = bytes([0x91]) * 32, bytes([0x92]) * 32
UNCHAINED_DEVICE = device_id(UNCHAINED_SIGN)


def with_unchained_member() -> dict[str, Any]:
    """B's listing as a malicious server serves it: one more "member" whose certificates sign
    themselves (no chain to B's pinned root), with a device certified by that key."""
    b = listing_b()
    identity = public_key_of(UNCHAINED_IK)
    common = {
        "org_id": B_ORG,
        "member_id": UNCHAINED,
        "identity_key": identity,
        "ticket_key": None,
        "issued_at": T,
    }
    member_cert = sign_statement(
        {**common, "purpose": "bocage/member-cert/v2", "display_name": "Directrice", "root": False},
        UNCHAINED_IK,
    )
    device = {
        "device_id": UNCHAINED_DEVICE,
        "member_id": UNCHAINED,
        "sign_public_key": public_key_of(UNCHAINED_SIGN),
        "box_public_key": box_public(bytes([0x93]) * 32),
    }
    device_cert = sign_statement({**common, **device, "purpose": "bocage/device-cert/v2"}, UNCHAINED_IK)
    b["members"].append(
        {
            "member_id": UNCHAINED,
            "member_cert": member_cert,
            "ticket": None,
            "role_statements": [],
            "removal": None,
        }
    )
    b["devices"].append({**device, "device_cert": device_cert, "ticket": None, "revocation": None})
    return b


def test_a_partner_member_only_the_server_vouches_for_is_nobody() -> None:
    """Our own e-mail invitee may be vouched for by the server alone (a weaker, reported state);
    a partner's member may not: only B's pinned root anchors B's members. Neither client trusts
    such a "member", their device as a sender, or adds or seals to them (server_vouched)."""
    b = with_unchained_member()
    rows = [*roster(), {"device_id": UNCHAINED_DEVICE, "member_id": UNCHAINED, "box_public_key": "x"}]
    got, view, _, _ = case(a_group(("add", B_OWNER, "member")), b=b, roster=rows)
    assert got["verdicts"]["members"][UNCHAINED]["trusted"] is False
    assert got["verdicts"]["members"][UNCHAINED]["why_not"] == "server_vouched"
    assert got["verdicts"]["devices"][UNCHAINED_DEVICE]["trusted"] is False
    assert got["verdicts"]["devices"][UNCHAINED_DEVICE]["why_not"] == "server_vouched"
    assert view.device(UNCHAINED_DEVICE) is None and view.member(UNCHAINED) is None
    assert UNCHAINED_DEVICE not in got["recipients"] and B_DEVICE in got["recipients"]
    assert got["verdicts"]["members"][B_OWNER]["trusted"] is True  # B's chained owner still is
    added = case(a_group(("add", UNCHAINED, "member")), b=b)[0]
    assert "cannot be added" in added["error"]


def test_the_web_client_keeps_its_partners_when_the_server_fails_them() -> None:
    """As the Python client (tests/integration/test_partner_groups.py): GET /partners or B's
    listing failing (503) is reported, the last verified listing kept, and never thrown to the
    caller (which would block every send, our own groups' too)."""
    _, members, devices = org()
    s = {**scene(members, devices), "member_id": OWNER, "device_id": OWNER_DEVICE, "kept": kept()}
    s |= {"listings": {B_ORG: listing_b()}, "usable": [B_DEVICE, INVITEE_DEVICE]}
    partners, listing = run_js(
        {"op": "learn_partners", **s, "failing": ["/partners"]},
        {"op": "learn_partners", **s, "failing": [f"/partners/{B_ORG}/members"]},
    )
    for got in (partners, listing):
        assert got["thrown"] is None and "partners_unavailable" in got["codes"]
        assert got["usable"] == [True, True]
