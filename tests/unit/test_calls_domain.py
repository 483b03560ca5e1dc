"""Who may call, and the ICE servers a device gets (chalicelib/domain/calls.py)."""

from __future__ import annotations

import pytest

from chalicelib.domain.calls import (
    CallsNotInPlan,
    NotACallChannel,
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
