"""Bocage's Chalice app: routes wired to services, nothing more.

Every view is a few lines: ``@endpoint`` authenticates and maps errors
(chalicelib.http_api); the work happens in chalicelib.services.
"""

from __future__ import annotations

import os
from typing import Any

from chalice.app import Chalice, CloudWatchEvent, CORSConfig, Cron, Rate, SQSEvent, WebsocketEvent

from chalicelib import jobs, ws_api
from chalicelib.api_schemas import (
    ActivateBody,
    AnswerBody,
    AskBody,
    AuditRetentionBody,
    BillingRunBody,
    ChannelRoleBody,
    CreateChannelBody,
    CreateOrgBody,
    DirectBody,
    FileLimitsBody,
    FileReferenceBody,
    FileSlotBody,
    HistoryChoiceBody,
    InviteBody,
    JoinBody,
    LinkBody,
    MembershipBody,
    MentionChoiceBody,
    OrgNameBody,
    OrgPhotosBody,
    PartnerAcceptBody,
    PartnerInviteBody,
    PartnerStatementBody,
    PilotEndBody,
    PublishBody,
    PushSubscriptionBody,
    PutKeysBody,
    RenameChannelBody,
    RetentionBody,
    RoleBody,
    StatementBody,
)
from chalicelib.domain.billing import month_of, parse_month
from chalicelib.domain.channel import ChannelKind, ChannelRole
from chalicelib.domain.envelope import Envelope, parse_envelope
from chalicelib.domain.organisation import Role
from chalicelib.domain.retention import describe, parse_duration
from chalicelib.errors import BadRequest, NotFound
from chalicelib.http_api import ApiContext, endpoint, request_scope
from chalicelib.services.followers import JoinRequest
from chalicelib.services.invitations import ActivationRequest
from chalicelib.services.organisations import parse_role

app = Chalice(app_name="bocage")
app.experimental_feature_flags.update(["WEBSOCKETS"])  # Chalice still calls its WebSocket API experimental
# The web app may be served from another origin (CloudFront): requests carry signed headers,
# never cookies, so allowing that origin to call the API exposes nothing of anyone else.
app.api.cors = CORSConfig(
    allow_origin=os.environ.get("BOCAGE_APP_ORIGIN", "*"),
    allow_headers=["Authorization", "Content-Type"],
    expose_headers=["Date"],  # the web app corrects a wrong device clock from it
    max_age=600,
)
app.register_middleware(request_scope, "http")

ROLES_TO_INVITE = (Role.MEMBER, Role.ADMIN, Role.GUEST)
# The SQS queue large tribes fan out through; its name is fixed when the app is packaged.
FANOUT_QUEUE = os.environ.get("BOCAGE_FANOUT_QUEUE", "bocage-fanout")


@app.route("/health", methods=["GET"])
@endpoint("HealthAnswer", auth="none")
def health(ctx: ApiContext) -> dict[str, Any]:
    """Liveness, and where clients open their WebSocket."""
    return {"status": "ok", "ws_url": ctx.container.settings.ws_url}


@app.route("/orgs", methods=["POST"])
@endpoint("NewOrgAnswer", body=CreateOrgBody, auth="operator", status=201)
def create_org(ctx: ApiContext) -> dict[str, Any]:
    body = ctx.body(CreateOrgBody)
    org, invitation = ctx.container.invitations.create_organisation(
        body.name, body.plan, body.owner_name, ctx.links, email=body.owner_email
    )
    return {**invitation.public(), "org": org.public()}


@app.route("/activate", methods=["POST"])
@endpoint("ActivationAnswer", body=ActivateBody, auth="none", status=201)
def activate(ctx: ApiContext) -> dict[str, Any]:
    return ctx.container.invitations.activate(ActivationRequest(**ctx.body(ActivateBody).model_dump()))


@app.route("/me", methods=["GET"])
@endpoint("WhoAmIAnswer", followers=True)
def whoami(ctx: ApiContext) -> dict[str, Any]:
    return ctx.container.orgs.whoami(ctx.principal)


@app.route("/org", methods=["PUT"])
@endpoint("OrgNameAnswer", body=OrgNameBody)
def rename_org(ctx: ApiContext) -> dict[str, Any]:
    org = ctx.container.orgs.rename(ctx.principal, ctx.body(OrgNameBody).name)
    return {"org_id": org.org_id, "org_name": org.name}


@app.route("/org/photos", methods=["PUT"])
@endpoint("OrgPhotosAnswer", body=OrgPhotosBody)
def set_photo_size(ctx: ApiContext) -> dict[str, Any]:
    """The longest side of the photos the organisation's devices send (admins)."""
    org = ctx.container.orgs.set_photo_side(ctx.principal, ctx.body(OrgPhotosBody).max_side)
    return {"org_id": org.org_id, "photo_max_side": org.photo_max_side}


@app.route("/invitations", methods=["POST"])
@endpoint("InvitationAnswer", body=InviteBody, status=201)
def invite(ctx: ApiContext) -> dict[str, Any]:
    body = ctx.body(InviteBody)
    role = parse_role(body.role, allowed=ROLES_TO_INVITE)
    return ctx.container.invitations.invite(
        ctx.principal, body.display_name, role, ctx.links, email=body.email, ticket=body.ticket
    ).public()


@app.route("/devices/link", methods=["POST"])
@endpoint("InvitationAnswer", body=LinkBody, status=201)
def link_device(ctx: ApiContext) -> dict[str, Any]:
    ticket = ctx.body(LinkBody).ticket
    return ctx.container.invitations.link_device(ctx.principal, ctx.links, ticket).public()


@app.route("/members", methods=["GET"])
@endpoint("MembersAnswer", query=("cursor", "limit"), followers=True)
def list_members(ctx: ApiContext) -> dict[str, Any]:
    """Every member and device; to a follower or a guest only the members of their channels and
    their certifiers (no directory)."""
    if ctx.principal.role.is_follower or ctx.principal.role.is_guest:
        return ctx.container.followers.visible_members(ctx.principal).public()
    page = ctx.container.orgs.list_members(
        ctx.principal, cursor=ctx.query_str("cursor"), limit=ctx.query_int("limit", 100)
    )
    return page.public()


@app.route("/members/{member_id}", methods=["DELETE"])
@endpoint("MemberAnswer", body=StatementBody, body_required=False)
def remove_member(ctx: ApiContext, member_id: str) -> dict[str, Any]:
    statement = ctx.optional_body(StatementBody).statement
    return ctx.container.orgs.remove_member(ctx.principal, member_id, statement).public()


@app.route("/members/{member_id}/role", methods=["PUT"])
@endpoint("MemberAnswer", body=RoleBody)
def set_role(ctx: ApiContext, member_id: str) -> dict[str, Any]:
    body = ctx.body(RoleBody)
    return ctx.container.orgs.set_role(
        ctx.principal, member_id, parse_role(body.role), body.statement
    ).public()


@app.route("/devices/{device_id}/revoke", methods=["POST"])
@endpoint("DeviceAnswer", body=StatementBody, body_required=False)
def revoke_device(ctx: ApiContext, device_id: str) -> dict[str, Any]:
    statement = ctx.optional_body(StatementBody).statement
    return ctx.container.orgs.revoke_device(ctx.principal, device_id, statement).public()


# -- Web Push (docs/protocol.md, "Web Push") ----------------------------------------------------


@app.route("/push", methods=["GET"])
@endpoint("PushKeyAnswer", auth="none")
def push_key(ctx: ApiContext) -> dict[str, Any]:
    """The VAPID public key devices subscribe with (null when this server sends no pushes)."""
    return {"public_key": ctx.container.notifications.public_key}


@app.route("/devices/{device_id}/push", methods=["PUT"])
@endpoint("PushSubscriptionAnswer", body=PushSubscriptionBody, followers=True)
def register_push(ctx: ApiContext, device_id: str) -> dict[str, Any]:
    """Register the calling device's push subscription (its own id only)."""
    body = ctx.body(PushSubscriptionBody)
    device_keys = body.keys
    subscription = ctx.container.notifications.register(
        ctx.principal, device_id, body.endpoint, device_keys.p256dh, device_keys.auth, muted=body.muted
    )
    return {"device_id": subscription.device_id, "created_at": subscription.created_at}


@app.route("/devices/{device_id}/push", methods=["DELETE"])
@endpoint("PushRemovedAnswer", followers=True)
def remove_push(ctx: ApiContext, device_id: str) -> dict[str, Any]:
    """Forget the calling device's push subscription."""
    ctx.container.notifications.remove(ctx.principal, device_id)
    return {"device_id": device_id, "removed": True}


# -- channels -----------------------------------------------------------------------------


@app.route("/channels", methods=["POST"])
@endpoint("ChannelAnswer", body=CreateChannelBody, status=201)
def create_channel(ctx: ApiContext) -> dict[str, Any]:
    body = ctx.body(CreateChannelBody)
    return ctx.container.channels.create(
        ctx.principal, ChannelKind(body.kind), body.name, body.membership, body.id_seed
    )


@app.route("/direct/{member_id}", methods=["PUT"])
@endpoint("DirectAnswer", body=DirectBody)
def open_direct(ctx: ApiContext, member_id: str) -> dict[str, Any]:
    """The caller's one-to-one conversation with a member: found again, or created."""
    return ctx.container.channels.open_direct(ctx.principal, member_id, ctx.body(DirectBody).membership)


@app.route("/channels", methods=["GET"])
@endpoint("ChannelsAnswer", followers=True)
def list_channels(ctx: ApiContext) -> dict[str, Any]:
    return ctx.container.messaging.sync(ctx.principal)


@app.route("/channels/{channel_id}", methods=["PUT"])
@endpoint("ChannelAnswer", body=RenameChannelBody)
def rename_channel(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    return ctx.container.channels.rename(ctx.principal, channel_id, ctx.body(RenameChannelBody).name)


@app.route("/channels/{channel_id}/members/{member_id}", methods=["PUT"])
@endpoint("ChannelRoleAnswer", body=ChannelRoleBody)
def add_channel_member(ctx: ApiContext, channel_id: str, member_id: str) -> dict[str, Any]:
    body = ctx.body(ChannelRoleBody)
    return ctx.container.channels.add_member(
        ctx.principal, channel_id, member_id, ChannelRole(body.role), body.membership
    )


@app.route("/channels/{channel_id}/members/{member_id}", methods=["DELETE"])
@endpoint("ChannelLeftAnswer", body=MembershipBody, body_required=False)
def remove_channel_member(ctx: ApiContext, channel_id: str, member_id: str) -> dict[str, Any]:
    membership = ctx.optional_body(MembershipBody).membership
    return ctx.container.channels.remove_member(ctx.principal, channel_id, member_id, membership)


@app.route("/channels/{channel_id}/members", methods=["GET"])
@endpoint("ChannelMembersAnswer")
def channel_members(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """Who is in the channel, with each member's latest "@mention me only" statement."""
    return ctx.container.mention_choices.members(ctx.principal, channel_id)


@app.route("/channels/{channel_id}/notify", methods=["PUT"])
@endpoint("MentionChoiceAnswer", body=MentionChoiceBody)
def choose_mentions_only(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """The caller's "mentions only" (or "all") choice here, signed by the calling device."""
    body = ctx.body(MentionChoiceBody)
    choice = ctx.container.mention_choices.choose(ctx.principal, channel_id, body.statement)
    return choice.model_dump(mode="json", exclude={"statement"})


@app.route("/channels/{channel_id}/membership", methods=["GET"])
@endpoint("MembershipLogAnswer", query=("from", "limit"), followers=True)
def membership_log(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    return ctx.container.channels.membership_log(
        ctx.principal, channel_id, ctx.query_int("from", 0), ctx.query_int("limit", 500)
    )


@app.route("/channels/{channel_id}/roster", methods=["GET"])
@endpoint("RosterAnswer", query=("cursor",), followers=True)
def channel_roster(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    return ctx.container.channels.roster(ctx.principal, channel_id, ctx.query_str("cursor"))


@app.route("/channels/{channel_id}/keys", methods=["PUT"])
@endpoint("KeysStoredAnswer", body=PutKeysBody, followers=True)
def put_sender_keys(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    body = ctx.body(PutKeysBody)
    sealed = [k.model_dump() for k in body.keys]
    return ctx.container.channels.put_keys(ctx.principal, channel_id, body.epoch, sealed)


@app.route("/channels/{channel_id}/keys", methods=["GET"])
@endpoint("KeysAnswer", query=("epoch",), followers=True)
def my_sender_keys(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    return ctx.container.channels.my_keys(ctx.principal, channel_id, ctx.query_int("epoch", 0))


@app.route("/channels/{channel_id}/messages", methods=["POST"])
@endpoint("SendResult", body=Envelope, status=201, query=("notify",), followers=True)
def send_message(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """``?notify=m_…,m_…``: the mentioned members in "mentions only" mode (never stored)."""
    envelope = parse_envelope(ctx.json())
    if envelope.channel_id != channel_id:
        raise BadRequest("the envelope's channel_id differs from the URL's")
    notify = ctx.query_str("notify")
    named = None if notify is None else notify.split(",")
    return ctx.container.messaging.send(ctx.principal, envelope, named).public()


@app.route("/channels/{channel_id}/calls/ice", methods=["GET"])
@endpoint("CallIceAnswer")
def call_ice(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """STUN and short-lived TURN credentials for a call in this channel (pro plan, members)."""
    return ctx.container.calls.ice(ctx.principal, channel_id)


@app.route("/channels/{channel_id}/seen", methods=["GET"])
@endpoint("SeenAnswer")
def seen_by(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """How far each member has read ("vu par N / M"), from the read cursors already kept."""
    return ctx.container.messaging.seen(ctx.principal, channel_id)


@app.route("/channels/{channel_id}/messages", methods=["GET"])
@endpoint("MessagesAnswer", query=("since", "limit"), followers=True)
def read_messages(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    since, limit = ctx.query_int("since", 0), ctx.query_int("limit", 100)
    return ctx.container.messaging.read(ctx.principal, channel_id, since=since, limit=limit).public()


# -- public tribes and followers (docs/protocol.md, 16) --------------------------------------


@app.route("/channels/{channel_id}/public", methods=["PUT"])
@endpoint("JoinLinkAnswer", body=PublishBody)
def publish_tribe(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """Make a tribe public with a new multi-use join link (managers); the previous one stops."""
    body = ctx.body(PublishBody)
    return ctx.container.followers.publish(ctx.principal, channel_id, body.ticket, body.cap, ctx.links)


@app.route("/channels/{channel_id}/public", methods=["GET"])
@endpoint("JoinLinkAnswer")
def join_link_status(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """The tribe's join link and its follower count (managers)."""
    return ctx.container.followers.status(ctx.principal, channel_id)


@app.route("/channels/{channel_id}/public", methods=["DELETE"])
@endpoint("JoinLinkAnswer")
def revoke_join_link(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """Revoke the tribe's join link (managers): it answers 410; followers stay."""
    return ctx.container.followers.revoke(ctx.principal, channel_id)


@app.route("/channels/{channel_id}/history", methods=["PUT"])
@endpoint("HistoryChoiceAnswer", body=HistoryChoiceBody)
def choose_recent_history(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """How many days of the tribe new followers may read (managers; signed by the calling device)."""
    statement = ctx.body(HistoryChoiceBody).statement
    return ctx.container.followers.choose_history(ctx.principal, channel_id, statement)


@app.route("/channels/{channel_id}/history", methods=["GET"])
@endpoint("HistoryChoiceAnswer")
def recent_history(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """The tribe's latest signed "last N days" choice, for its members' devices to verify."""
    return ctx.container.followers.history(ctx.principal, channel_id)


@app.route("/join", methods=["POST"])
@endpoint("JoinAnswer", body=JoinBody, auth="none", status=201)
def join(ctx: ApiContext) -> dict[str, Any]:
    """A new follower's device, certified by a join link's ticket (no token)."""
    return ctx.container.followers.join(JoinRequest(**ctx.body(JoinBody).model_dump()), ctx.source_ip)


@app.route("/follower", methods=["DELETE"])
@endpoint("FollowerLeftAnswer", followers=True)
def leave_as_follower(ctx: ApiContext) -> dict[str, Any]:
    """The calling follower leaves: their device, membership and sealed keys are deleted."""
    return ctx.container.followers.leave(ctx.principal)


# -- questions to the town hall (docs/protocol.md, section 20) --------------------------------


@app.route("/channels/{channel_id}/questions", methods=["POST"])
@endpoint("QuestionAnswer", body=AskBody, status=201, followers=True)
def ask_question(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """A follower's private question, sealed for the tribe's managers' devices."""
    body = ctx.body(AskBody)
    return ctx.container.questions.ask(ctx.principal, channel_id, body.question_id, body.sealed)


@app.route("/channels/{channel_id}/questions", methods=["GET"])
@endpoint("QuestionsAnswer", query=("cursor",), followers=True)
def list_questions(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """The tribe's questions (managers), or the calling follower's own."""
    return ctx.container.questions.list(ctx.principal, channel_id, ctx.query_str("cursor"))


@app.route("/channels/{channel_id}/questions/{question_id}/answer", methods=["PUT"])
@endpoint("QuestionAnswer", body=AnswerBody)
def answer_question(ctx: ApiContext, channel_id: str, question_id: str) -> dict[str, Any]:
    """A manager's answer, sealed to the asker's device (and published in the tribe, if chosen)."""
    body = ctx.body(AnswerBody)
    return ctx.container.questions.answer(
        ctx.principal, channel_id, question_id, body.sealed, body.published_message_id
    )


# -- partner organisations (docs/protocol.md, section 22) ------------------------------------


@app.route("/partners/invitations", methods=["POST"])
@endpoint("PartnerInvitationAnswer", body=PartnerInviteBody, status=201)
def invite_partner(ctx: ApiContext) -> dict[str, Any]:
    """A partner invitation from the admin device's signed ticket (its secret stays in the code)."""
    return ctx.container.partners.invite(ctx.principal, ctx.body(PartnerInviteBody).ticket, ctx.links)


@app.route("/partners/accept", methods=["POST"])
@endpoint("PartnerAnswer", body=PartnerAcceptBody, status=201)
def accept_partner(ctx: ApiContext) -> dict[str, Any]:
    """Another organisation's admin accepts: an acceptance signed with the code's ticket key."""
    body = ctx.body(PartnerAcceptBody)
    return ctx.container.partners.accept(ctx.principal, body.code, body.acceptance, body.statement)


@app.route("/partners", methods=["GET"])
@endpoint("PartnersAnswer")
def list_partners(ctx: ApiContext) -> dict[str, Any]:
    """The organisation's partnerships, pending, active and ended (members; not guests)."""
    return ctx.container.partners.listing(ctx.principal)


@app.route("/partners/{org_id}/members", methods=["GET"])
@endpoint("MembersAnswer")
def partner_members(ctx: ApiContext, org_id: str) -> dict[str, Any]:
    """The partner's signers, its members in the caller's shared groups, and their certifiers up
    to its root (members; no directory)."""
    return ctx.container.partners.partner_members(ctx.principal, org_id)


@app.route("/partners/{org_id}/members/{member_id}", methods=["GET"])
@endpoint("MembersAnswer")
def partner_member(ctx: ApiContext, org_id: str, member_id: str) -> dict[str, Any]:
    """One member of an active partner and their certifiers up to its root: what a partner's
    contact card is checked against before adding them to a group (members; no directory)."""
    return ctx.container.partners.partner_member(ctx.principal, org_id, member_id)


@app.route("/partners/{org_id}", methods=["PUT"])
@endpoint("PartnerAnswer", body=PartnerStatementBody)
def confirm_partner(ctx: ApiContext, org_id: str) -> dict[str, Any]:
    """The inviter's countersignature: its partnership statement pins the accepter's root."""
    statement = ctx.body(PartnerStatementBody).statement
    return ctx.container.partners.confirm(ctx.principal, org_id, statement)


@app.route("/partners/{org_id}", methods=["DELETE"])
@endpoint("PartnerAnswer", body=PartnerStatementBody)
def end_partner(ctx: ApiContext, org_id: str) -> dict[str, Any]:
    """Either side ends the partnership with a signed end statement."""
    return ctx.container.partners.end(ctx.principal, org_id, ctx.body(PartnerStatementBody).statement)


# -- files (docs/protocol.md, section 18) ----------------------------------------------------


@app.route("/channels/{channel_id}/files", methods=["POST"])
@endpoint("FileSlotAnswer", body=FileSlotBody, status=201)
def new_file_slot(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    """An upload URL for one encrypted file blob of this channel."""
    return ctx.container.files.new_slot(ctx.principal, channel_id, ctx.body(FileSlotBody).size)


@app.route("/channels/{channel_id}/files/{blob_id}", methods=["PUT"])
@endpoint("FileAnswer", body=FileReferenceBody)
def reference_file(ctx: ApiContext, channel_id: str, blob_id: str) -> dict[str, Any]:
    """Bind an uploaded blob to the uploader's message: it lives exactly as long."""
    message_id = ctx.body(FileReferenceBody).message_id
    return ctx.container.files.reference(ctx.principal, channel_id, blob_id, message_id)


@app.route("/channels/{channel_id}/files/{blob_id}", methods=["GET"])
@endpoint("FileUrlAnswer", followers=True)
def download_file(ctx: ApiContext, channel_id: str, blob_id: str) -> dict[str, Any]:
    """A short-lived URL to fetch a referenced blob, for a current member of the channel."""
    return ctx.container.files.download(ctx.principal, channel_id, blob_id)


@app.route("/files/usage", methods=["GET"])
@endpoint("FilesUsageAnswer")
def files_usage(ctx: ApiContext) -> dict[str, Any]:
    """The organisation's file storage in use and its limits (owners and admins)."""
    return ctx.container.files.usage(ctx.principal)


@app.route("/orgs/{org_id}/files", methods=["PUT"])
@endpoint("FileLimitsAnswer", body=FileLimitsBody, auth="operator")
def set_file_limits(ctx: ApiContext, org_id: str) -> dict[str, Any]:
    """The operator sets an organisation's file limits (null: its plan's)."""
    body = ctx.body(FileLimitsBody)
    return ctx.container.files.set_limits(org_id, body.max_file_bytes, body.quota_bytes)


# -- retention ------------------------------------------------------------------------------


@app.route("/retention", methods=["GET"])
@endpoint("OrgRetentionAnswer")
def show_retention(ctx: ApiContext) -> dict[str, Any]:
    return ctx.container.retention.show_org(ctx.principal)


@app.route("/retention", methods=["PUT"])
@endpoint("OrgRetentionAnswer", body=RetentionBody)
def set_retention(ctx: ApiContext) -> dict[str, Any]:
    duration = ctx.body(RetentionBody).duration
    if duration is None:
        raise BadRequest("an organisation's retention needs a duration such as 90d, 3m or 1y")
    return ctx.container.retention.set_org(ctx.principal, parse_duration(duration))


@app.route("/channels/{channel_id}/retention", methods=["GET"])
@endpoint("ChannelRetentionAnswer")
def show_channel_retention(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    return ctx.container.retention.show_channel(ctx.principal, channel_id)


@app.route("/channels/{channel_id}/retention", methods=["PUT"])
@endpoint("ChannelRetentionAnswer", body=RetentionBody)
def set_channel_retention(ctx: ApiContext, channel_id: str) -> dict[str, Any]:
    duration = ctx.body(RetentionBody).duration
    days = None if duration is None else parse_duration(duration)
    return ctx.container.retention.set_channel(ctx.principal, channel_id, days)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def retention_jobs(event: CloudWatchEvent) -> None:
    """Make storage follow retention changes, four minutes of work at a time."""
    jobs.run_retention(budget_seconds=240)


# -- the administrators' audit log -----------------------------------------------------------


@app.route("/audit", methods=["GET"])
@endpoint("AuditPageAnswer", query=("cursor", "limit"))
def audit_log(ctx: ApiContext) -> dict[str, Any]:
    """Newest first, owners and admins only."""
    page = ctx.container.audit.page(
        ctx.principal, cursor=ctx.query_str("cursor"), limit=ctx.query_int("limit", 50)
    )
    return page.public()


@app.route("/audit/retention", methods=["PUT"])
@endpoint("AuditRetentionAnswer", body=AuditRetentionBody)
def set_audit_retention(ctx: ApiContext) -> dict[str, Any]:
    days = parse_duration(ctx.body(AuditRetentionBody).duration)
    org = ctx.container.orgs.set_audit_days(ctx.principal, days)
    return {"retention_days": org.audit_days, "retention": describe(org.audit_days)}


# -- plans, billing and impact ---------------------------------------------------------------


@app.route("/plan", methods=["GET"])
@endpoint("PlanAnswer")
def show_plan(ctx: ApiContext) -> dict[str, Any]:
    """The plan, its dates, and this month's estimate to date (admins)."""
    org_id = ctx.admin().org_id
    estimate = ctx.container.billing.estimate(org_id)
    return {
        **ctx.container.billing.plan_status(org_id),
        "month_to_date": estimate.public() if estimate else None,
        "followers": ctx.container.followers.follower_count(org_id),
    }


@app.route("/plan/pilot-end", methods=["PUT"])
@endpoint("PlanStatusAnswer", body=PilotEndBody)
def choose_pilot_end(ctx: ApiContext) -> dict[str, Any]:
    org = ctx.container.orgs.set_pilot_end_choice(ctx.principal, ctx.body(PilotEndBody).choice)
    return ctx.container.billing.plan_status(org)


@app.route("/invoices", methods=["GET"])
@endpoint("InvoicesAnswer")
def list_invoices(ctx: ApiContext) -> dict[str, Any]:
    return {"invoices": [i.public() for i in ctx.container.billing.invoices_of(ctx.admin().org_id)]}


@app.route("/invoices/{month}", methods=["GET"])
@endpoint("InvoiceAnswer")
def show_invoice(ctx: ApiContext, month: str) -> dict[str, Any]:
    invoice = ctx.container.billing.invoice(ctx.admin().org_id, parse_month(month))
    if invoice is None:
        raise NotFound(f"no invoice for {month}")
    return invoice.public()


@app.route("/report", methods=["GET"])
@endpoint("ReportAnswer", query=("format",))
def pilot_report(ctx: ApiContext) -> dict[str, Any]:
    org_id = ctx.admin().org_id
    if ctx.query_str("format") == "csv":
        return {"format": "csv", "csv": ctx.container.impact.pilot_report_csv(org_id)}
    return ctx.container.impact.pilot_report(org_id)


@app.route("/impact", methods=["GET"])
@endpoint("PublicImpactAnswer", auth="none")
def public_impact(ctx: ApiContext) -> dict[str, Any]:
    """Trees planted and CO2e avoided, for everyone: no organisation's detail."""
    return ctx.container.impact.public_impact()


@app.route("/impact/org", methods=["GET"])
@endpoint("OrgImpactAnswer")
def org_impact(ctx: ApiContext) -> dict[str, Any]:
    return ctx.container.impact.org_impact(ctx.admin().org_id)


@app.route("/billing/run", methods=["POST"])
@endpoint("BillingRunAnswer", body=BillingRunBody, auth="operator")
def billing_run(ctx: ApiContext) -> dict[str, Any]:
    body = ctx.body(BillingRunBody)
    billing = ctx.container.billing
    if body.month is None and not body.dry_run:
        return billing.run_previous_month().public()
    month = body.month or month_of(ctx.container.clock.now())
    return billing.run_month(month, dry_run=body.dry_run).public()


@app.schedule(Cron(0, 2, 1, "*", "?", "*"))
def billing_monthly(event: CloudWatchEvent) -> None:
    """02:00 UTC on the 1st: bill the month that just ended (reruns are no-ops)."""
    jobs.run_billing(budget_seconds=780)


# -- WebSocket API and fan-out queue ----------------------------------------------------------


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> dict[str, Any]:
    return ws_api.on_connect(event.to_dict())


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> dict[str, Any]:
    return ws_api.on_message(event.to_dict())


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> dict[str, Any]:
    return ws_api.on_disconnect(event.to_dict())


@app.on_sqs_message(queue=FANOUT_QUEUE, batch_size=10)
def fanout(event: SQSEvent) -> None:
    ws_api.on_fanout([record.body for record in event])
