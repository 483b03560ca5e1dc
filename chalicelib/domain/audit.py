"""The administrators' audit log: who did what to the organisation, and when.

An entry names its actor (member id and display name at the time, or the operator), an action,
the ids it acted on and a few small, non-secret details (an old and a new role, a number of
days). It never holds message content, activation codes, tokens, keys or signed statements:
``AuditEntry`` refuses any detail whose name says it might. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import DAY, MAX_DAYS
from chalicelib.errors import BadRequest

MIN_AUDIT_DAYS = 30  # short enough to be a choice, long enough that nobody erases last week
MAX_AUDIT_DAYS = MAX_DAYS  # what a duration may say (domain/retention.py)
OPERATOR_ACTOR = "operator"
MAX_DETAILS = 8
MAX_DETAIL_CHARS = 200
#: Detail names that could carry a secret: refused whatever the caller meant.
_SECRET_NAMES = re.compile(r"code|token|key|secret|statement|cert|ticket|proof|sealed|content|body", re.I)
#: Open on purpose: a new kind of change (partners, public links) is one more name, ``noun.verb``.
_ACTION = re.compile(r"[a-z][a-z_]{1,30}\.[a-z][a-z_]{1,30}")


class AuditAction(StrEnum):
    """The actions recorded today; entries store the plain string, so others may be added."""

    INVITATION_ISSUED = "invitation.issued"
    INVITATION_ACTIVATED = "invitation.activated"
    DEVICE_LINKED = "device.linked"
    DEVICE_REVOKED = "device.revoked"
    MEMBER_REMOVED = "member.removed"
    ROLE_CHANGED = "member.role_changed"
    RENAMED = "org.renamed"
    RETENTION_CHANGED = "org.retention_changed"
    AUDIT_RETENTION_CHANGED = "org.audit_retention_changed"
    PHOTO_SIZE_CHANGED = "org.photo_size_changed"
    PLAN_CHANGED = "plan.changed"
    PILOT_END_CHOSEN = "plan.pilot_end_chosen"
    CHANNEL_CREATED = "channel.created"
    CHANNEL_RENAMED = "channel.renamed"
    CHANNEL_RETENTION_CHANGED = "channel.retention_changed"
    CHANNEL_MEMBER_ADDED = "channel.member_added"
    CHANNEL_ROLE_CHANGED = "channel.role_changed"
    CHANNEL_MEMBER_REMOVED = "channel.member_removed"
    PARTNER_INVITED = "partner.invited"
    PARTNER_ACCEPTED = "partner.accepted"
    PARTNER_CONFIRMED = "partner.confirmed"
    PARTNER_ENDED = "partner.ended"


Detail = str | int | bool | None


class Actor(BaseModel):
    """Who acted: a member under the name they had then, or the service operator."""

    model_config = ConfigDict(frozen=True)

    member_id: str
    display_name: str | None = None

    @classmethod
    def of(cls, who: Principal | None) -> Actor:
        if who is None:
            return OPERATOR
        return cls(member_id=who.member_id, display_name=who.display_name or None)


OPERATOR = Actor(member_id=OPERATOR_ACTOR)


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    org_id: str
    entry_id: str
    at: int
    actor: Actor
    action: str = Field(pattern=_ACTION.pattern)
    targets: dict[str, str] = Field(default_factory=dict)
    details: dict[str, Detail] = Field(default_factory=dict)

    @field_validator("details")
    @classmethod
    def _small_and_not_secret(cls, details: dict[str, Detail]) -> dict[str, Detail]:
        if len(details) > MAX_DETAILS:
            raise ValueError(f"at most {MAX_DETAILS} details")
        for name, value in details.items():
            if _SECRET_NAMES.search(name):
                raise ValueError(f"the audit log records no secrets ({name!r})")
            if isinstance(value, str) and len(value) > MAX_DETAIL_CHARS:
                raise ValueError(f"detail {name!r} is over {MAX_DETAIL_CHARS} characters")
        return details

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"org_id"})


def entry(
    org_id: str,
    at: int,
    actor: Actor,
    action: AuditAction | str,
    targets: dict[str, str],
    details: dict[str, Detail] | None = None,
) -> AuditEntry:
    """An entry whose id is derived from what it says, so a retried action writes it again in
    place instead of twice (the services' steps after a crash re-publish their events)."""
    details = details or {}
    canonical = json.dumps(
        [str(action), actor.member_id, targets, details, at], sort_keys=True, separators=(",", ":")
    )
    entry_id = "a_" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return AuditEntry(
        org_id=org_id,
        entry_id=entry_id,
        at=at,
        actor=actor,
        action=str(action),
        targets=targets,
        details=details,
    )


def check_audit_days(days: int) -> int:
    if not MIN_AUDIT_DAYS <= days <= MAX_AUDIT_DAYS:
        raise BadRequest(
            f"the audit log is kept between {MIN_AUDIT_DAYS} days and 5 years ({MAX_AUDIT_DAYS} days)"
        )
    return days


def expires_at(at: int, days: int) -> int:
    """When an entry written at ``at`` goes: set once, so shortening the setting later erases
    nothing already recorded (nobody hides last week's changes by shortening the log)."""
    return at + days * DAY
