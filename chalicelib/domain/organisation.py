"""Organisations, members, roles and devices: pure models and the rules between them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import Forbidden


class Plan(StrEnum):
    FREE = "free"
    PILOT = "pilot"
    PRO = "pro"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    # Reads an organisation's public tribes, reacts and votes there; never a member
    # (docs/protocol.md, section 16): not billed, not listed, certified by a join link.
    FOLLOWER = "follower"
    # Someone from outside (a contractor on one site): a billed member who sees only the
    # channels they are added to, no directory, and stays a guest (docs/protocol.md, 21).
    GUEST = "guest"

    @property
    def rank(self) -> int:
        return {Role.FOLLOWER: -2, Role.GUEST: -1, Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}[self]

    @property
    def is_follower(self) -> bool:
        return self is Role.FOLLOWER

    @property
    def is_guest(self) -> bool:
        return self is Role.GUEST

    @property
    def is_admin(self) -> bool:
        return self.rank >= Role.ADMIN.rank


class PilotEndChoice(StrEnum):
    """What a pilot becomes at the end of its free year: chosen in advance by its admins."""

    CONVERT = "convert"  # becomes ``pro`` and is billed from then on
    SUSPEND = "suspend"  # keeps reading, but its sending is suspended


class MemberStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    REMOVED = "removed"


DEFAULT_RETENTION_DAYS = 90
DEFAULT_AUDIT_DAYS = 365


#: A signed statement as stored and returned: a JSON object (chalicelib/domain/statements.py).
Statement = dict[str, Any]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Organisation(_Record):
    org_id: str
    name: str = Field(min_length=1, max_length=120)
    plan: Plan = Plan.FREE
    retention_days: int = DEFAULT_RETENTION_DAYS
    created_at: int
    # When the current plan started; None (every organisation stored before billing) means
    # at creation. A pilot's free year counts from here (see domain/billing.py).
    plan_started_at: int | None = None
    pilot_end_choice: PilotEndChoice = PilotEndChoice.CONVERT
    # The fingerprint of the first owner's identity key (docs/protocol.md, 13.2), once they
    # activated: only a hint for clients, who pin their own.
    root: str | None = None
    # How long the administrators' audit log keeps an entry (chalicelib/domain/audit.py).
    audit_days: int = DEFAULT_AUDIT_DAYS
    # The longest side of the photos its devices send (chalicelib/domain/files.py).
    photo_max_side: int = 1600

    @property
    def plan_start(self) -> int:
        return self.created_at if self.plan_started_at is None else self.plan_started_at


class Member(_Record):
    org_id: str
    member_id: str
    display_name: str = Field(min_length=1, max_length=120)
    role: Role
    status: MemberStatus
    created_at: int
    activated_at: int | None = None
    removed_at: int | None = None
    # Signed statements (docs/protocol.md, section 13), stored as received: clients check them.
    member_cert: Statement | None = None
    ticket: Statement | None = None
    role_statements: tuple[Statement, ...] = ()
    removal: Statement | None = None

    @property
    def is_active(self) -> bool:
        return self.status is MemberStatus.ACTIVE

    @property
    def identity_key(self) -> str | None:
        return None if self.member_cert is None else str(self.member_cert["identity_key"])

    def statements(self) -> dict[str, Any]:
        """What clients verify, with explicit nulls (docs/protocol.md, 13.9)."""
        return {
            "member_cert": self.member_cert,
            "ticket": self.ticket,
            "role_statements": list(self.role_statements),
            "removal": self.removal,
        }


class Device(_Record):
    device_id: str
    org_id: str
    member_id: str
    name: str = Field(max_length=120)
    sign_public_key: str  # base64url Ed25519 verify key
    box_public_key: str  # base64url X25519 public key
    created_at: int
    revoked_at: int | None = None
    device_cert: Statement | None = None
    ticket: Statement | None = None  # the link ticket, for a device linked from another
    revocation: Statement | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def statements(self) -> dict[str, Any]:
        return {"device_cert": self.device_cert, "ticket": self.ticket, "revocation": self.revocation}


def require_admin(role: Role) -> None:
    if not role.is_admin:
        raise Forbidden("only the organisation's owners and admins may do this")


def require_may_manage(actor: Role, target: Role) -> None:
    """Admins manage members and admins; only owners touch owners."""
    require_admin(actor)
    if target is Role.OWNER and actor is not Role.OWNER:
        raise Forbidden("only an owner may change or remove another owner")


def require_may_grant(actor: Role, granted: Role) -> None:
    require_admin(actor)
    if granted is Role.OWNER and actor is not Role.OWNER:
        raise Forbidden("only an owner may make someone an owner")


def require_same_side(current: Role, granted: Role) -> None:
    """A guest stays a guest and a member never becomes one (docs/protocol.md, 21): the role
    their invitation signed says which people an organisation let in from outside."""
    if current.is_guest and not granted.is_guest:
        raise Forbidden("a guest stays a guest: invite them again as a member")
    if granted.is_guest and not current.is_guest:
        raise Forbidden("a member cannot be made a guest: remove them and invite them as a guest")


def require_not_guest(role: Role, what: str) -> None:
    """Refuse a guest what only the organisation's own people do (docs/protocol.md, 21)."""
    if role.is_guest:
        raise Forbidden(f"a guest {what}")
