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

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bocage.client.calls import _revoked_in, new_call_id
from bocage.client.certs import TrustView
from bocage.client.membership import sync
from bocage.client.shared import HostAuthority, PartnerView, SharedView
from chalicelib.domain import membership_log
from chalicelib.domain.frames import CallFrame
from chalicelib.domain.partners import ContactCard, card_url
from chalicelib.domain.statements import fingerprint, public_key_of, sign_statement, statement_hash
from tests.browser.test_partners_compat import B_DEVICE, B_IK, B_ORG, B_OWNER, B_ROOT, B_SIGN, listing_b
from tests.browser.test_trust_compat import (
    INVITEE_DEVICE,
    OWNER_DEVICE,
    kept_by_org,
    org,
    python_client,
    rollbacks,
    run_js,
    scene,
)
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
from tests.unit.test_kept_endings import partner_listing_naming

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
            "issued_at": kw.get("at", T + 300 + seq),
        },
        signer,
    )


def kept(
    *,
    active: bool = True,
    allow_tribes: bool = False,
    theirs: bool = False,
    ends: dict[str, int] | None = None,
) -> dict[str, Any]:
    """What a device keeps about B; ``ends``: ticket key -> the end's date (22.7)."""
    return {
        B_ORG: {
            "root": B_ROOT,
            "ticket_key": "k_now",
            "ended": not active,
            "active": active,
            "name": NAME,
            "allow_tribes": allow_tribes,
            "their_allow_tribes": theirs,
            **({"ends": ends} if ends is not None else {}),
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
        ends=tuple(sorted(int(at) for at in dict(p.get("ends") or {}).values())),
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
    extra: Sequence[dict[str, Any]] = (),
) -> tuple[dict[str, Any], SharedView, Any, Any]:
    """The same replay in both clients: the JS result, and the Python view, state and error.
    ``extra``: more members of A's listing."""
    _, members, devices = org()
    members = [*members, *extra]
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


# -- 22.7: ends have a date ------------------------------------------------------------------

E = T + 1000  # B's partnership with A ended then, as A's devices keep the end's date
LATER = T + 2000  # A's owner adds the invitee after the end
SKEW = 300  # the clocks' allowance (DEPARTURE_SKEW_SECONDS)
AFTER = "sent after leaving the channel"


def ended_group() -> list[dict[str, Any]]:
    """A's group: B's owner added while partners (T + 301); after the end, our invitee."""
    log = a_group(("add", B_OWNER, "member"))
    log.append(entry(GROUP, 2, log[-1], "add", INVITEE, "member", OWNER_DEVICE_SIGN, at=LATER))
    return log


def keeper_case(
    entries: list[dict[str, Any]],
    pinned: dict[str, Any],
    questions: Sequence[tuple[str, str, int, str]],
    *,
    rows: list[dict[str, Any]] | None = None,
    logs: dict[str, Any] | None = None,
    notices: Sequence[dict[str, Any]] = (),
) -> tuple[dict[str, Any], SharedView, Any]:
    """The web app's TrustKeeper (what it keeps: `logs`, `pinned`, B's listing) reading A's group
    GROUP, and the Python view and state replayed from entry 0 on the same log and ends."""
    _, members, devices = org()
    stored = {
        "seen": {},
        "verified": {},
        "serials": {},
        "logs": logs or {},
        "history": {},
        "partners": pinned,
        "partner_listings": {B_ORG: listing_b()},
    }
    got = run_js(
        {
            "op": "keeper",
            **scene(members, devices),
            "member_id": OWNER,
            "device_id": OWNER_DEVICE,
            "stored": stored,
            "channel_id": GROUP,
            "entries": entries,
            "questions": [list(q) for q in questions],
            "roster": rows,
            "notices": list(notices),
        }
    )[0]
    view, state, _ = python(members, devices, listing_b(), pinned, ORG, entries, GROUP)
    return got, view, state


def test_a_device_replaying_after_the_end_verifies_the_ended_partner_s_entries() -> None:
    """B's owner was added while partners, the partnership ended, then A's owner added the
    invitee: a device replaying from entry 0 after the end (a new one) verifies every entry, in
    both clients. Without the end's date (as before 22.7) both stopped at B's add, and every
    later member's messages were refused."""
    log = ended_group()
    pinned = kept(active=False, ends={"k_old": E})
    got, _, state, error = case(log, pinned=pinned)
    assert error is None and got["error"] is None
    assert state.members == {OWNER: "author", B_OWNER: "member", INVITEE: "member"}
    assert state.joined == {OWNER: T + 300, B_OWNER: T + 301, INVITEE: LATER}
    undated = case(log, pinned=kept(active=False))[0]
    assert "cannot be added" in undated["error"] and undated["state"]["seq"] == 0
    # B's owner's own entry counts as B's up to the end and its 300 s, not after.
    for at, verifies in ((E + SKEW, True), (E + SKEW + 1, False)):
        left = [*log[:2], entry(GROUP, 2, log[1], "leave", B_OWNER, None, B_SIGN, at=at)]
        got, _, _, error = case(left, pinned=pinned)
        assert (error is None, got["error"] is None) == (verifies, verifies), at
    # The web app's TrustKeeper, with no state kept for the group, keeps all three entries.
    through = keeper_case(log, pinned, [])[0]
    assert through["stored"]["logs"][GROUP] == state.to_json()
    assert "membership_invalid" not in through["codes"]


def test_senders_are_judged_on_the_state_cut_at_the_end_in_both_clients() -> None:
    """B's owner's messages signed up to 300 s after the end stay theirs, later ones are refused
    (the uncut log would accept them); our own members are never cut; the state kept is the
    log's, uncut."""
    log = ended_group()
    edge, late = (E + SKEW) * 1000, (T + 10**6) * 1000
    questions = [
        (B_OWNER, B_DEVICE, edge, "message"),
        (B_OWNER, B_DEVICE, edge + 1, "message"),
        (B_OWNER, B_DEVICE, (T + 400) * 1000, "reaction"),
        (OWNER, OWNER_DEVICE, late, "message"),
        (INVITEE, INVITEE_DEVICE, late, "message"),
    ]
    got, view, state = keeper_case(log, kept(active=False, ends={"k_old": E}), questions)
    cut = state.cut_at_ends(view.ends_of)
    python = [cut.refuses_sender(member, at, kind) for member, _, at, kind in questions]
    assert got["refuses"] == python == [None, AFTER, None, None, None]
    assert state.refuses_sender(B_OWNER, edge + 1, "message") is None
    assert got["stored"]["logs"][GROUP] == state.to_json() and "not_a_member" in got["codes"]


def test_a_member_added_again_after_an_end_is_cut_by_a_later_end_only() -> None:
    """B's owner, added and removed in a first partnership that ended at E, is added again once
    the organisations partnered anew: the first end does not cut them (they joined after it);
    the second one, at E2, does, from its date."""
    e2 = T + 5000
    log = a_group(("add", B_OWNER, "member"), ("remove", B_OWNER, None))
    log.append(entry(GROUP, 3, log[-1], "add", B_OWNER, "member", OWNER_DEVICE_SIGN, at=LATER))
    questions = [
        (B_OWNER, B_DEVICE, (LATER + 100) * 1000, "message"),
        (B_OWNER, B_DEVICE, (e2 + SKEW) * 1000, "message"),
        (B_OWNER, B_DEVICE, (e2 + SKEW) * 1000 + 1, "message"),
    ]
    for pinned, expected in (
        (kept(active=True, ends={"k_old": E}), [None, None, None]),
        (kept(active=False, ends={"k_old": E, "k_now": e2}), [None, None, AFTER]),
    ):
        got, view, state = keeper_case(log, pinned, questions)
        assert state.seq == 3 and got["state"]["seq"] == 3
        cut = state.cut_at_ends(view.ends_of)
        assert got["refuses"] == [cut.refuses_sender(m, at, kind) for m, _, at, kind in questions] == expected


def test_after_partnering_again_a_member_the_end_took_out_gets_no_key() -> None:
    """The log still holds B's owner from before the end (nobody signed their removal), the
    organisations partner again and the server lists B's device in the roster: neither client
    seals to them any more (judged on the uncut log, both would)."""
    log = a_group(("add", INVITEE, "member"), ("add", B_OWNER, "member"))
    got, view, state = keeper_case(log, kept(active=True, ends={"k_old": E}), [], rows=roster())
    assert view.usable(B_DEVICE) is not None and B_OWNER in state.members
    assert B_OWNER not in state.cut_at_ends(view.ends_of).members
    assert got["recipients"] == [INVITEE_DEVICE]
    assert {"code": "not_in_membership", "device_id": B_DEVICE} in got["roster_warnings"]
    never_ended = keeper_case(log, kept(active=True), [], rows=roster())[0]
    assert never_ended["recipients"] == sorted([INVITEE_DEVICE, B_DEVICE])


def test_after_partnering_again_a_member_the_end_took_out_is_out_of_calls_too() -> None:
    """Call signals are judged on the membership cut at the ends as well (19.4, 22.7): B's owner,
    still in the log from before the end, is out of the channel in both clients, so the
    server's notice that they were removed ends their part in a call (on the uncut log, B's
    owner still a member and their device usable again, the web client dropped it); never
    ended, the notice is not believed."""
    log = a_group(("add", INVITEE, "member"), ("add", B_OWNER, "member"))
    notice = CallFrame(
        channel_id=GROUP,
        call_id=new_call_id(),
        signal="leave",
        from_device=B_DEVICE,
        from_member=B_OWNER,
        at=T + 3000,
        reason="removed",
    )
    sent = [notice.model_dump(mode="json", exclude_none=True)]
    for pinned, gone in ((kept(active=True, ends={"k_old": E}), True), (kept(active=True), False)):
        got, view, state = keeper_case(log, pinned, [], notices=sent)
        python = _revoked_in(view, notice) or B_OWNER not in state.cut_at_ends(view.ends_of).members
        assert got["notices"] == [python] == [gone]


def test_a_state_kept_without_joined_is_rebuilt_once_from_entry_0() -> None:
    """A state kept before 22.7 (no ``joined``) of a log holding the ended partner's add: both
    clients replay the log from entry 0 once (B's add verifying by its date), keep ``joined``,
    and judge B's owner by it."""
    log = ended_group()
    pinned = kept(active=False, ends={"k_old": E})
    _, members, devices = org()
    view, full, _ = python(members, devices, listing_b(), pinned, ORG, log, GROUP)
    legacy = {k: v for k, v in full.to_json().items() if k != "joined"}
    assert not membership_log.LogState.from_json(legacy).former_known
    late = [(B_OWNER, B_DEVICE, (E + SKEW) * 1000 + 1, "message")]
    got = keeper_case(log, pinned, late, logs={GROUP: legacy})[0]
    rebuilt, warnings = sync(
        GROUP,
        membership_log.LogState.from_json(legacy),
        lambda start: (log[start:], {"seq": 2}),
        HostAuthority({"org_id": ORG}, lambda: view),
        rebuild=True,
    )
    assert warnings == [] and rebuilt.to_json() == full.to_json()
    assert got["stored"]["logs"][GROUP] == full.to_json() and "membership_invalid" not in got["codes"]
    assert got["refuses"] == [AFTER]


def test_an_end_kept_without_a_date_is_dated_when_the_web_app_first_reads_it() -> None:
    """The web app kept B's end before ends had dates (its invitation in ``ended_keys`` only): it
    dates it when it first reads it and keeps that date, so B's owner's messages until then stay
    theirs, and the group's log replays past B's entries."""
    legacy = kept(active=False)
    legacy[B_ORG]["ended_keys"] = ["k_now"]
    before = int(time.time())
    questions = [
        (B_OWNER, B_DEVICE, (LATER + 100) * 1000, "message"),
        (B_OWNER, B_DEVICE, (before + 3600) * 1000, "message"),
    ]
    got = keeper_case(ended_group(), legacy, questions)[0]
    dated = got["stored"]["partners"][B_ORG]["ends"]
    assert list(dated) == ["k_now"] and before <= dated["k_now"] <= int(time.time())
    assert got["state"]["seq"] == 2 and got["refuses"] == [None, AFTER]


def test_an_ended_partner_s_listing_is_asked_once_when_none_is_kept() -> None:
    """A device that never kept B's listing (a new one) asks for it once after the end, to verify
    the log's entries from before it (22.7); one that kept it does not ask again, and neither
    makes B's device usable."""
    _, members, devices = org()
    s = {**scene(members, devices), "member_id": OWNER, "device_id": OWNER_DEVICE, "failing": []}
    s |= {"kept": kept(active=False, ends={"k_old": E}), "usable": [B_DEVICE], "served": {B_ORG: listing_b()}}
    fresh, known = run_js(
        {"op": "learn_partners", **s, "listings": {}},
        {"op": "learn_partners", **s, "listings": {B_ORG: listing_b()}},
    )
    listing = f"/partners/{B_ORG}/members"
    assert fresh["asked"] == ["/partners", listing] and fresh["listed"] == [B_ORG]
    assert known["asked"] == ["/partners"] and known["listed"] == [B_ORG]
    assert fresh["usable"] == known["usable"] == [False] and fresh["thrown"] is None


# -- 21 and 22.6: guests stay in their own organisation's channels ----------------------------

B_GUEST, A_GUEST = "m_gbgbgbgbgbgbgbgb", "m_gagagagagagagaga"


def invited(org_id: str, member_id: str, issuer: bytes, seed: int, role: str = "guest") -> dict[str, Any]:
    """A member of ``org_id`` as its GET /members lists them: invited by ``issuer``'s device with a
    ``role`` ticket, activated (no device needed: the log checks the member); ``seed`` makes
    their ticket and identity keys."""
    ticket_seed, identity = bytes([seed]) * 32, bytes([seed + 1]) * 32
    ticket = sign_statement(
        {
            "purpose": "bocage/ticket/v2",
            "org_id": org_id,
            "grant": "member",
            "ticket_key": public_key_of(ticket_seed),
            "role": role,
            "display_name": "Invité",
            "issuer_device": device_id(issuer),
            "issued_at": T,
            "expires_at": T + 7 * 86400,
        },
        issuer,
    )
    cert = sign_statement(
        {
            "purpose": "bocage/member-cert/v2",
            "org_id": org_id,
            "member_id": member_id,
            "identity_key": public_key_of(identity),
            "display_name": "Invité",
            "ticket_key": public_key_of(ticket_seed),
            "root": False,
            "issued_at": T + 60,
        },
        ticket_seed,
    )
    return {
        "member_id": member_id,
        "member_cert": cert,
        "ticket": ticket,
        "role_statements": [],
        "removal": None,
    }


def with_b_guest() -> dict[str, Any]:
    b = listing_b()
    b["members"].append(invited(B_ORG, B_GUEST, B_SIGN, 0xA1))
    return b


def test_a_partner_s_guest_added_to_our_group_stops_the_replay_in_both_clients() -> None:
    """B's guest is B's guest only (21): an add of them in A's group, even signed by A's owner,
    stops both clients' replay at that entry; B's member added next to it is never reached."""
    log = a_group(("add", B_GUEST, "member"), ("add", B_OWNER, "member"))
    got, _, state, error = case(log, b=with_b_guest())
    assert "cannot be added" in got["error"] and error is not None and "cannot be added" in str(error)
    assert got["state"]["seq"] == state.seq == 0 and got["state"]["members"] == {OWNER: "author"}
    assert got["verdicts"]["members"][B_GUEST]["trusted"] is True  # certified by B: a guest there
    assert case(a_group(("add", B_OWNER, "member")), b=with_b_guest())[0]["error"] is None


def test_a_partner_hosted_group_takes_its_own_guest_and_refuses_ours() -> None:
    """In B's group B's rules hold for B's members, its guest included; A's guest stays in A's
    channels, so an add of them there is refused by both clients."""
    a_guest = invited(ORG, A_GUEST, OWNER_DEVICE_SIGN, 0xB1)
    log = [entry(B_GROUP, 0, None, "create", B_OWNER, "author", B_SIGN, kind="group", org=B_ORG)]
    log.append(entry(B_GROUP, 1, log[0], "add", B_GUEST, "member", B_SIGN, org=B_ORG))
    got, _, state, error = case(log, host=B_ORG, b=with_b_guest(), extra=[a_guest])
    assert got["error"] is None and error is None
    assert got["state"]["members"] == state.members == {B_OWNER: "author", B_GUEST: "member"}
    ours = [*log, entry(B_GROUP, 2, log[1], "add", A_GUEST, "member", B_SIGN, org=B_ORG)]
    got, _, state, error = case(ours, host=B_ORG, b=with_b_guest(), extra=[a_guest])
    assert "cannot be added" in got["error"] and error is not None
    assert got["state"]["seq"] == state.seq == 1 and A_GUEST not in got["state"]["members"]
    # Our plain member is let in the same way: only the guest is refused.
    invitee = [*log, entry(B_GROUP, 2, log[1], "add", INVITEE, "member", B_SIGN, org=B_ORG)]
    assert case(invitee, host=B_ORG, b=with_b_guest(), extra=[a_guest])[0]["error"] is None


# -- 22.6: partners' members' identity keys are kept ------------------------------------------

B_MEMBER = "m_bmbmbmbmbmbmbmbm"


def with_b_member(seed: int = 0xC1) -> dict[str, Any]:
    """B's listing with a plain member, certified under the identity key ``seed`` makes (another
    seed: B's admin and the server re-certifying them under another key)."""
    b = listing_b()
    b["members"].append(invited(B_ORG, B_MEMBER, B_SIGN, seed, role="member"))
    return b


def python_partners(home: Path, b: dict[str, Any]) -> tuple[Any, SharedView]:
    """The Python client of A's owner (profile ``home``, kept between calls) after a refresh that
    served our listing and B's listing ``b``, B an active partner: its Trust and shared view."""
    _, members, devices = org()
    return python_client(home, members, devices, kept(), {B_ORG: b})


def keeper_partners(stored: dict[str, Any], b: dict[str, Any], card: dict[str, Any] | None = None) -> Any:
    """The web app's TrustKeeper over ``stored`` (its IndexedDB record) with B's listing ``b``."""
    _, members, devices = org()
    return run_js(
        {
            "op": "keeper_view",
            **scene(members, devices),
            "member_id": OWNER,
            "device_id": OWNER_DEVICE,
            "stored": {**stored, "partners": kept(), "partner_listings": {B_ORG: b}},
            "card": card,
        }
    )[0]


def test_a_partner_member_s_key_is_kept_and_another_key_later_is_identity_changed(tmp_path: Path) -> None:
    """Both clients keep the key of B's member the first time they verify them, under B and apart
    from our own members' keys; a later listing certifying them under another key makes them
    untrusted (identity_changed) in both, where a device that never saw the first key would trust
    them; a card whose fingerprint matches the new key pins it, and they are trusted again."""
    first = keeper_partners({}, with_b_member())
    trust, _ = python_partners(tmp_path, with_b_member())
    key = with_b_member()["members"][1]["member_cert"]["identity_key"]
    for record in (first["stored"], {"partner_seen": trust.state.partner_seen, "seen": trust.state.seen}):
        assert kept_by_org(record["partner_seen"]) == {B_ORG: {B_OWNER: public_key_of(B_IK), B_MEMBER: key}}
        assert B_MEMBER not in record["seen"] and B_OWNER not in record["seen"]

    swapped = with_b_member(0xC3)
    later = keeper_partners(first["stored"], swapped)
    trust, view = python_partners(tmp_path, swapped)
    why = view.why_not_member(B_MEMBER)
    assert later["members"][B_MEMBER]["why_not"] == (why.code if why else None) == "identity_changed"
    assert later["members"][B_MEMBER]["trusted"] is False and view.member(B_MEMBER) is None
    assert (
        later["stored"]["partner_seen"][B_ORG][B_MEMBER] == trust.state.partner_seen[B_ORG][B_MEMBER] == key
    )
    fresh = keeper_partners({}, swapped)
    assert fresh["members"][B_MEMBER]["trusted"] is True and fresh["members"][B_MEMBER]["why_not"] is None

    new_key = swapped["members"][1]["member_cert"]["identity_key"]
    text = card_url("https://app.test", ContactCard(B_ORG, B_MEMBER, "Invité", fingerprint(new_key)))
    carded = keeper_partners(
        first["stored"], swapped, {"text": text, "pinned": kept()[B_ORG], "listing": swapped}
    )
    assert carded["members"][B_MEMBER]["trusted"] is True and carded["members"][B_MEMBER]["why_not"] is None
    trust.pin_identity(B_ORG, B_MEMBER, new_key)  # as check_card pins the card's key
    assert trust.view().member(B_MEMBER) is not None
    assert carded["stored"]["partner_seen"][B_ORG] == trust.state.partner_seen[B_ORG]
    assert trust.state.partner_seen[B_ORG][B_MEMBER] == new_key


# -- 13.7 for partners: their revocations verified once are kept too --------------------------


def test_a_partner_s_revocation_verified_once_stays_when_the_server_drops_it(tmp_path: Path) -> None:
    """B's owner revoked their device and A's devices verified it: both keep it under B, and B's
    listing served again without the revocation leaves the device out in both clients, which
    report the same revocation_rollback; a device that never saw the revocation takes the device
    as listed."""
    revoked = listing_b()
    revoked["devices"][0]["revocation"] = sign_statement(
        {
            "purpose": "bocage/revocation/v2",
            "org_id": B_ORG,
            "member_id": B_OWNER,
            "device_id": B_DEVICE,
            "sign_public_key": public_key_of(B_SIGN),
            "issued_at": T + 50,
            "by_device": B_DEVICE,
        },
        B_SIGN,
    )
    first = keeper_partners({}, revoked)
    trust, _ = python_partners(tmp_path, revoked)
    assert (
        kept_by_org(first["stored"]["revoked"])
        == kept_by_org(trust.state.revoked)
        == {B_ORG: {B_DEVICE: T + 50}}
    )
    got = keeper_partners(first["stored"], listing_b())
    trust, view = python_partners(tmp_path, listing_b())
    assert (got["devices"][B_DEVICE]["usable"], got["devices"][B_DEVICE]["revoked_at"]) == (False, T + 50)
    assert view.usable(B_DEVICE) is None and view.revoked_at(B_DEVICE) == T + 50
    web = rollbacks(got["warnings"])
    assert web == rollbacks(trust.take_warnings())
    assert {(m, d) for m, d, _ in web} == {(B_OWNER, B_DEVICE)}
    assert keeper_partners({}, listing_b())["devices"][B_DEVICE]["usable"] is True


def test_a_partner_s_listing_naming_our_device_revokes_nothing_of_ours(tmp_path: Path) -> None:
    """B's owner certifies to themselves a device with the id and keys of our invitee's device
    (public keys) and revokes it: in both clients that id is nobody's while B lists it, and once
    B's listing no longer names it our device is usable again, with no rollback: B's listing
    never speaks for our ids (the revocation is kept under no organisation)."""
    _, _, devices = org()
    b = partner_listing_naming(next(d for d in devices if d["device_id"] == INVITEE_DEVICE))
    first = keeper_partners({}, b)
    trust, view = python_partners(tmp_path, b)
    assert first["devices"][INVITEE_DEVICE]["usable"] is False and view.usable(INVITEE_DEVICE) is None
    assert kept_by_org(first["stored"]["revoked"]) == kept_by_org(trust.state.revoked) == {}
    got = keeper_partners(first["stored"], listing_b())
    trust, view = python_partners(tmp_path, listing_b())
    assert got["devices"][INVITEE_DEVICE]["usable"] is True and view.usable(INVITEE_DEVICE) is not None
    assert rollbacks(got["warnings"]) == rollbacks(trust.take_warnings()) == set()
