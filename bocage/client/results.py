"""What the REST API answers, as typed dictionaries.

They stay plain JSON objects at run time (the CLI prints them as they came), while the
SDK's own code and scripts get their keys checked. Answers that only pass through to
the user (plan, invoices, reports) are ``Document``: their shape belongs to the server.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

Document = dict[str, Any]


class Health(TypedDict):
    status: str
    ws_url: str | None


class Invitation(TypedDict):
    """An activation code and link (an invitation, a device link, a new organisation)."""

    activation_code: str
    activation_url: str
    mail_error: NotRequired[str]


class Device(TypedDict):
    device_id: str
    member_id: str
    name: str
    sign_public_key: str
    box_public_key: str
    created_at: int
    revoked_at: NotRequired[int]


class Member(TypedDict):
    member_id: str
    display_name: str
    role: str
    status: str
    created_at: int


class MemberWithDevices(Member):
    devices: list[Device]


class MembersPage(TypedDict):
    members: list[Member]
    devices: list[Device]
    cursor: str | None


class WhoAmI(TypedDict):
    org: Document
    member: Member
    device_id: str


class Channel(TypedDict):
    """A channel as its members see it, with where it stands (epoch, roster version, last seq)."""

    channel_id: str
    kind: str
    name: str
    my_role: str | None
    epoch: int
    roster: int
    latest_seq: int
    direct_members: NotRequired[list[str] | None]  # the server's word: a direct conversation's pair


class ChannelSync(Channel):
    cursor: int
    unread: int


class ChannelList(TypedDict):
    channels: list[ChannelSync]


class RosterDevice(TypedDict):
    """A device senders seal their key to."""

    device_id: str
    member_id: str
    sign_public_key: str
    box_public_key: str


class Roster(TypedDict):
    """Every device of a channel, at key ``epoch``; ``roster`` is the version of that set."""

    epoch: int
    roster: int
    devices: list[RosterDevice]


class RosterPage(Roster):
    cursor: str | None


class SealedKey(TypedDict):
    sender_device: str
    recipient_device: str
    epoch: int
    sealed: str


class SealedKeys(TypedDict):
    epoch: int
    keys: list[SealedKey]


class KeysStored(TypedDict):
    stored: int
    epoch: int


class Receipt(TypedDict):
    """Where a sent message was stored; ``online``: devices it was pushed to at once."""

    message_id: str
    channel_id: str
    seq: int
    expires_at: int
    duplicate: bool
    online: int


class MessagePage(TypedDict):
    """Stored messages as the server keeps them: sealed, with what it stamped."""

    channel_id: str
    messages: list[Document]
    cursor: int
    more: bool


class AuditActor(TypedDict):
    member_id: str  # "operator" for the service operator
    display_name: str | None


class AuditEntry(TypedDict):
    """One recorded administrative action (docs/architecture.md, "The audit log")."""

    entry_id: str
    at: int
    actor: AuditActor
    action: str
    targets: dict[str, str]
    details: dict[str, str | int | bool | None]


class AuditPage(TypedDict):
    entries: list[AuditEntry]
    cursor: str | None
    retention_days: int
    retention: str
