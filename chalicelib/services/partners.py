"""Partner organisations (docs/protocol.md, section 22).

An admin of A signs a partner ticket; its private half travels only in the code. An admin of B
on the same deployment accepts: B's device signs the acceptance (B's root) with the ticket key
and B's own partnership statement (A's root, read from the code). An admin device of A then
countersigns with A's statement, naming the root it checked in the acceptance. The server keeps
the statements and checks what it can (signatures by the calling devices, who may call); the
clients pin a partner's root only through their own organisation's statement.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.records.join_links import JoinLinkRecords
from chalicelib.adapters.records.partners import PartnerRecords
from chalicelib.domain.channel import ChannelKind
from chalicelib.domain.events import PartnerChange, PartnershipChanged, PartnershipEnded
from chalicelib.domain.ids import looks_like, new_id
from chalicelib.domain.organisation import Device, MemberStatus, require_admin
from chalicelib.domain.partners import (
    PartnerInvitation,
    Partnership,
    PartnerStatus,
    partner_url,
    verify_acceptance,
    verify_end,
    verify_partner_ticket,
    verify_partnership,
)
from chalicelib.domain.principal import Principal
from chalicelib.domain.statements import PARTNERSHIP_END, STATEMENT_CLOCK_SKEW, StatementError
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, Forbidden, Gone, NotFound
from chalicelib.ports import Clock, Store
from chalicelib.services.channels import ChannelService
from chalicelib.services.event_bus import EventBus
from chalicelib.services.invitations import Links
from chalicelib.services.organisations import OrganisationService

TICKET_CLOCK_SKEW = STATEMENT_CLOCK_SKEW
MAX_LISTED = 500  # a partner's signers and their chains: a handful in practice


class PartnerService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        orgs: OrganisationService,
        events: EventBus,
        channels: ChannelService,
    ) -> None:
        self._records = PartnerRecords(store)
        self._clock = clock
        self._orgs = orgs
        self._events = events
        self._channels = channels
        self._links = JoinLinkRecords(store)

    # -- the inviting side ---------------------------------------------------------------------

    def invite(self, who: Principal, ticket: object, links: Links) -> dict[str, Any]:
        """A partner invitation from the caller's signed ticket (admins)."""
        device = self._admin_device(who)
        checked = self._checked(
            lambda: verify_partner_ticket(ticket, org_id=who.org_id, issuer_sign_key=device.sign_public_key),
            "ticket",
        )
        now = self._clock.now()
        if (
            checked["issuer_device"] != who.device_id
            or abs(int(checked["issued_at"]) - now) > TICKET_CLOCK_SKEW
        ):
            raise BadRequest("ticket: issuer_device must be the calling device and issued_at now")
        if int(checked["expires_at"]) <= now:
            raise BadRequest("ticket: it has already expired")
        invitation = PartnerInvitation(
            code=new_id("p"), org_id=who.org_id, ticket=checked, created_by=who.member_id, created_at=now
        )
        self._records.save_invitation(invitation)
        self._audit(who, None, "invited")
        return {
            "code": invitation.code,
            "org_id": who.org_id,
            "expires_at": invitation.expires_at,
            "allow_tribes": bool(checked["allow_tribes"]),
            "url": partner_url(links.app_url, links.api_url, invitation),
        }

    def confirm(self, who: Principal, partner_org_id: str, statement: object) -> dict[str, Any]:
        """The inviter's countersignature: its partnership statement makes the partnership active."""
        device = self._admin_device(who)
        partnership = self._of(who, partner_org_id)
        if partnership.status is PartnerStatus.ENDED:
            raise Conflict("this partnership has ended: invite the organisation again")
        if partnership.inviter != who.org_id:
            raise Conflict("the organisation that accepted has signed already; the inviter countersigns")
        checked = self._checked(
            lambda: verify_partnership(
                statement,
                org_id=who.org_id,
                partner_org_id=partner_org_id,
                ticket_key=str(partnership.ticket["ticket_key"]),
                signer_key=device.sign_public_key,
            ),
            "statement",
        )
        self._require_caller(checked, who)
        if checked["partner_root"] != partnership.acceptance["root"]:
            raise BadRequest("statement: partner_root must be the root the acceptance names")
        existing = partnership.statements.get(who.org_id)
        if existing is None:
            statements = {**partnership.statements, who.org_id: checked}
            signed = partnership.model_copy(update={"statements": statements})
            partnership = self._save(signed, partnership)
            self._audit(who, partner_org_id, "confirmed")
        return self._view(who.org_id, partnership)

    # -- the accepting side --------------------------------------------------------------------

    def accept(self, who: Principal, code: str, acceptance: object, statement: object) -> dict[str, Any]:
        """B's admin accepts A's invitation: the acceptance signed with the code's ticket key."""
        device = self._admin_device(who)
        invitation = self._records.invitation(code) if looks_like(code, "p") else None
        if invitation is None:
            raise NotFound("unknown partner invitation")
        if invitation.org_id == who.org_id:
            raise BadRequest("an organisation cannot be its own partner")
        now = self._clock.now()
        if now >= invitation.expires_at:
            raise Gone("this partner invitation has expired; ask for a new one")
        ticket = invitation.ticket
        checked = self._checked(lambda: verify_acceptance(acceptance, ticket, who.org_id), "acceptance")
        self._require_caller(checked, who)
        own = self._checked(
            lambda: verify_partnership(
                statement,
                org_id=who.org_id,
                partner_org_id=invitation.org_id,
                ticket_key=str(ticket["ticket_key"]),
                signer_key=device.sign_public_key,
            ),
            "statement",
        )
        self._require_caller(own, who)
        org = self._orgs.get(who.org_id)
        if org.root is not None and checked["root"] != org.root:
            raise BadRequest("acceptance: root must be your organisation's root")
        existing = self._records.get(invitation.org_id, who.org_id)
        claimed = self._records.claimed_by(code)
        if claimed == who.org_id and existing is not None and existing.acceptance == checked:
            return self._view(who.org_id, existing)  # a retry of this acceptance converges
        if existing is not None and existing.status is not PartnerStatus.ENDED:
            raise Conflict("your organisations are already partners (or about to be)")
        if not self._records.claim(invitation, who.org_id) and not self._claim_unused(
            claimed, who.org_id, existing, ticket
        ):
            raise Gone("this partner invitation was already accepted")
        partnership = Partnership(
            inviter=invitation.org_id,
            accepter=who.org_id,
            ticket=ticket,
            acceptance=checked,
            statements={who.org_id: own},
            created_at=now,
        )
        partnership = self._save(partnership, existing)
        self._audit(who, invitation.org_id, "accepted")
        return self._view(who.org_id, partnership)

    # -- both sides ----------------------------------------------------------------------------

    def listing(self, who: Principal) -> dict[str, Any]:
        """Every member sees the partnerships (their devices verify the partner's members in shared
        groups with them, 22.6); guests and followers get 403."""
        _require_member(who)
        found = sorted(self._records.of_org(who.org_id), key=lambda p: p.created_at)
        return {"partners": [self._view(who.org_id, p) for p in found]}

    def end(self, who: Principal, partner_org_id: str, statement: object) -> dict[str, Any]:
        """Either side's admin ends the partnership with a signed end statement naming its
        invitation (v3): clients then cannot mistake it for the end of a later one (22.7)."""
        device = self._admin_device(who)
        partnership = self._of(who, partner_org_id)
        checked = self._checked(
            lambda: verify_end(
                statement, org_id=who.org_id, partner_org_id=partner_org_id, signer_key=device.sign_public_key
            ),
            "statement",
        )
        self._require_caller(checked, who)
        if checked["purpose"] != PARTNERSHIP_END:
            raise BadRequest(f"statement: sign {PARTNERSHIP_END}, which names the invitation: update the app")
        if checked["ticket_key"] != partnership.ticket["ticket_key"]:
            raise BadRequest(
                "statement: the end names another invitation than this partnership's: list the partners again"
            )
        off = int(checked["issued_at"]) - self._clock.now()
        if abs(off) > TICKET_CLOCK_SKEW:
            # Clients date the end by its signature (section 22.7): a date away from now would
            # take back, or keep, the partner's members' messages of that time.
            raise BadRequest(
                f"statement: dated {abs(off)} s {'ahead of' if off > 0 else 'behind'} this server's clock "
                f"(at most {TICKET_CLOCK_SKEW}): set the device's clock and sign it again"
            )
        if partnership.end is None:
            ended = partnership.model_copy(update={"end": checked, "ended_at": self._clock.now()})
            partnership = self._save(ended, partnership)
            self._audit(who, partner_org_id, "ended")
        ended_at = partnership.ended_at if partnership.ended_at is not None else self._clock.now()
        self._events.publish(PartnershipEnded(who.org_id, partner_org_id, ended_at))  # again on a retry
        return self._view(who.org_id, partnership)

    def partner_members(self, who: Principal, partner_org_id: str) -> dict[str, Any]:
        """The partner's members whose devices signed its side of the partnership (its statement,
        its end, its ticket), with their certifiers up to its root: what our devices verify the
        partner's statements with (docs/protocol.md, 22.5); and the partner's members in the
        caller's channels, theirs or ours, with those who signed those channels' logs (22.6), and
        the signer of the join ticket of the partner's public tribes the caller is in, whose
        followers its devices verify (16.3). No directory."""
        _require_member(who)
        partnership = self._of(who, partner_org_id)
        theirs = [partnership.statements.get(partner_org_id), partnership.end]
        if partnership.inviter == partner_org_id:
            theirs.append(partnership.ticket)
        wanted = self._orgs.signers_of(*theirs)
        for channel_id in self._channels.channel_ids_of(who.member_id):
            channel = self._channels.find(channel_id)
            if channel is not None and channel.org_id in (who.org_id, partner_org_id):
                wanted += self._channels.member_ids(channel_id)
                wanted += self._channels.log_members(channel_id)
            if channel is not None and channel.org_id == partner_org_id and channel.kind is ChannelKind.TRIBE:
                link = self._links.of_channel(channel_id)
                wanted += self._orgs.signers_of(link.ticket if link is not None else None)
        return self._orgs.with_certifiers(partner_org_id, wanted, MAX_LISTED).public()

    def partner_member(self, who: Principal, partner_org_id: str, member_id: str) -> dict[str, Any]:
        """One member of an active partner, with their devices and certifiers up to its root, as
        ``partner_members`` lists them: what a device verifies a partner's contact card with before
        adding that member to a group (docs/protocol.md, 22.6). An unknown member and a partnership
        that is not active answer the same 404, so ids cannot be probed."""
        _require_member(who)
        unknown = NotFound(f"no member {member_id} of an active partner {partner_org_id}")
        try:
            partnership = self._of(who, partner_org_id)
        except NotFound:
            raise unknown from None
        if partnership.status is not PartnerStatus.ACTIVE:
            raise unknown
        try:
            member = self._orgs.member(partner_org_id, member_id)
        except NotFound:
            raise unknown from None
        if member.status is not MemberStatus.ACTIVE or member.role.is_guest or member.role.is_follower:
            raise unknown
        return self._orgs.with_certifiers(partner_org_id, [member_id], MAX_LISTED).public()

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _claim_unused(
        claimed: str | None, accepter: str, existing: Partnership | None, ticket: dict[str, Any]
    ) -> bool:
        """The invitation was claimed by this organisation, but no partnership of it was written
        (the request stopped between the two writes): a retry goes on instead of getting 410."""
        return claimed == accepter and (
            existing is None or existing.ticket.get("ticket_key") != ticket["ticket_key"]
        )

    def _save(self, partnership: Partnership, read: Partnership | None) -> Partnership:
        try:
            return self._records.save(partnership, read)
        except ConditionFailed as exc:
            raise Conflict("this partnership changed meanwhile: list the partners again") from exc

    def _audit(self, who: Principal, partner_org_id: str | None, change: PartnerChange) -> None:
        self._events.publish(PartnershipChanged(who, partner_org_id, change, self._clock.now()))

    def _of(self, who: Principal, partner_org_id: str) -> Partnership:
        """404 unless the caller's organisation is a party (another pair's ids are not shown)."""
        partnership = (
            self._records.get(who.org_id, partner_org_id) if looks_like(partner_org_id, "o") else None
        )
        if partnership is None or who.org_id not in (partnership.inviter, partnership.accepter):
            raise NotFound("no partnership with that organisation")
        return partnership

    def _admin_device(self, who: Principal) -> Device:
        require_admin(who.role)
        device = self._orgs.get_device(who.device_id)
        if device is None:
            raise NotFound("the calling device is unknown")
        return device

    @staticmethod
    def _require_caller(checked: dict[str, Any], who: Principal) -> None:
        if checked["by_device"] != who.device_id:
            raise BadRequest("by_device must be the calling device")

    @staticmethod
    def _checked(check: Any, what: str) -> dict[str, Any]:
        try:
            return dict(check())
        except StatementError as exc:
            raise BadRequest(f"{what}: {exc}") from exc

    def _view(self, org_id: str, partnership: Partnership) -> dict[str, Any]:
        """One partnership as its party ``org_id`` sees it: every statement, as stored."""
        other = partnership.other(org_id)
        try:
            name: str | None = self._orgs.get(other).name
        except NotFound:
            name = None
        return {
            "partner_org_id": other,
            "partner_name": name,
            "status": partnership.status.value,
            "side": "inviter" if partnership.inviter == org_id else "accepter",
            "ticket": partnership.ticket,
            "acceptance": partnership.acceptance,
            "ours": partnership.statements.get(org_id),
            "theirs": partnership.statements.get(other),
            "end": partnership.end,
            "created_at": partnership.created_at,
            "ended_at": partnership.ended_at,
        }


def _require_member(who: Principal) -> None:
    """Members, admins and owners read partnerships; a guest or a follower shares no group with a
    partner (22.6)."""
    if who.role.is_guest or who.role.is_follower:
        raise Forbidden("only the organisation's members see its partners")
