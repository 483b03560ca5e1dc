"""Request bodies of the REST API: validated at the edge, so services get clean values."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.organisation import Plan

# Deliberately loose: the mail server is the real judge; this catches typos early.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class CreateOrgBody(_Body):
    name: str = Field(min_length=1, max_length=120)
    plan: Plan = Plan.FREE
    owner_name: str = Field(default="Owner", min_length=1, max_length=120)
    owner_email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)


#: A signed statement (docs/protocol.md, 13.1): checked by chalicelib/domain/statements.py.
Statement = dict[str, Any]


class InviteBody(_Body):
    display_name: str = Field(min_length=1, max_length=120)
    role: str = "member"
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    ticket: Statement | None = None


class LinkBody(_Body):
    ticket: Statement | None = None


class ActivateBody(_Body):
    code: str = Field(min_length=8, max_length=100)
    sign_public_key: str = Field(min_length=40, max_length=60)
    box_public_key: str = Field(min_length=40, max_length=60)
    proof: str = Field(min_length=80, max_length=100)
    device_name: str = Field(default="", max_length=120)
    display_name: str | None = Field(default=None, max_length=120)
    member_cert: Statement | None = None
    device_cert: Statement | None = None


class RoleBody(_Body):
    role: str
    statement: Statement | None = None


class StatementBody(_Body):
    """A removal or a revocation: the signed statement alone."""

    statement: Statement | None = None


class CreateChannelBody(_Body):
    kind: Literal["tribe", "group"]
    name: str = Field(min_length=1, max_length=120)
    membership: Statement | None = None


class RenameChannelBody(_Body):
    name: str = Field(min_length=1, max_length=120)


class ChannelRoleBody(_Body):
    role: Literal["author", "member"] = "member"
    membership: Statement | None = None


class MembershipBody(_Body):
    """Leaving or removing from a channel: the signed log entry."""

    membership: Statement | None = None


class SealedKey(_Body):
    recipient_device: str = Field(min_length=3, max_length=40)
    sender_device: str | None = Field(default=None, max_length=40)
    epoch: int | None = None
    sealed: str = Field(min_length=1, max_length=700)


class OrgNameBody(_Body):
    name: str = Field(min_length=1, max_length=120, description="the organisation's name, as people see it")


class RetentionBody(_Body):
    duration: str | None = Field(default=None, max_length=20, description="90d, 12w, 3m, 1y; null: the org's")


class PilotEndBody(_Body):
    choice: Literal["convert", "suspend"]


class BillingRunBody(_Body):
    month: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    dry_run: bool = False


class PutKeysBody(_Body):
    epoch: int = Field(ge=0)
    keys: list[SealedKey] = Field(min_length=1, max_length=500)
