"""Channels: tribes (broadcast: authors post, members read), groups (everyone posts) and direct
conversations (a group of exactly two members, one per pair: domain/direct.py)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.envelope import AUDIENCE_KINDS, Kind
from chalicelib.domain.organisation import Role, require_not_guest
from chalicelib.errors import Forbidden


class ChannelKind(StrEnum):
    TRIBE = "tribe"
    GROUP = "group"
    DIRECT = "direct"


class ChannelRole(StrEnum):
    AUTHOR = "author"  # posts in a tribe, and manages the channel
    MEMBER = "member"
    FOLLOWER = "follower"  # reads a public tribe, reacts and votes; never in its signed log


class Channel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    channel_id: str
    org_id: str
    kind: ChannelKind
    name: str = Field(min_length=1, max_length=120)
    created_by: str
    created_at: int
    retention_days: int | None = None  # shorter than the organisation's, or None
    direct_members: tuple[str, str] | None = None  # a direct conversation's two members, sorted
    #: Partner organisations whose members have been in this channel (22.6): its retention is
    #: the shortest of theirs and its own organisation's.
    partner_orgs: tuple[str, ...] = ()

    def public(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class ChannelMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    channel_id: str
    member_id: str
    role: ChannelRole
    added_at: int
    added_by: str
    #: The channel's organisation when it is not the member's own (a partner's shared group,
    #: 22.6); None in their own organisation's channels. A connection checks the partnership
    #: of these only, so a member never partnered costs no read.
    host_org: str | None = None
    #: The member's own organisation, with ``host_org`` only: the pair's index of shared
    #: memberships (an end's clean-up) is found from the membership alone.
    member_org: str | None = None


def require_may_create(kind: ChannelKind, org_role: Role) -> None:
    """Anyone but a guest starts a group; a tribe speaks for the organisation, so admins create
    those; a guest talks only where they were added (docs/protocol.md, 21)."""
    require_not_guest(org_role, "talks in the channels they were added to and creates none")
    if kind is ChannelKind.TRIBE and not org_role.is_admin:
        raise Forbidden("only the organisation's admins create tribes")


def require_may_change_members(channel: Channel) -> None:
    """A direct conversation is between its two members for good (docs/protocol.md, 14.1)."""
    if channel.kind is ChannelKind.DIRECT:
        raise Forbidden(
            "a direct conversation keeps its two members: create a group to talk with more people"
        )


def require_may_manage(org_role: Role, membership: ChannelMember | None) -> None:
    """Org admins manage any channel; a channel's authors manage their own."""
    if org_role.is_admin:
        return
    if membership is None or membership.role is not ChannelRole.AUTHOR:
        raise Forbidden("only the channel's authors and the organisation's admins manage this channel")


def require_may_hold(channel: Channel, member_role: Role, channel_role: ChannelRole) -> None:
    """A guest is never a channel's author (docs/protocol.md, 21): authors manage the channel,
    post for a tribe and add people, which a guest, who sees no directory, does not do."""
    if channel_role is ChannelRole.AUTHOR and channel.kind is not ChannelKind.DIRECT:
        require_not_guest(member_role, "is never a channel's author: add them as a member")


def require_may_send(channel: Channel, membership: ChannelMember | None, kind: Kind) -> None:
    if membership is None:
        raise Forbidden("you are not a member of this channel")
    if (
        channel.kind is ChannelKind.TRIBE
        and membership.role is not ChannelRole.AUTHOR
        and kind not in AUDIENCE_KINDS
    ):
        raise Forbidden("in a tribe only authors post; members read, react and vote")


def may_manage(org_role: Role, membership: ChannelMember | None) -> bool:
    try:
        require_may_manage(org_role, membership)
    except Forbidden:
        return False
    return True
