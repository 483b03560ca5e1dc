"""Response bodies of the REST API, for its OpenAPI description (chalicelib/openapi.py).

Views still return plain dicts (the JSON on the wire is theirs); these models describe them, and
``@endpoint`` names them as strings, so the Lambda never imports this module (cold start).
A field without a default is always sent; one with a default may be left out. Objects stay open
(unknown keys allowed), so a server that adds a field does not break a client checking the spec.
Signed statements and stored records are described as JSON objects: their own shapes are in
docs/protocol.md and chalicelib/domain.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.frames import StoredMessage
from chalicelib.domain.messages_api import SendResult as SendResult  # POST /channels/{c}/messages
from chalicelib.domain.roster import RosterDevice, SealedKey

#: A JSON object whose detail is documented elsewhere (a record, a statement, a figure set).
Obj = dict[str, Any]


class _Answer(BaseModel):
    model_config = ConfigDict(defer_build=True)


class ErrorAnswer(_Answer):
    """Every refusal: a stable code (``not_found``, ``forbidden``...) and a sentence for people."""

    error: str
    message: str


class HealthAnswer(_Answer):
    status: str
    ws_url: str | None


class OrgNameAnswer(_Answer):
    org_id: str
    org_name: str


class InvitationAnswer(_Answer):
    """An activation code for a new member or device; the code is shown once."""

    org_id: str
    member_id: str
    role: str
    activation_code: str
    activation_url: str
    valid_until: int
    emailed: bool
    mail_error: str | None = None


class NewOrgAnswer(InvitationAnswer):
    org: Obj


class ActivationAnswer(_Answer):
    org_id: str
    org_name: str
    member_id: str
    device_id: str
    role: str
    display_name: str
    root: str | None = None


class WhoAmIAnswer(_Answer):
    org: Obj
    member: Obj
    device_id: str


class MemberAnswer(_Answer):
    """A member's record (after a role change or a removal); statements as stored."""

    org_id: str
    member_id: str
    display_name: str
    role: str
    status: str
    created_at: int


class DeviceAnswer(_Answer):
    """A device's record (after a revocation)."""

    device_id: str
    org_id: str
    member_id: str
    name: str
    sign_public_key: str
    box_public_key: str
    created_at: int
    revoked_at: int | None = None


class MembersAnswer(_Answer):
    """Every member and device, with their certificates and statements (docs/protocol.md, 13.9)."""

    members: list[MemberAnswer]
    devices: list[DeviceAnswer]
    cursor: str | None


class ChannelAnswer(_Answer):
    """A channel as its members see it: its record, the caller's role, epoch, roster and head."""

    channel_id: str
    org_id: str
    kind: str
    name: str
    created_by: str
    created_at: int
    retention_days: int | None = None
    my_role: str | None = None
    direct_members: list[str] | None = None  # the two members of a direct conversation
    partner_orgs: list[str] = []  # partner organisations whose members have been in it (22.6)
    epoch: int
    roster: int  # the roster's version: it changes whenever a device joins or leaves
    latest_seq: int


class DirectAnswer(ChannelAnswer):
    """A direct conversation, found again (``created`` false) or just created."""

    direct_members: list[str]
    created: bool


class IceServer(_Answer):
    urls: list[str]
    username: str | None = None  # TURN only: "<expiry>:<member id>"
    credential: str | None = None  # TURN only: HMAC of the username with the TURN server's secret


class CallIceAnswer(_Answer):
    channel_id: str
    ice_servers: list[IceServer]  # as RTCPeerConnection takes them
    relay: bool  # a TURN server is configured: media can always go through it
    expires_at: int  # the TURN credential's expiry (ask again, and restart ICE, after it)


class SeenMember(_Answer):
    member_id: str
    seq: int  # the furthest message any of the member's devices has read


class SeenAnswer(_Answer):
    channel_id: str
    members: list[SeenMember]


class SyncedChannel(ChannelAnswer):
    cursor: int
    unread: int


class ChannelsAnswer(_Answer):
    channels: list[SyncedChannel]


class ChannelRoleAnswer(_Answer):
    channel_id: str
    member_id: str
    role: str


class ChannelLeftAnswer(_Answer):
    channel_id: str
    member_id: str
    removed: bool
    epoch: int


class ChannelMember(_Answer):
    member_id: str
    role: str
    added_at: int


class ChannelMembersAnswer(_Answer):
    channel_id: str
    members: list[ChannelMember]
    notify: list[Obj]  # each member's latest "@mention me only" statement, as posted


class MentionChoiceAnswer(_Answer):
    """The choice as kept (an older statement than the one stored is accepted and ignored)."""

    channel_id: str
    member_id: str
    mentions_only: bool
    issued_at: int


class MembershipLogAnswer(_Answer):
    channel_id: str
    entries: list[Obj]
    head: Obj | None
    more: bool


class RosterAnswer(_Answer):
    epoch: int
    roster: int
    devices: list[RosterDevice]
    cursor: str | None


class KeysStoredAnswer(_Answer):
    stored: int
    epoch: int


class KeysAnswer(_Answer):
    epoch: int
    keys: list[SealedKey]


class MessagesAnswer(_Answer):
    channel_id: str
    messages: list[StoredMessage]
    cursor: int
    more: bool


class OrgRetentionAnswer(_Answer):
    org_id: str
    retention_days: int
    retention: str


class ChannelRetentionAnswer(_Answer):
    channel_id: str
    channel_retention_days: int | None
    org_retention_days: int
    retention_days: int
    retention: str


class AuditActor(_Answer):
    member_id: str  # "operator" for the service's operator
    display_name: str | None = None


class AuditEntryAnswer(_Answer):
    """Who did what, when: ids and small details, never content, codes or keys."""

    entry_id: str
    at: int
    actor: AuditActor
    action: str
    targets: dict[str, str]
    details: dict[str, str | int | bool | None]


class AuditRetentionAnswer(_Answer):
    retention_days: int
    retention: str


class AuditPageAnswer(AuditRetentionAnswer):
    """Newest first; pass ``cursor`` back for older entries (None: no more)."""

    entries: list[AuditEntryAnswer]
    cursor: str | None


class PlanStatusAnswer(_Answer):
    org_id: str
    plan: str
    phase: str
    plan_started_at: int
    price_cents_per_user: int
    pilot_ends_at: int | None = None
    days_left: int | None = None
    pilot_end_choice: str | None = None
    pro_since: int | None = None
    suspended_since: int | None = None
    notice: str | None = None


class PlanAnswer(PlanStatusAnswer):
    month_to_date: Obj | None
    followers: int = 0  # followers of the public tribes: never billed (docs/protocol.md, 16)


class InvoiceAnswer(_Answer):
    org_id: str
    month: str
    status: str
    lines: list[Obj]
    subtotal_cents: int
    vat_cents: int
    total_cents: int
    currency: str
    reference: str | None = None


class InvoicesAnswer(_Answer):
    """This organisation's invoices, newest first."""

    invoices: list[InvoiceAnswer]


class ReportAnswer(_Answer):
    """The pilot report as JSON, or (``format=csv``) as CSV text in ``csv``."""

    format: str | None = None
    csv: str | None = None
    org_id: str | None = None
    months: list[Obj] | None = None
    totals: Obj | None = None


class PublicImpactAnswer(_Answer):
    through: str | None
    trees_planted: int
    donated_cents: int
    messages: int
    notifications: int
    assumptions: Obj


class OrgImpactAnswer(_Answer):
    org_id: str
    months: list[Obj]
    totals: Obj
    assumptions: Obj


class BillingRunAnswer(_Answer):
    month: str
    dry_run: bool
    invoices: list[Obj]
    complete: bool


# -- Web Push ------------------------------------------------------------------------------------


class PushKeyAnswer(_Answer):
    public_key: str | None  # the VAPID key for pushManager.subscribe; null: no Web Push here


class PushSubscriptionAnswer(_Answer):
    device_id: str
    created_at: int


class PushRemovedAnswer(_Answer):
    device_id: str
    removed: bool


# -- public tribes and followers (docs/protocol.md, 16) ------------------------------------------


class JoinLinkAnswer(_Answer):
    """A public tribe's join link as its managers see it, and how many follow the tribe."""

    channel_id: str
    link_id: str
    expires_at: int
    cap: int | None
    joined: int
    revoked: bool
    followers: int
    join_url: str | None = None  # only when published: without the ticket's secret, which the client appends


class HistoryChoiceAnswer(_Answer):
    """A public tribe's latest "last N days" choice (``statement`` null: none, 0 days); clients
    verify the statement's signer, never ``days`` alone."""

    channel_id: str
    days: int
    statement: Obj | None


class JoinAnswer(_Answer):
    org_id: str
    org_name: str
    channel_id: str
    channel_name: str
    follower_id: str
    device_id: str
    display_name: str
    role: str
    root: str | None = None


class QuestionAnswerPart(_Answer):
    by_member: str
    by_device: str
    sealed: str
    answered_at: int
    published_message_id: str | None = None


class QuestionAnswer(_Answer):
    """A question to the town hall as the calling device sees it: its own sealed box only."""

    question_id: str
    channel_id: str
    asker: str
    asker_device: str
    asked_at: int
    expires_at: int
    sealed: str | None
    recipients: list[str]
    answer: QuestionAnswerPart | None


class QuestionsAnswer(_Answer):
    channel_id: str
    questions: list[QuestionAnswer]
    cursor: str | None


class FollowerLeftAnswer(_Answer):
    follower_id: str
    device_id: str
    left: bool


# -- partner organisations (docs/protocol.md, section 22) ---------------------------------------


class PartnerInvitationAnswer(_Answer):
    code: str
    org_id: str
    expires_at: int
    allow_tribes: bool
    url: str  # without the ticket's secret and the root, which the inviting client appends


class PartnerAnswer(_Answer):
    """One partnership as one of its two organisations sees it, every statement as stored."""

    partner_org_id: str
    partner_name: str | None
    status: str  # pending, active, ended
    side: str  # inviter, accepter
    ticket: Obj
    acceptance: Obj
    ours: Obj | None
    theirs: Obj | None
    end: Obj | None
    created_at: int
    ended_at: int | None


class PartnersAnswer(_Answer):
    partners: list[PartnerAnswer]


# -- files (docs/protocol.md, section 18) ------------------------------------------------------


class FileSlotAnswer(_Answer):
    """Where to PUT the encrypted blob (those headers, exactly ``size`` bytes) before ``expires_at``."""

    blob_id: str
    upload_url: str
    method: str
    headers: dict[str, str]
    size: int
    max_size: int
    expires_at: int


class FileAnswer(_Answer):
    blob_id: str
    channel_id: str
    message_id: str | None
    size: int
    expires_at: int


class FileUrlAnswer(FileAnswer):
    """A short-lived URL to GET the encrypted blob from."""

    url: str
    url_expires_at: int


class OrgPhotosAnswer(_Answer):
    org_id: str
    photo_max_side: int


class FileLimitsAnswer(_Answer):
    org_id: str
    max_file_bytes: int
    quota_bytes: int


class FilesUsageAnswer(FileLimitsAnswer):
    """Bytes of encrypted blobs that messages reference now, against the organisation's quota."""

    bytes_in_use: int
