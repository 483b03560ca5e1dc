"""A follower's view of a public tribe that holds a partner's member (docs/protocol.md, 16.3 and
22.6), in the web app (web/js/shared.js, membership.js) and the Python client
(bocage/client/shared.py), under node like test_shared_compat.py.

A follower pins its organisation's root only and holds no partnership statement: the partner's
member is someone it cannot verify. Both clients replay the tribe's log past that member's
``add`` and ``leave`` to the same state (the entries after them, a new author's, verified),
judge the member and their device alike and explicitly (``uncertified_member`` and
``uncertified_device``, saying a follower verifies its own organisation's members only), give
them nothing, and still refuse what that view cannot accept from them."""

from __future__ import annotations

from typing import Any

from bocage.client.shared import HostAuthority, SharedView
from chalicelib.domain import membership_log
from tests.browser.test_partners_compat import B_DEVICE, B_OWNER, B_SIGN
from tests.browser.test_shared_compat import TRIBE, entry
from tests.browser.test_trust_compat import OWNER_DEVICE, org, run_js, scene
from tests.trust_vectors import INVITEE, ORG, OWNER, OWNER_DEVICE_SIGN, ROOT, box_public

FOLLOWERS_VERIFY_OWN = "a follower verifies the organisation's own members only"


def tribe(*more: tuple[str, str, str | None, bytes]) -> list[dict[str, Any]]:
    """A's tribe created by its owner, then entries (op, member, role, signer's seed)."""
    log = [entry(TRIBE, 0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="tribe")]
    for op, member, role, signer in more:
        log.append(entry(TRIBE, len(log), log[-1], op, member, role, signer))
    return log


def roster() -> list[dict[str, Any]]:
    _, _, devices = org()
    b = {"device_id": B_DEVICE, "member_id": B_OWNER, "box_public_key": box_public(B_SIGN)}
    return [{k: d[k] for k in ("device_id", "member_id", "box_public_key")} for d in devices[1:2]] + [b]


def follower_case(entries: list[dict[str, Any]]) -> tuple[dict[str, Any], SharedView, Any, Any]:
    """The same replay, as a follower of A (no partner pinned), in both clients."""
    _, members, devices = org()
    got = run_js(
        {
            "op": "shared",
            **scene(members, devices),
            "kept": {},
            "listings": {},
            "follower": True,
            "host": ORG,
            "entries": entries,
            "roster": roster(),
            "self": OWNER_DEVICE,
            "channel_id": TRIBE,
            "ids": {"members": [B_OWNER], "devices": [B_DEVICE]},
        }
    )[0]
    view = SharedView(ORG, ROOT, members, devices, follower=True)
    state, error = membership_log.replay(entries, HostAuthority({"org_id": ORG}, lambda: view), TRIBE)
    assert got["state"] == (state.to_json() if state else None)
    assert (got["error"] is None) == (error is None), (got["error"], error)
    return got, view, state, error


def test_a_follower_replays_past_a_partners_member_and_judges_them_alike() -> None:
    # A's statement lets B's members into its tribes: the follower cannot tell, the server checked.
    log = tribe(
        ("add", B_OWNER, "member", OWNER_DEVICE_SIGN),
        ("leave", B_OWNER, None, B_SIGN),  # signed by a device the follower cannot place
        ("add", INVITEE, "author", OWNER_DEVICE_SIGN),
    )
    got, view, state, error = follower_case(log)
    assert error is None and got["error"] is None and state.seq == 3
    assert dict(state.members) == {OWNER: "author", INVITEE: "author"} and B_OWNER in state.former
    got, view, state, _ = follower_case(log[:2])
    assert got["state"]["members"] == {OWNER: "author", B_OWNER: "member"}
    member = got["verdicts"]["members"][B_OWNER]
    assert (member["trusted"], member["why_not"]) == (False, "uncertified_member")
    device = got["verdicts"]["devices"][B_DEVICE]
    assert (device["usable"], device["why_not"]) == (False, "uncertified_device")
    python_why = view.why_not(B_DEVICE)
    assert python_why is not None and FOLLOWERS_VERIFY_OWN in python_why.message
    # Nothing is sealed to them; the warning says why, in both clients.
    assert got["recipients"] == []  # the invitee is not in the tribe yet: not_in_membership
    [warning] = [w for w in got["warnings"] if w["device_id"] == B_DEVICE]
    assert warning["code"] == "uncertified_device" and FOLLOWERS_VERIFY_OWN in warning["message"]


def test_a_follower_still_refuses_what_no_view_accepts_from_an_unplaced_member() -> None:
    added = tribe(("add", B_OWNER, "member", OWNER_DEVICE_SIGN))
    as_author = tribe(("add", B_OWNER, "author", OWNER_DEVICE_SIGN))
    got = follower_case(as_author)[0]  # a partner's member is never a tribe's author (22.6)
    assert "never a channel's author" in got["error"] and got["state"]["seq"] == 0
    manages = entry(TRIBE, 2, added[-1], "add", INVITEE, "member", B_SIGN)
    got = follower_case([*added, manages])[0]  # their device signs nothing but their own leave
    assert "not a certified device" in got["error"] and got["state"]["seq"] == 1
    others_leave = entry(TRIBE, 2, added[-1], "leave", OWNER, None, B_SIGN)
    assert "not a certified device" in follower_case([*added, others_leave])[0]["error"]
