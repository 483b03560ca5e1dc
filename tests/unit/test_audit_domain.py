"""The audit log's entries: small, non-secret, open to new actions, written once per action."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.domain.audit import (
    OPERATOR,
    Actor,
    AuditAction,
    check_audit_days,
    entry,
    expires_at,
)
from chalicelib.domain.organisation import Role
from chalicelib.domain.principal import Principal
from chalicelib.errors import BadRequest

MAIRE = Actor(member_id="m_1", display_name="Maire")


def test_the_same_action_gives_the_same_entry_so_a_retry_rewrites_it() -> None:
    first = entry("o_1", 100, MAIRE, AuditAction.MEMBER_REMOVED, {"member_id": "m_2"}, {"name": "A"})
    again = entry("o_1", 100, MAIRE, AuditAction.MEMBER_REMOVED, {"member_id": "m_2"}, {"name": "A"})
    other = entry("o_1", 100, MAIRE, AuditAction.MEMBER_REMOVED, {"member_id": "m_3"}, {"name": "A"})
    assert first.entry_id == again.entry_id != other.entry_id
    assert first.public()["action"] == "member.removed" and "org_id" not in first.public()


@pytest.mark.parametrize("name", ["activation_code", "token", "sign_public_key", "ticket", "statement"])
def test_details_that_could_hold_a_secret_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="no secrets"):
        entry("o_1", 1, MAIRE, AuditAction.INVITATION_ISSUED, {}, {name: "x"})


def test_details_stay_small() -> None:
    with pytest.raises(ValidationError):
        entry("o_1", 1, MAIRE, AuditAction.CHANNEL_RENAMED, {}, {"name": "x" * 201})
    with pytest.raises(ValidationError):
        entry("o_1", 1, MAIRE, AuditAction.CHANNEL_RENAMED, {}, {f"d{i}": i for i in range(9)})


def test_actions_are_open_but_shaped() -> None:
    assert entry("o_1", 1, MAIRE, "partner.added", {"partner_id": "p_1"}).action == "partner.added"
    with pytest.raises(ValidationError):
        entry("o_1", 1, MAIRE, "Partner added!", {})


def test_actors_are_members_under_their_name_or_the_operator() -> None:
    who = Principal("o_1", "m_1", "d_1", Role.ADMIN, display_name="Adjointe")
    assert Actor.of(who) == Actor(member_id="m_1", display_name="Adjointe")
    assert Actor.of(None) == OPERATOR and OPERATOR.member_id == "operator"


def test_the_audit_period_is_bounded_and_set_at_write_time() -> None:
    assert check_audit_days(30) == 30 and check_audit_days(5 * 365) == 5 * 365
    for days in (29, 5 * 365 + 1):
        with pytest.raises(BadRequest):
            check_audit_days(days)
    assert expires_at(1000, 30) == 1000 + 30 * 86400
