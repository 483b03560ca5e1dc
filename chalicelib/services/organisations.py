"""Organisations and their members: create, list, remove, change roles, revoke devices."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.organisations import OrganisationRecords
from chalicelib.domain.audit import check_audit_days
from chalicelib.domain.billing import pilot_ends_at
from chalicelib.domain.certificates import check_removal, check_revocation, check_role_statement
from chalicelib.domain.events import (
    DeviceAdded,
    DeviceRevoked,
    MemberRemoved,
    OrgSetting,
    OrgSettingChanged,
    RoleChanged,
)
from chalicelib.domain.files import check_photo_side
from chalicelib.domain.ids import looks_like, new_id
from chalicelib.domain.organisation import (
    Device,
    Member,
    MemberStatus,
    Organisation,
    PilotEndChoice,
    Plan,
    Role,
    require_admin,
    require_may_grant,
    require_may_manage,
    require_same_side,
)
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import check_days
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, Forbidden, NotFound
from chalicelib.ports import Clock, Store
from chalicelib.services.event_bus import EventBus
from chalicelib.services.retries import until_written

MAX_PAGE = 200
MEMBER_ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER, Role.GUEST)  # what a role statement may grant
LAST_OWNER = "an organisation keeps at least one owner"


@dataclass(frozen=True)
class MemberPage:
    members: list[Member]
    devices: list[Device]
    cursor: str | None

    def public(self) -> dict[str, Any]:
        return {
            "members": [{**m.public(), **m.statements()} for m in self.members],
            "devices": [{**d.public(), **d.statements()} for d in self.devices],
            "cursor": self.cursor,
        }


class OrganisationService:
    def __init__(self, store: Store, clock: Clock, events: EventBus) -> None:
        self._organisations = OrganisationRecords(store)
        self._members = MemberRecords(store)
        self._clock = clock
        self._events = events

    # -- organisations -------------------------------------------------------------

    def create(self, name: str, plan: Plan) -> Organisation:
        org = Organisation(org_id=new_id("o"), name=name.strip(), plan=plan, created_at=self._clock.now())
        self._organisations.create(org)
        return org

    def set_retention(self, who: Principal, days: int) -> Organisation:
        require_admin(who.role)
        org = self.get(who.org_id)
        updated = org.model_copy(update={"retention_days": check_days(days)})
        self._organisations.save(updated)
        self._setting_changed(who.org_id, who, "retention_days", org.retention_days, updated.retention_days)
        return updated

    def rename(self, who: Principal, name: str) -> Organisation:
        """Admins rename their organisation. The name is for display only: no signed statement
        carries it (docs/protocol.md, 13.1), so a rename touches no certificate or pinned key."""
        require_admin(who.role)
        before = self.get(who.org_id).name
        updated = self._update_org(who.org_id, name=name.strip())
        self._setting_changed(who.org_id, who, "name", before, updated.name)
        return updated

    def set_photo_side(self, who: Principal, side: int) -> Organisation:
        """The longest side of the photos the organisation's devices send (admins): a sobriety
        choice, applied by the devices before encrypting (the server never sees a photo)."""
        require_admin(who.role)
        before = self.get(who.org_id).photo_max_side
        updated = self._update_org(who.org_id, photo_max_side=check_photo_side(side))
        self._setting_changed(who.org_id, who, "photo_max_side", before, updated.photo_max_side)
        return updated

    def set_audit_days(self, who: Principal, days: int) -> Organisation:
        """How long the audit log keeps what is recorded from now on: owners only, since it
        bounds how far back anyone can check what the admins did."""
        if who.role is not Role.OWNER:
            raise Forbidden("only an owner may change how long the audit log is kept")
        before = self.get(who.org_id).audit_days
        updated = self._update_org(who.org_id, audit_days=check_audit_days(days))
        self._setting_changed(who.org_id, who, "audit_days", before, updated.audit_days)
        return updated

    def _setting_changed(
        self, org_id: str, who: Principal | None, setting: OrgSetting, old: str | int, new: str | int
    ) -> None:
        if old != new:
            self._events.publish(OrgSettingChanged(org_id, who, setting, old, new, self._clock.now()))

    def set_pilot_end_choice(self, who: Principal, choice: PilotEndChoice | str) -> Organisation:
        """Admins choose, before their pilot's end, whether it then converts to pro or stops sending."""
        require_admin(who.role)
        try:
            wanted = PilotEndChoice(str(choice))
        except ValueError as exc:
            raise BadRequest("pilot_end_choice must be 'convert' or 'suspend'") from exc
        org = self.get(who.org_id)
        if org.plan is not Plan.PILOT:
            raise Conflict("only a pilot organisation chooses what happens at the end of its pilot")
        ends = pilot_ends_at(org)
        if ends is not None and self._clock.now() >= ends:
            raise Conflict("the pilot has ended: its choice is settled; ask the operator to change the plan")
        updated = self._update_org(who.org_id, pilot_end_choice=wanted)
        self._setting_changed(who.org_id, who, "pilot_end_choice", org.pilot_end_choice.value, wanted.value)
        return updated

    def set_plan(self, org_id: str, plan: Plan, *, started_at: int | None = None) -> Organisation:
        """The operator moves an organisation to another plan, from ``started_at`` (default now).

        Months already invoiced keep their invoices; a pilot's free year restarts from here.
        """
        before = self.get(org_id).plan
        updated = self._update_org(
            org_id, plan=plan, plan_started_at=self._clock.now() if started_at is None else started_at
        )
        self._setting_changed(org_id, None, "plan", before.value, plan.value)
        return updated

    def _update_org(self, org_id: str, **changes: Any) -> Organisation:
        """Change some fields, conditionally on the ones others change still being as read."""
        updated = until_written(lambda: self._organisations.update(org_id, changes), "the organisation")
        if updated is None:
            raise NotFound("no such organisation")
        return updated

    def set_root(self, org_id: str, root: str) -> Organisation:
        """Record the first owner's identity-key fingerprint (a hint: clients pin their own)."""
        return self._update_org(org_id, root=root)

    def any_exists(self) -> bool:
        return self._organisations.any_exists()

    def ids(self) -> Iterator[str]:
        """Every organisation's id, in id order (what the monthly jobs walk)."""
        return self._organisations.ids()

    def get(self, org_id: str) -> Organisation:
        org = self._organisations.get(org_id)
        if org is None:
            raise NotFound("no such organisation")
        return org

    # -- members -----------------------------------------------------------------

    def add_invited_member(self, org_id: str, display_name: str, role: Role) -> Member:
        member = Member(
            org_id=org_id,
            member_id=new_id("m"),
            display_name=display_name,
            role=role,
            status=MemberStatus.INVITED,
            created_at=self._clock.now(),
        )
        if role is Role.OWNER:  # the first owner, at the organisation's creation
            self._start_owner_count(org_id)
        self.save_member(member, if_absent=True)
        if role is Role.OWNER:
            self._members.add_owners(org_id, 1)
        return member

    def member(self, org_id: str, member_id: str) -> Member:
        """A member of this organisation; 404 for anyone else's, so nothing leaks across orgs."""
        member = self._members.get(org_id, member_id) if looks_like(member_id, "m") else None
        if member is None:
            raise NotFound(f"no member {member_id} in this organisation")
        return member

    def list_members(self, who: Principal, *, cursor: str | None = None, limit: int = 100) -> MemberPage:
        """Every active member may list members: they need the public keys of each other's devices."""
        members, devices, next_cursor = self._members.page(
            who.org_id, cursor=cursor, limit=max(1, min(limit, MAX_PAGE))
        )
        return MemberPage(members=members, devices=devices, cursor=next_cursor)

    def devices_of(self, org_id: str, member_id: str) -> list[Device]:
        return self._members.devices_of(org_id, member_id)

    def with_certifiers(self, org_id: str, wanted: list[str], limit: int) -> MemberPage:
        """These members of ``org_id`` (followers left out) and, transitively, the members whose
        devices signed their tickets, roles, removals and revocations, at most ``limit``: what a
        device outside the directory needs to verify them up to the root (docs/protocol.md, 16.3,
        21, 22)."""
        wanted = list(wanted)
        members: dict[str, Member] = {}
        devices: list[Device] = []
        while wanted and len(members) < limit:
            member_id = wanted.pop()
            member = None if member_id in members else self._members.get(org_id, member_id)
            if member is None or member.role.is_follower:
                continue
            members[member_id] = member
            theirs = self.devices_of(org_id, member_id)
            devices += theirs
            wanted += self.signers_of(member.ticket, *member.role_statements, member.removal)
            for device in theirs:
                wanted += self.signers_of(device.ticket, device.revocation)
        return MemberPage(members=list(members.values()), devices=devices, cursor=None)

    def signers_of(self, *statements: dict[str, Any] | None) -> list[str]:
        """The members whose devices signed these statements (``issuer_device`` or ``by_device``)."""
        found = []
        for statement in statements:
            if not statement:
                continue
            device_id = statement.get("issuer_device") or statement.get("by_device")
            device = self.get_device(str(device_id)) if device_id else None
            if device is not None:
                found.append(device.member_id)
        return found

    def history(self, org_id: str) -> tuple[list[Member], list[Device]]:
        """Every member ever (removed ones included) and every device ever (revoked ones included)."""
        return self._members.history(org_id)

    def remove_member(self, who: Principal, member_id: str, statement: object) -> Member:
        """Remove a member, with the admin device's signed removal statement (13.7)."""
        target = self.member(who.org_id, member_id)
        require_may_manage(who.role, target.role)
        if target.member_id == who.member_id:
            raise Forbidden("you cannot remove yourself; ask another admin")
        removed = target
        if target.status is not MemberStatus.REMOVED:
            # A member who never activated has no identity key: withdrawing them needs no statement.
            removal = (
                None
                if target.identity_key is None
                else check_removal(statement, target, self._calling_device(who))
            )
            removed = target.model_copy(
                update={"status": MemberStatus.REMOVED, "removed_at": self._clock.now(), "removal": removal}
            )
            self._save_counting_owners(target, removed)
        # Every step below is idempotent, so a retry after a crash finishes the job.
        self._events.publish(MemberRemoved(removed, by=who))
        for device in self.devices_of(who.org_id, member_id):
            self._revoke(device)
        return removed

    def set_role(self, who: Principal, member_id: str, role: Role, statement: object) -> Member:
        """Change a role (or endorse an e-mail invitee with their role), with a signed statement."""
        target = self.member(who.org_id, member_id)
        require_may_manage(who.role, target.role)
        require_may_grant(who.role, role)
        require_same_side(target.role, role)
        if target.status is MemberStatus.REMOVED:
            raise Conflict("this member has been removed")
        if _is_owner(target) and role is not Role.OWNER and self._start_owner_count(who.org_id) <= 1:
            raise Conflict(LAST_OWNER)  # early and plain; the count taken below is what guards
        if target.member_id == who.member_id:
            raise Forbidden("you cannot change your own role; ask another admin")
        if target.role is role and target.role_statements and statement == target.role_statements[-1]:
            return target  # the same request resent (its answer was lost): already done
        floor = max((int(s["serial"]) for s in target.role_statements), default=0)
        checked = check_role_statement(statement, target, self._calling_device(who), role.value, floor)
        updated = target.model_copy(
            update={"role": role, "role_statements": (*target.role_statements, checked)}
        )
        self._save_counting_owners(target, updated)
        self._events.publish(RoleChanged(who, target, updated, self._clock.now()))
        return updated

    def _calling_device(self, who: Principal) -> Device:
        device = self.get_device(who.device_id)
        if device is None:
            raise NotFound("the calling device is unknown")
        return device

    # -- at least one owner ------------------------------------------------------------
    #
    # No transactions (docs/architecture.md, "The store contract"), so reading the members and
    # then writing a demotion lets two owners demote each other at once. The guard is one
    # counter item: a demotion or removal of an owner takes one off it (atomic ADD) *before* its
    # write and gives it back if that write is refused; a promotion adds one *after* its write.
    # The count may thus lag below the truth (a crash between the two steps), never above it,
    # so the last owner always stays; an organisation created before the count gets it from
    # its members the first time an owner changes.

    def _save_counting_owners(self, before: Member, after: Member) -> None:
        """Write a member's new role or status, keeping the owner count (409 for the last owner)."""
        org_id = before.org_id
        leaving, arriving = (
            _is_owner(before) and not _is_owner(after),
            _is_owner(after) and not _is_owner(before),
        )
        if leaving:
            self._take_owner(org_id)
        elif arriving:
            self._start_owner_count(org_id)
        try:
            self.save_member(after, expected=before)
        except Conflict:  # not written: the owner taken off the count is still one
            if leaving:
                self._members.add_owners(org_id, 1)
            raise
        if arriving:
            self._members.add_owners(org_id, 1)

    def _take_owner(self, org_id: str) -> None:
        self._start_owner_count(org_id)
        if self._members.add_owners(org_id, -1) < 1:
            self._members.add_owners(org_id, 1)
            raise Conflict(LAST_OWNER)

    def _start_owner_count(self, org_id: str) -> int:
        """The counted owners, counting them from the members if there is no count yet."""
        counted = self._members.owner_count(org_id)
        if counted is None:
            members, _ = self._members.history(org_id)
            self._members.start_owner_count(org_id, sum(1 for m in members if _is_owner(m)))
            counted = self._members.owner_count(org_id)
        return counted or 0

    def save_member(self, member: Member, *, if_absent: bool = False, expected: Member | None = None) -> None:
        """Write a member; with ``expected``, only if status and role are still what was read.

        That makes a concurrent removal win over a role change or an activation (409).
        """
        try:
            self._members.save(member, if_absent=if_absent, unchanged_since=expected)
        except ConditionFailed as exc:
            if if_absent:
                raise
            raise Conflict("this member changed meanwhile; reload and retry") from exc

    # -- devices -----------------------------------------------------------------

    def add_device(self, device: Device) -> None:
        self.write_device(device)
        self._events.publish(DeviceAdded(device))

    def write_device(self, device: Device) -> None:
        """Both copies of the device (its own record, the one listed with its member): idempotent,
        so a retried activation converges."""
        self._members.save_device(device)

    def get_device(self, device_id: str) -> Device | None:
        return self._members.device(device_id) if looks_like(device_id, "d") else None

    def revoke_device(self, who: Principal, device_id: str, statement: object) -> Device:
        """Revoke a device, with the signed revocation statement of an admin or the member (13.7)."""
        device = self.get_device(device_id)
        if device is None or device.org_id != who.org_id:
            raise NotFound(f"no device {device_id} in this organisation")
        if device.member_id != who.member_id:
            owner = self.member(who.org_id, device.member_id)
            require_may_manage(who.role, owner.role)
        if device.is_revoked or device.device_cert is None:  # no certificate: nobody trusts it anyway
            return self._revoke(device, by=who)
        return self._revoke(device, check_revocation(statement, device, self._calling_device(who)), by=who)

    def _revoke(
        self, device: Device, revocation: dict[str, Any] | None = None, *, by: Principal | None = None
    ) -> Device:
        if device.is_revoked:
            self.write_device(device)  # converge both copies after a crash between them
            return device
        revoked = device.model_copy(update={"revoked_at": self._clock.now(), "revocation": revocation})
        self.write_device(revoked)
        self._events.publish(DeviceRevoked(revoked, by=by))
        return revoked

    def whoami(self, who: Principal) -> dict[str, Any]:
        org = self.get(who.org_id)
        member = self._members.get(who.org_id, who.member_id)  # a follower's id is no member id
        if member is None:
            raise NotFound("no such member")
        return {
            "org": org.public(),
            "member": member.public(),
            "device_id": who.device_id,
        }


def _is_owner(member: Member) -> bool:
    """Counted as an owner: the role, unless removed (an invited owner counts: they may yet activate)."""
    return member.role is Role.OWNER and member.status is not MemberStatus.REMOVED


def parse_role(value: object, *, allowed: tuple[Role, ...] = MEMBER_ROLES) -> Role:
    try:
        role = Role(str(value))
    except ValueError as exc:
        raise BadRequest(f"role must be one of {', '.join(r.value for r in allowed)}") from exc
    if role not in allowed:
        raise BadRequest(f"role must be one of {', '.join(r.value for r in allowed)}")
    return role
