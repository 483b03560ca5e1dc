"""Domain events: facts one service states and others act on (channels re-key, sockets close,
the audit log records).

Services publish them on the event bus; they do not know who listens. ``by`` is who asked
(None: the operator, or a consequence of another change that is itself recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chalicelib.domain.channel import Channel, ChannelRole
from chalicelib.domain.organisation import Device, Member
from chalicelib.domain.principal import Principal


@dataclass(frozen=True)
class DeviceAdded:
    """A device was activated or linked: it joins its member's channel rosters."""

    device: Device


@dataclass(frozen=True)
class DeviceRevoked:
    """A device was revoked: it leaves every roster and loses its live connections."""

    device: Device
    by: Principal | None = None  # None when its member's removal revoked it


@dataclass(frozen=True)
class MemberRemoved:
    """A member was removed from the organisation: they leave every channel."""

    member: Member
    by: Principal | None = None


@dataclass(frozen=True)
class InvitationIssued:
    """An activation code was issued: for a new member, or for one more device of the caller."""

    member: Member
    by: Principal | None  # None: the operator, inviting an organisation's first owner
    grant: Literal["member", "device"]
    emailed: bool
    at: int


@dataclass(frozen=True)
class InvitationActivated:
    """An activation code was used: a new member's first device, or a linked device."""

    member: Member
    device: Device
    linked: bool


@dataclass(frozen=True)
class RoleChanged:
    by: Principal
    before: Member
    after: Member
    at: int


OrgSetting = Literal["name", "retention_days", "audit_days", "plan", "pilot_end_choice", "photo_max_side"]


@dataclass(frozen=True)
class OrgSettingChanged:
    """One of the organisation's settings moved from ``old`` to ``new``."""

    org_id: str
    by: Principal | None
    setting: OrgSetting
    old: str | int | None
    new: str | int | None
    at: int


ChannelChange = Literal["created", "renamed", "retention"]


@dataclass(frozen=True)
class ChannelChanged:
    """A channel was created or renamed, or its retention changed (``old``/``new``: its name or days)."""

    by: Principal
    channel: Channel
    change: ChannelChange
    old: str | int | None
    new: str | int | None
    at: int


@dataclass(frozen=True)
class ChannelMembershipChanged:
    """Someone was added to a channel, changed role in it, or was removed from it by another."""

    by: Principal
    channel: Channel
    member_id: str
    op: Literal["add", "role", "remove"]
    role: ChannelRole | None
    at: int


@dataclass(frozen=True)
class ChannelLeft:
    """A member is out of a channel (left, removed, or removed from the organisation): an
    ongoing call drops their devices."""

    channel_id: str
    member_id: str


@dataclass(frozen=True)
class MessageDeleted:
    """A message was deleted for everyone: what it carried (a file's blob) goes at once."""

    channel_id: str
    message_id: str


PartnerChange = Literal["invited", "accepted", "confirmed", "ended"]


@dataclass(frozen=True)
class PartnershipChanged:
    """An admin invited a partner organisation, accepted or countersigned a partnership, or ended
    one (docs/protocol.md, 22); recorded in the acting organisation's audit log."""

    by: Principal
    partner_org_id: str | None  # None for an invitation nobody has accepted yet
    change: PartnerChange
    at: int


@dataclass(frozen=True)
class PartnershipEnded:
    """A partnership is ended (published on every end request, so a retry finishes the work):
    each side's members leave the other's channels (docs/protocol.md, 22.6), those added up to
    ``ended_at`` (a later partnership's are not the end's)."""

    org_id: str
    partner_org_id: str
    ended_at: int


Event = (
    DeviceAdded
    | ChannelLeft
    | MessageDeleted
    | DeviceRevoked
    | MemberRemoved
    | InvitationIssued
    | InvitationActivated
    | RoleChanged
    | OrgSettingChanged
    | ChannelChanged
    | ChannelMembershipChanged
    | PartnershipChanged
    | PartnershipEnded
)
