"""The administrators' audit log: domain events in, one entry each out; pages for admins.

It listens on the event bus (``subscribe``), so the services that change the organisation
only state what happened. Each entry costs one put (plus one read of the organisation's audit
period); its id is derived from its content, so a re-published event rewrites it in place.
The entry is written after the change it records: if that write fails, the change stands and
the failure is logged (an error, with the action and ids). Failing the request instead would
not undo the change, and would make its retry fail (a role statement is used once).
Channel changes are recorded when an owner or admin made them: what members do among
themselves in their groups is not the administrators' business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.records.audit import AuditRecords
from chalicelib.domain.audit import Actor, AuditAction, AuditEntry, Detail, entry, expires_at
from chalicelib.domain.events import (
    ChannelChanged,
    ChannelMembershipChanged,
    DeviceRevoked,
    InvitationActivated,
    InvitationIssued,
    MemberRemoved,
    OrgSettingChanged,
    PartnershipChanged,
    RoleChanged,
)
from chalicelib.domain.organisation import require_admin
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import describe
from chalicelib.ports import Store
from chalicelib.request_logging import logger
from chalicelib.services.event_bus import EventBus
from chalicelib.services.organisations import OrganisationService

MAX_PAGE = 200

_SETTING_ACTIONS = {
    "name": AuditAction.RENAMED,
    "retention_days": AuditAction.RETENTION_CHANGED,
    "audit_days": AuditAction.AUDIT_RETENTION_CHANGED,
    "plan": AuditAction.PLAN_CHANGED,
    "pilot_end_choice": AuditAction.PILOT_END_CHOSEN,
    "photo_max_side": AuditAction.PHOTO_SIZE_CHANGED,
}
_CHANNEL_ACTIONS = {
    "created": AuditAction.CHANNEL_CREATED,
    "renamed": AuditAction.CHANNEL_RENAMED,
    "retention": AuditAction.CHANNEL_RETENTION_CHANGED,
}
_MEMBERSHIP_ACTIONS = {
    "add": AuditAction.CHANNEL_MEMBER_ADDED,
    "role": AuditAction.CHANNEL_ROLE_CHANGED,
    "remove": AuditAction.CHANNEL_MEMBER_REMOVED,
}


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    cursor: str | None
    retention_days: int

    def public(self) -> dict[str, Any]:
        return {
            "entries": [e.public() for e in self.entries],
            "cursor": self.cursor,
            "retention_days": self.retention_days,
            "retention": describe(self.retention_days),
        }


class AuditLog:
    def __init__(self, store: Store, orgs: OrganisationService) -> None:
        self._records = AuditRecords(store)
        self._orgs = orgs

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(InvitationIssued, self.invitation_issued)
        bus.subscribe(InvitationActivated, self.invitation_activated)
        bus.subscribe(DeviceRevoked, self.device_revoked)
        bus.subscribe(MemberRemoved, self.member_removed)
        bus.subscribe(RoleChanged, self.role_changed)
        bus.subscribe(OrgSettingChanged, self.setting_changed)
        bus.subscribe(ChannelChanged, self.channel_changed)
        bus.subscribe(ChannelMembershipChanged, self.membership_changed)
        bus.subscribe(PartnershipChanged, self.partnership_changed)

    # -- reading -----------------------------------------------------------------------------

    def page(self, who: Principal, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        """Newest first; owners and admins only."""
        require_admin(who.role)
        entries, next_cursor = self._records.page(
            who.org_id, cursor=cursor, limit=max(1, min(limit, MAX_PAGE))
        )
        return AuditPage(entries, next_cursor, self._orgs.get(who.org_id).audit_days)

    # -- recording ---------------------------------------------------------------------------

    def _record(
        self,
        org_id: str,
        at: int,
        actor: Actor,
        action: AuditAction,
        targets: dict[str, str],
        details: dict[str, Detail] | None = None,
    ) -> None:
        written = entry(org_id, at, actor, action, targets, details)
        try:
            days = self._orgs.get(org_id).audit_days
            self._records.add(written, expires_at=expires_at(at, days))
        except Exception:
            logger.exception(
                "audit entry not written", audit_action=written.action, org_id=org_id, targets=targets
            )

    def invitation_issued(self, event: InvitationIssued) -> None:
        member = event.member
        self._record(
            member.org_id,
            event.at,
            Actor.of(event.by),
            AuditAction.INVITATION_ISSUED,
            {"member_id": member.member_id},
            {
                "name": member.display_name,
                "role": member.role.value,
                "grant": event.grant,
                "emailed": event.emailed,
            },
        )

    def invitation_activated(self, event: InvitationActivated) -> None:
        member, device = event.member, event.device
        self._record(
            member.org_id,
            device.created_at,
            Actor(member_id=member.member_id, display_name=member.display_name),
            AuditAction.DEVICE_LINKED if event.linked else AuditAction.INVITATION_ACTIVATED,
            {"member_id": member.member_id, "device_id": device.device_id},
            {"role": member.role.value, "device_name": device.name},
        )

    def device_revoked(self, event: DeviceRevoked) -> None:
        device = event.device
        if event.by is None or device.revoked_at is None:
            return  # revoked by its member's removal: that removal is the entry
        self._record(
            device.org_id,
            device.revoked_at,
            Actor.of(event.by),
            AuditAction.DEVICE_REVOKED,
            {"member_id": device.member_id, "device_id": device.device_id},
            {"device_name": device.name},
        )

    def member_removed(self, event: MemberRemoved) -> None:
        member = event.member
        if event.by is None:
            return
        self._record(
            member.org_id,
            member.removed_at or 0,
            Actor.of(event.by),
            AuditAction.MEMBER_REMOVED,
            {"member_id": member.member_id},
            {"name": member.display_name, "role": member.role.value},
        )

    def role_changed(self, event: RoleChanged) -> None:
        before, after = event.before, event.after
        self._record(
            after.org_id,
            event.at,
            Actor.of(event.by),
            AuditAction.ROLE_CHANGED,
            {"member_id": after.member_id},
            {"name": after.display_name, "old_role": before.role.value, "new_role": after.role.value},
        )

    def setting_changed(self, event: OrgSettingChanged) -> None:
        self._record(
            event.org_id,
            event.at,
            Actor.of(event.by),
            _SETTING_ACTIONS[event.setting],
            {},
            {"old": event.old, "new": event.new},
        )

    def channel_changed(self, event: ChannelChanged) -> None:
        if not event.by.role.is_admin:
            return
        channel = event.channel
        self._record(
            channel.org_id,
            event.at,
            Actor.of(event.by),
            _CHANNEL_ACTIONS[event.change],
            {"channel_id": channel.channel_id},
            {"name": channel.name, "kind": channel.kind.value, "old": event.old, "new": event.new},
        )

    def membership_changed(self, event: ChannelMembershipChanged) -> None:
        if not event.by.role.is_admin:
            return
        channel = event.channel
        self._record(
            channel.org_id,
            event.at,
            Actor.of(event.by),
            _MEMBERSHIP_ACTIONS[event.op],
            {"channel_id": channel.channel_id, "member_id": event.member_id},
            {"channel_name": channel.name, "role": event.role.value if event.role else None},
        )

    def partnership_changed(self, event: PartnershipChanged) -> None:
        targets = {} if event.partner_org_id is None else {"org_id": event.partner_org_id}
        self._record(event.by.org_id, event.at, Actor.of(event.by), _PARTNER_ACTIONS[event.change], targets)


_PARTNER_ACTIONS = {
    "invited": AuditAction.PARTNER_INVITED,
    "accepted": AuditAction.PARTNER_ACCEPTED,
    "confirmed": AuditAction.PARTNER_CONFIRMED,
    "ended": AuditAction.PARTNER_ENDED,
}
