"""Who may call, and the ICE servers a device gets (chalicelib/domain/calls.py)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.calls import (
    CallsNotInPlan,
    NotACallChannel,
    Signal,
    after_signal,
    ended_now,
    ice_servers,
    require_calls_allowed,
    turn_credential,
)
from chalicelib.domain.channel import ChannelKind
from chalicelib.domain.organisation import Organisation, PilotEndChoice, Plan

YEAR = 365 * 86400


def org(plan: Plan, pilot_end_choice: PilotEndChoice = PilotEndChoice.CONVERT) -> Organisation:
    return Organisation(
        org_id="o_1",
        name="Mairie",
        plan=plan,
        created_at=0,
        plan_started_at=0,
        pilot_end_choice=pilot_end_choice,
    )


def test_pro_and_a_running_pilot_call_in_groups_and_direct_conversations() -> None:
    for plan in (Plan.PRO, Plan.PILOT):
        for kind in (ChannelKind.GROUP, ChannelKind.DIRECT):
            require_calls_allowed(org(plan), kind, 10)  # no error


@pytest.mark.parametrize(
    ("organisation", "kind", "refusal"),
    [
        (org(Plan.FREE), ChannelKind.GROUP, CallsNotInPlan),
        (org(Plan.PILOT, pilot_end_choice=PilotEndChoice.SUSPEND), ChannelKind.GROUP, CallsNotInPlan),
        (org(Plan.PRO), ChannelKind.TRIBE, NotACallChannel),
    ],
)
def test_who_may_not_call(organisation: Organisation, kind: ChannelKind, refusal: type[Exception]) -> None:
    with pytest.raises(refusal):
        require_calls_allowed(organisation, kind, 2 * YEAR)


def test_turn_credentials_name_their_expiry_and_member() -> None:
    first = turn_credential("secret", "m_1", 1_000, 60)
    assert (first.username, first.expires_at) == ("1060:m_1", 1060)
    assert (
        turn_credential("secret", "m_1", 1_000, 60) == first
    )  # no state: the same inputs, the same credential
    assert turn_credential("other", "m_1", 1_000, 60).credential != first.credential
    assert turn_credential("secret", "m_2", 1_000, 60).credential != first.credential


def test_ice_servers_carry_the_credential_only_with_turn() -> None:
    cred = turn_credential("secret", "m_1", 0, 60)
    assert ice_servers(("stun:a",), ("turn:a",), cred) == [
        {"urls": ["stun:a"]},
        {"urls": ["turn:a"], "username": cred.username, "credential": cred.credential},
    ]
    assert ice_servers((), ("turn:a",), None) == []


# -- signalling rules (docs/protocol.md 19.2) ---------------------------------------------------


def _signal(call: Any, signal: str, device: str, *, targets: list[str] | None = None, now: int = 100) -> Any:
    from chalicelib.domain.calls import Signal, after_signal

    return after_signal(
        call,
        call_id="k_aaaaaaaaaaaaaaaa",
        channel_id="c_aaaaaaaaaaaaaaaa",
        signal=Signal(signal),
        device_id=device,
        member_id=f"m_{device}",
        targets=targets or [],
        now=now,
    )


def test_a_ring_starts_the_call_and_only_a_ring_may() -> None:
    from chalicelib.domain.calls import CALL_TTL
    from chalicelib.errors import NotFound

    call = _signal(None, "ring", "d1")
    assert (call.participants, call.started_at, call.ended_at) == ({"d1": "m_d1"}, 100, None)
    assert call.expires_at == 100 + CALL_TTL
    for signal in ("accept", "join", "offer", "leave", "hangup", "decline"):
        with pytest.raises(NotFound):
            _signal(None, signal, "d1")


def test_participants_join_leave_and_the_call_ends_with_the_last() -> None:
    from chalicelib.domain.calls import CallEnded, NotInCall

    call = _signal(None, "ring", "d1")
    assert _signal(call, "decline", "d2") is call  # nothing changes, nothing is written
    call = _signal(call, "accept", "d2")
    assert set(call.participants) == {"d1", "d2"} and call.version == 2
    assert _signal(call, "offer", "d1", targets=["d2"]) is call
    with pytest.raises(NotInCall):
        _signal(call, "offer", "d1", targets=["d3"])  # sealed signals go to participants only
    with pytest.raises(NotInCall):
        _signal(call, "candidate", "d3", targets=["d1"])  # ...and come from them
    call = _signal(call, "leave", "d1")
    assert call.participants == {"d2": "m_d2"} and call.ended_at is None
    call = _signal(call, "leave", "d2", now=160)
    assert call.ended_at == 160 and call.joined == ["d1", "d2"]
    for signal in ("join", "offer", "ring"):
        with pytest.raises(CallEnded):
            _signal(call, signal, "d1", targets=["d2"])


def test_the_seventh_is_refused_a_hangup_ends_it_for_all_and_old_calls_are_over() -> None:
    from chalicelib.domain.calls import CALL_TTL, MAX_PARTICIPANTS, CallEnded, CallFull

    call = _signal(None, "ring", "d0")
    for i in range(1, MAX_PARTICIPANTS):
        call = _signal(call, "join", f"d{i}")
    with pytest.raises(CallFull):
        _signal(call, "accept", "d9")
    assert _signal(call, "join", "d3") is call  # one already in: no place taken twice
    with pytest.raises(CallEnded):
        _signal(call, "join", "d1", now=100 + CALL_TTL)
    assert _signal(call, "hangup", "d2", now=130).ended_at == 130


def test_participant_seconds_count_only_while_two_devices_or_more_are_in_the_call() -> None:
    def apply(call: Any, signal: Signal, device: str, now: int) -> Any:
        return after_signal(
            call,
            call_id="k_" + "a" * 16,
            channel_id="c_" + "b" * 16,
            signal=signal,
            device_id=device,
            member_id="m_" + device[2:],
            targets=[],
            now=now,
        )

    call = apply(None, Signal.RING, "d_caller", 1000)
    call = apply(call, Signal.ACCEPT, "d_alice", 1030)  # 30 s ringing alone: nothing
    call = apply(call, Signal.JOIN, "d_bob", 1090)  # 60 s x 2
    call = apply(call, Signal.LEAVE, "d_caller", 1100)  # 10 s x 3
    after = apply(call, Signal.LEAVE, "d_alice", 1200)  # 100 s x 2
    assert after.participant_seconds == 120 + 30 + 200 and not after.ended
    last = apply(after, Signal.LEAVE, "d_bob", 1500)  # 300 s alone: nothing
    assert last.participant_seconds == 350 and ended_now(after, last) and not ended_now(last, last)
    lonely = apply(apply(None, Signal.RING, "d_caller", 0), Signal.HANGUP, "d_caller", 45)
    assert lonely.participant_seconds == 0 and ended_now(None, lonely)
