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

import time
from typing import Any

from bocage.client.profile import DeviceKeys
from bocage.client.shared import HostAuthority, SharedView
from chalicelib.domain import membership_log
from chalicelib.domain.encoding import b64e
from chalicelib.domain.membership_log import LogError, LogState
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


def follower_case(
    entries: list[dict[str, Any]],
    *,
    hide: str | None = None,
    seen: dict[str, str] | None = None,
    kept: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], SharedView, Any, Any]:
    """The same replay, as a follower of A (no partner pinned), in both clients: from entry 0, or
    onto a ``kept`` state; ``hide``: a member the server leaves out of the follower's listing;
    ``seen``: identity keys the follower's device kept."""
    _, members, devices = org()
    members = [m for m in members if m["member_id"] != hide]
    devices = [d for d in devices if d["member_id"] != hide]
    got = run_js(
        {
            "op": "shared",
            **scene(members, devices, seen=seen or {}),
            "from": kept,
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
    view = SharedView(ORG, ROOT, members, devices, seen=seen, follower=True)
    authority = HostAuthority({"org_id": ORG}, lambda: view)
    if kept is None:
        state, error = membership_log.replay(entries, authority, TRIBE)
    else:
        state, error = extended(LogState.from_json(kept), entries, authority)
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


def extended(
    state: LogState, entries: list[dict[str, Any]], authority: HostAuthority
) -> tuple[LogState, LogError | None]:
    """``state`` extended by ``entries``, up to the first that does not extend it."""
    for one in entries:
        try:
            state = membership_log.extend(state, one, authority)
        except LogError as exc:
            return state, exc
    return state, None


def forged_leave(prev: dict[str, Any], member: str) -> dict[str, Any]:
    """A ``leave`` of ``member`` after ``prev``, by a device nobody lists, with a zero signature."""
    made_up = entry(TRIBE, prev["seq"] + 1, prev, "leave", member, None, OWNER_DEVICE_SIGN)
    return {**made_up, "by_device": DeviceKeys.generate().device_id, "sig": b64e(bytes(64))}


def test_a_server_cannot_take_a_verified_author_out_with_an_unsigned_leave() -> None:
    """The attack: the server leaves an author the follower verified out of its listing once and
    serves a ``leave`` of them signed by nobody. Both clients refuse it (the author's posts would
    otherwise be refused from its date, and the forged state kept for good)."""
    log = tribe(("add", INVITEE, "author", OWNER_DEVICE_SIGN))
    got, view, state, error = follower_case(log)
    assert error is None and state.members[INVITEE] == "author" and not state.unplaced
    key = view.identity_key(INVITEE)
    assert key is not None
    for seen in ({INVITEE: key}, {}):  # whether or not the device kept their key: verified when added
        got, _, after, error = follower_case(
            [forged_leave(log[-1], INVITEE)], hide=INVITEE, seen=seen, kept=state.to_json()
        )
        assert "not a certified device" in str(error) and "not a certified device" in got["error"]
        assert after == state and got["state"]["members"][INVITEE] == "author"
    # Nor is a member whose key the device kept ever taken as someone of a partner: their add,
    # with them left out of the listing, stops the replay rather than holding them unverified.
    as_member = tribe(("add", INVITEE, "member", OWNER_DEVICE_SIGN))
    got, _, state, error = follower_case(as_member, hide=INVITEE, seen={INVITEE: key})
    assert "cannot be added" in str(error) and "cannot be added" in got["error"] and state.seq == 0


def test_an_unplaced_members_leave_is_dated_between_the_log_and_the_clock() -> None:
    added = tribe(("add", B_OWNER, "member", OWNER_DEVICE_SIGN))
    got, _, state, _ = follower_case(added)
    assert state.unplaced == {B_OWNER} and got["state"]["unplaced"] == [B_OWNER]
    kept = state.to_json()

    def leave(at: int) -> dict[str, Any]:
        return entry(TRIBE, 2, added[-1], "leave", B_OWNER, None, B_SIGN, at=at)

    # Dated before the entry it follows, or ahead of this device's clock: refused, whatever the
    # skew an entry signed by a device the follower places may have.
    for at in (state.issued_at - 1, int(time.time()) + 3600):
        got, _, after, error = follower_case([leave(at)], kept=kept)
        assert "not a certified device" in str(error) and "not a certified device" in got["error"]
        assert after == state and B_OWNER in got["state"]["members"]
    got, _, after, error = follower_case([leave(state.issued_at)], kept=kept)
    assert error is None and B_OWNER not in after.members and not after.unplaced
    assert "unplaced" not in got["state"]
    # A state kept before it named who is held unverified holds nobody so: the leave stops there.
    old = {k: v for k, v in kept.items() if k != "unplaced"}
    got, _, after, error = follower_case([leave(state.issued_at)], kept=old)
    assert "not a certified device" in str(error) and B_OWNER in got["state"]["members"]
