"""Request bodies of the REST API: validated at the edge, so services get clean values."""

from __future__ import annotations

from typing import Literal

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


class InviteBody(_Body):
    display_name: str = Field(min_length=1, max_length=120)
    role: str = "member"
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)


class ActivateBody(_Body):
    code: str = Field(min_length=8, max_length=100)
    sign_public_key: str = Field(min_length=40, max_length=60)
    box_public_key: str = Field(min_length=40, max_length=60)
    proof: str = Field(min_length=80, max_length=100)
    device_name: str = Field(default="", max_length=120)
    display_name: str | None = Field(default=None, max_length=120)


class RoleBody(_Body):
    role: str


class CreateChannelBody(_Body):
    kind: Literal["tribe", "group"]
    name: str = Field(min_length=1, max_length=120)


class RenameChannelBody(_Body):
    name: str = Field(min_length=1, max_length=120)


class ChannelRoleBody(_Body):
    role: Literal["author", "member"] = "member"


class SealedKey(_Body):
    recipient_device: str = Field(min_length=3, max_length=40)
    sender_device: str | None = Field(default=None, max_length=40)
    epoch: int | None = None
    sealed: str = Field(min_length=1, max_length=700)


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
