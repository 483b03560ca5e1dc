"""The membership log's replay rules (chalicelib/domain/membership_log.py) and the client's
rollback and fork detection (bocage/client/membership.py), on the protocol's worked examples."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.certs import TrustView
from bocage.client.issuing import membership_entry
from bocage.client.membership import MembershipRefused, sync
from chalicelib.domain.membership_log import LogError, LogState, create, extend, replay
from chalicelib.domain.statements import statement_hash
from tests.trust_vectors import (
    CHANNEL,
    INVITEE,
    INVITEE_DEVICE_SIGN,
    ORG,
    OWNER,
    OWNER_DEVICE_SIGN,
    ROOT,
    T,
    build_vectors,
    device_id,
    members_and_devices,
)


def org() -> tuple[dict[str, dict[str, Any]], TrustView]:
    v = build_vectors()
    members, devices = members_and_devices(v)
    return v, TrustView(ORG, ROOT, members, devices)


def entry(seed: bytes, previous: dict[str, Any] | None, now: int = T + 500, **fields: Any) -> dict[str, Any]:
    return membership_entry(
        _signing(seed),
        device_id(seed),
        org_id=ORG,
        channel_id=CHANNEL,
        previous=previous,
        now=now,
        **fields,
    )


def _signing(seed: bytes) -> Any:
    from nacl.signing import SigningKey

    return SigningKey(seed)


def test_the_worked_example_replays_to_two_members() -> None:
    v, view = org()
    state, error = replay([v["op0"], v["op1"]], view)
    assert error is None and state is not None
    assert dict(state.members) == {OWNER: "author", INVITEE: "member"}
    assert (state.seq, state.head, state.kind) == (1, statement_hash(v["op1"]), "group")


def test_who_may_do_what() -> None:
    v, view = org()
    state = extend(create(v["op0"], view), v["op1"], view)
    with pytest.raises(LogError, match="may not manage"):  # a plain member adds nobody
        extend(state, entry(INVITEE_DEVICE_SIGN, v["op1"], op="role", member_id=INVITEE, role="author"), view)
    with pytest.raises(LogError, match="leaves it, by themselves"):  # nor makes another leave
        extend(state, entry(INVITEE_DEVICE_SIGN, v["op1"], op="leave", member_id=OWNER, role=None), view)
    left = extend(state, entry(INVITEE_DEVICE_SIGN, v["op1"], op="leave", member_id=INVITEE, role=None), view)
    assert dict(left.members) == {OWNER: "author"}
    tribe = entry(INVITEE_DEVICE_SIGN, None, op="create", member_id=INVITEE, role="author", kind="tribe")
    with pytest.raises(LogError, match="admins create tribes"):
        create(tribe, view)
    with pytest.raises(LogError, match="does not follow"):
        extend(state, entry(OWNER_DEVICE_SIGN, v["op0"], op="remove", member_id=INVITEE, role=None), view)


def test_an_unsigned_entry_stops_the_replay_where_it_is() -> None:
    v, view = org()
    forged = {
        **entry(OWNER_DEVICE_SIGN, v["op1"], op="remove", member_id=INVITEE, role=None),
        "sig": v["op1"]["sig"],
    }
    state, error = replay([v["op0"], v["op1"], forged], view)
    assert state is not None and state.seq == 1 and error is not None and "signature" in str(error)


def test_the_client_refuses_a_rollback_and_a_fork() -> None:
    v, view = org()
    kept, _ = sync(CHANNEL, None, lambda start: ([v["op0"], v["op1"]][start:], {"seq": 1}), view)
    assert kept.seq == 1
    with pytest.raises(MembershipRefused) as rolled:
        sync(CHANNEL, kept, lambda start: ([], {"seq": 0}), view)
    assert rolled.value.warning.code == "membership_rollback"
    other = entry(OWNER_DEVICE_SIGN, v["op0"], op="add", member_id=INVITEE, role="author")
    with pytest.raises(MembershipRefused) as forked:
        sync(CHANNEL, kept, lambda start: ([other], {"seq": 1}), view)
    assert forked.value.warning.code == "membership_fork"
    same, warnings = sync(CHANNEL, kept, lambda start: ([v["op1"]], {"seq": 1}), view)
    assert same == kept and warnings == []


def test_the_client_refuses_another_channel_s_log() -> None:
    """A server answering with another channel's log (from its creation, or a state kept for
    another channel) gets no state for the channel asked: keys are never sealed to its members."""
    v, view = org()
    other = "c_xxxxxxxxxxxxxxxx"
    with pytest.raises(MembershipRefused) as fresh:
        sync(other, None, lambda start: ([v["op0"], v["op1"]][start:], {"seq": 1}), view)
    assert fresh.value.warning.code == "membership_invalid"
    state, error = replay([v["op0"], v["op1"]], view, other)
    assert state is None and error is not None and "another channel" in str(error)
    kept, _ = sync(CHANNEL, None, lambda start: ([v["op0"], v["op1"]][start:], {"seq": 1}), view)
    with pytest.raises(MembershipRefused) as moved:
        sync(other, kept, lambda start: ([v["op1"]], {"seq": 1}), view)
    assert moved.value.warning.code == "membership_invalid"


def test_who_left_is_kept_with_when_and_judges_their_messages() -> None:
    """14.2: a member who left sends nothing dated after it (5 minutes of clock skew allowed);
    what they sent before stays theirs; someone never in sends nothing; coming back clears it."""
    v, view = org()
    state = extend(create(v["op0"], view), v["op1"], view)
    removal = entry(OWNER_DEVICE_SIGN, v["op1"], op="remove", member_id=INVITEE, role=None)
    gone = extend(state, removal, view)
    left_at = T + 500
    assert dict(gone.former) == {INVITEE: left_at}
    assert LogState.from_json(gone.to_json()) == gone  # kept across runs
    assert gone.refuses_sender(OWNER, 1, "message") is None
    assert gone.refuses_sender(INVITEE, left_at * 1000, "message") is None
    assert gone.refuses_sender(INVITEE, (left_at + 300) * 1000, "message") is None
    assert (
        gone.refuses_sender(INVITEE, (left_at + 300) * 1000 + 1, "message")
        == "sent after leaving the channel"
    )
    assert gone.refuses_sender(INVITEE, True, "message") == "sent after leaving the channel"  # not a date
    assert gone.refuses_sender("m_nobody", 1, "message") == "not a member of this channel"
    back = extend(gone, entry(OWNER_DEVICE_SIGN, removal, op="add", member_id=INVITEE, role="member"), view)
    assert dict(back.former) == {} and back.refuses_sender(INVITEE, 10**13, "message") is None


def test_a_state_kept_without_former_is_replayed_from_the_start_and_still_checked() -> None:
    """A state kept before ``former`` existed is rebuilt from entry 0 once; the entry at its
    ``seq`` must still replay to its ``head`` (a fork stays a fork) and a short log a rollback."""
    v, view = org()
    removal = entry(OWNER_DEVICE_SIGN, v["op1"], op="remove", member_id=INVITEE, role=None)
    log = [v["op0"], v["op1"], removal]
    kept_json = {k: val for k, val in replay(log, view)[0].to_json().items() if k != "former"}  # type: ignore[union-attr]
    kept = LogState.from_json(kept_json)
    asked: list[int] = []

    def fetch(start: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        asked.append(start)
        return log[start:], {"seq": 2}

    state, warnings = sync(CHANNEL, kept, fetch, view, rebuild=True)
    assert asked == [0] and warnings == []
    assert dict(state.former) == {INVITEE: T + 500} and state.seq == 2
    rewritten = entry(OWNER_DEVICE_SIGN, v["op1"], op="role", member_id=INVITEE, role="author")
    other = [v["op0"], v["op1"], rewritten]
    with pytest.raises(MembershipRefused) as forked:
        sync(CHANNEL, kept, lambda start: (other[start:], {"seq": 2}), view, rebuild=True)
    assert forked.value.warning.code == "membership_fork"
    with pytest.raises(MembershipRefused) as rolled:
        sync(CHANNEL, kept, lambda start: (log[:2][start:], {"seq": 1}), view, rebuild=True)
    assert rolled.value.warning.code == "membership_rollback"


def test_an_entry_dated_well_before_the_entries_it_follows_stops_the_replay() -> None:
    """A removed signer's device, with the server, could date an entry before its removal: the
    entries it follows bound that (section 14, "Dates"), up to the clocks' skew."""
    v, view = org()
    state = extend(create(v["op0"], view), v["op1"], view)
    later = entry(OWNER_DEVICE_SIGN, v["op1"], now=T + 2000, op="role", member_id=INVITEE, role="author")
    state = extend(state, later, view)
    assert (state.created_at, state.issued_at) == (v["op0"]["issued_at"], T + 2000)
    skewed = entry(OWNER_DEVICE_SIGN, later, now=T + 1400, op="role", member_id=INVITEE, role="member")
    kept = extend(state, skewed, view)  # 600 s back: another device's clock, still believed
    assert kept.issued_at == T + 2000  # the latest date stays the bound: no walking back in steps
    with pytest.raises(LogError, match="dated before the entries it follows"):
        removal = entry(OWNER_DEVICE_SIGN, skewed, now=T + 1399, op="remove", member_id=INVITEE, role=None)
        extend(kept, removal, view)
    assert LogState.from_json(kept.to_json()) == kept
    older = {k: x for k, x in kept.to_json().items() if k not in ("created_at", "issued_at")}
    assert LogState.from_json(older).issued_at == 0  # kept before dates were kept: no bound yet


def _removed_view(v: dict[str, dict[str, Any]]) -> TrustView:
    """The worked example's organisation after it removed the invitee (at T + 300)."""
    members, devices = members_and_devices(v)
    members[1]["removal"] = v["removal"]
    return TrustView(ORG, ROOT, members, devices)


def test_an_add_is_judged_by_the_member_s_standing_at_its_date() -> None:
    """Replaying from entry 0 after a member left the organisation: their ``add`` from before
    the removal still replays, so who came after stays verified (section 14)."""
    v, _ = org()
    view = _removed_view(v)
    assert view.may_join(INVITEE, T + 299) and not view.may_join(INVITEE, T + 300)
    assert view.may_join(OWNER, 10**12)
    state, error = replay([v["op0"], v["op1"]], view)  # the add is dated T + 210
    assert error is None and state is not None and dict(state.members) == {OWNER: "author", INVITEE: "member"}
    removal = entry(OWNER_DEVICE_SIGN, v["op1"], now=T + 400, op="remove", member_id=INVITEE, role=None)
    gone = extend(state, removal, view)
    again = entry(OWNER_DEVICE_SIGN, removal, now=T + 400, op="add", member_id=INVITEE, role="member")
    assert dict(extend(gone, again, view).members)[INVITEE] == "member"  # within the clocks' skew
    late = entry(OWNER_DEVICE_SIGN, removal, now=T + 601, op="add", member_id=INVITEE, role="member")
    with pytest.raises(LogError, match="cannot be added"):
        extend(gone, late, view)


def test_a_rebuild_that_fails_keeps_the_state_without_former_to_try_again() -> None:
    """A log that no longer replays up to the kept entry leaves ``former`` unknown, not empty
    for good: the state is kept without it and the next check replays from entry 0 again."""
    v, view = org()
    removal = entry(OWNER_DEVICE_SIGN, v["op1"], now=T + 400, op="remove", member_id=INVITEE, role=None)
    log = [v["op0"], v["op1"], removal]
    full, _ = replay(log, view)
    assert full is not None
    kept = LogState.from_json(
        {k: x for k, x in full.to_json().items() if k not in ("former", "authored_until")}
    )
    assert not kept.former_known

    def fetch(start: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return log[start:], {"seq": 2}

    state, warnings = sync(CHANNEL, kept, fetch, _TrustlessAdd(view), rebuild=True)
    assert [w.code for w in warnings] == ["membership_invalid"]
    assert "could not be replayed" in warnings[0].message
    assert "former" not in state.to_json() and state.seq == 2
    state, warnings = sync(CHANNEL, kept, fetch, view, rebuild=True)
    assert warnings == [] and "former" in state.to_json() and dict(state.former) == {INVITEE: T + 400}


class _TrustlessAdd:
    """An authority under which no ``add`` replays (as for an ended partner's member, 22.6)."""

    def __init__(self, view: TrustView) -> None:
        self._view = view

    def signer(self, device_id: str, at: int) -> tuple[str, str] | None:
        return self._view.signer(device_id, at)

    def org_role(self, member_id: str, at: int) -> str | None:
        return self._view.org_role(member_id, at)

    def may_join(self, member_id: str, at: int) -> bool:
        return False

    def tribes_open_to(self, member_id: str) -> bool:
        return True

    def unplaced(self, member_id: str) -> bool:
        return False

    def now(self) -> int:
        return self._view.now()
