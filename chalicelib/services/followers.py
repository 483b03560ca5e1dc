"""Public tribes and their followers (docs/protocol.md, section 16).

A tribe's manager publishes it with a multi-use join link: the server keeps the manager
device's signed follower ticket, never its private half, which rides in the link's fragment.
Anyone holding the link activates a device as a **follower**: a display name of their choice,
a certificate signed with the ticket's key, no e-mail or phone number. A follower reads the
tribe, reacts and votes; is never a member (not listed, not billed, no other channel); and
leaves for good, their records deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from chalicelib.adapters.records.join_links import JoinLinkRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.domain.channel import Channel, ChannelKind, require_may_manage
from chalicelib.domain.encoding import b64d
from chalicelib.domain.followers import (
    HistoryChoice,
    JoinLink,
    join_proof_message,
    join_url,
    verify_follower_cert,
    verify_history,
    verify_join_ticket,
)
from chalicelib.domain.ids import device_id_for, follower_id_for, looks_like, new_id
from chalicelib.domain.organisation import Device, Member, MemberStatus, Role
from chalicelib.domain.principal import Principal
from chalicelib.domain.sources import source_tiers
from chalicelib.domain.statements import STATEMENT_CLOCK_SKEW, StatementError
from chalicelib.errors import BadRequest, Conflict, Forbidden, Gone, NotFound, TooManyRequests
from chalicelib.ports import Clock, Store
from chalicelib.services.channels import ChannelService
from chalicelib.services.invitations import Links, public_key_bytes
from chalicelib.services.organisations import MemberPage, OrganisationService

TICKET_CLOCK_SKEW = STATEMENT_CLOCK_SKEW
MAX_CAP = 1_000_000
#: One source address brings at most this fraction of a tribe's hourly cap of new followers.
ADDRESS_SHARE = 10


@dataclass(frozen=True)
class JoinRequest:
    link: str
    sign_public_key: str
    box_public_key: str
    proof: str
    follower_cert: dict[str, Any] | None
    device_name: str = ""


class FollowerService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        orgs: OrganisationService,
        channels: ChannelService,
        *,
        joins_per_hour: int = 2000,
    ) -> None:
        self._joins_per_hour = joins_per_hour
        self._links = JoinLinkRecords(store)
        self._members = MemberRecords(store)
        self._clock = clock
        self._orgs = orgs
        self._channels = channels

    # -- the managers' side -------------------------------------------------------------------

    def publish(
        self, who: Principal, channel_id: str, ticket: object, cap: int | None, links: Links
    ) -> dict[str, Any]:
        """Make a tribe public with a new join link; the previous link, if any, stops working."""
        channel = self._managed_tribe(who, channel_id)
        device = self._orgs.get_device(who.device_id)
        if device is None:
            raise NotFound("the calling device is unknown")
        try:
            checked = verify_join_ticket(
                ticket, org_id=who.org_id, channel_id=channel_id, issuer_sign_key=device.sign_public_key
            )
        except StatementError as exc:
            raise BadRequest(f"ticket: {exc}") from exc
        now = self._clock.now()
        if (
            checked["issuer_device"] != who.device_id
            or abs(int(checked["issued_at"]) - now) > TICKET_CLOCK_SKEW
        ):
            raise BadRequest("ticket: issuer_device must be the calling device and issued_at now")
        if cap is not None and not 1 <= cap <= MAX_CAP:
            raise BadRequest(f"cap must be 1 to {MAX_CAP} followers")
        link = JoinLink(
            link_id=new_id("j"),
            org_id=who.org_id,
            channel_id=channel.channel_id,
            ticket=checked,
            created_by=who.member_id,
            created_at=now,
            cap=cap,
        )
        self._links.save(link)
        return {**self._status(link), "join_url": join_url(links.app_url, links.api_url, link)}

    def status(self, who: Principal, channel_id: str) -> dict[str, Any]:
        self._managed_tribe(who, channel_id)
        return self._status(self._current(channel_id))

    def revoke(self, who: Principal, channel_id: str) -> dict[str, Any]:
        """The link takes no more followers (410); those who joined stay until they leave."""
        self._managed_tribe(who, channel_id)
        link = self._current(channel_id)
        if link.revoked_at is None:
            link = link.model_copy(update={"revoked_at": self._clock.now(), "joined": self._joined(link)})
            self._links.save(link)
        return self._status(link)

    def choose_history(self, who: Principal, channel_id: str, statement: object) -> dict[str, Any]:
        """A manager's signed "last N days" choice for new followers (section 23), signed by the
        calling device; an older one than stored is accepted and ignored (the newest counts)."""
        self._managed_tribe(who, channel_id)
        device = self._orgs.get_device(who.device_id)
        if device is None or device.is_revoked:
            raise NotFound("the calling device is unknown")
        try:
            choice = verify_history(
                statement, org_id=who.org_id, channel_id=channel_id, sign_public_key=device.sign_public_key
            )
        except StatementError as exc:
            raise BadRequest(f"statement: {exc}") from exc
        if choice.by_device != who.device_id:
            raise BadRequest("statement: by_device must be the calling device")
        now = self._clock.now()
        if abs(choice.issued_at - now) > TICKET_CLOCK_SKEW:
            raise BadRequest("statement: issued_at must be now")
        self._links.save_history(choice, now)
        return self._history_answer(channel_id, self._links.history(channel_id) or choice)

    def history(self, who: Principal, channel_id: str) -> dict[str, Any]:
        """The tribe's latest choice, for its members' devices to verify before they seal a
        window of history to a new follower (none: new followers read from joining)."""
        access = self._channels.access(who, channel_id)
        if access.channel.kind is not ChannelKind.TRIBE:
            raise BadRequest("only a tribe can be public")
        return self._history_answer(channel_id, self._links.history(channel_id))

    @staticmethod
    def _history_answer(channel_id: str, choice: HistoryChoice | None) -> dict[str, Any]:
        if choice is None:
            return {"channel_id": channel_id, "days": 0, "statement": None}
        return {"channel_id": channel_id, "days": choice.days, "statement": choice.statement}

    def follower_count(self, org_id: str) -> int:
        """The organisation's followers: shown beside the plan, never billed."""
        return self._links.follower_count(org_id)

    def _managed_tribe(self, who: Principal, channel_id: str) -> Channel:
        access = self._channels.access(who, channel_id)
        require_may_manage(access.org_role, access.membership)
        if access.channel.kind is not ChannelKind.TRIBE:
            raise BadRequest("only a tribe can be public")
        return access.channel

    def _current(self, channel_id: str) -> JoinLink:
        link = self._links.of_channel(channel_id)
        if link is None:
            raise NotFound("this tribe is not public: it has no join link")
        return link

    def _status(self, link: JoinLink) -> dict[str, Any]:
        counted = link.model_copy(update={"joined": self._joined(link)})
        return counted.status(self._channels.follower_count(link.channel_id))

    def _joined(self, link: JoinLink) -> int:
        current = self._links.of_channel(link.channel_id)
        return current.joined if current is not None and current.link_id == link.link_id else link.joined

    # -- the follower's side ---------------------------------------------------------------------

    def join(self, request: JoinRequest, source: str = "") -> dict[str, Any]:
        """A new follower's device, certified by the join link's ticket (section 16.2); ``source``
        is the request's address (API Gateway's ``sourceIp``, or ``bocage serve``'s)."""
        sign_key = public_key_bytes(request.sign_public_key, "sign_public_key")
        public_key_bytes(request.box_public_key, "box_public_key")
        try:
            VerifyKey(sign_key).verify(
                join_proof_message(request.link, request.box_public_key), b64d(request.proof)
            )
        except (BadSignatureError, ValueError) as exc:
            raise BadRequest("proof does not verify with sign_public_key") from exc
        link, channel = self._open_link(request.link)
        try:
            cert = verify_follower_cert(
                request.follower_cert,
                link.ticket,
                sign_public_key=request.sign_public_key,
                box_public_key=request.box_public_key,
            )
        except StatementError as exc:
            raise BadRequest(str(exc)) from exc
        device_id, follower_id = device_id_for(sign_key), follower_id_for(sign_key)
        existing = self._orgs.get_device(device_id)
        if existing is None:
            self._count_join(channel, source)
            self._admit(link, channel, request, cert)
        elif existing.member_id != follower_id or existing.org_id != link.org_id:
            raise Conflict("these device keys are already registered; create a new profile")
        elif self._channels.membership(channel.channel_id, follower_id) is None:
            self._count_join(channel, source)
            self._follow_another(link, channel, existing, cert)
        org = self._orgs.get(link.org_id)
        return {
            "org_id": org.org_id,
            "org_name": org.name,
            "channel_id": channel.channel_id,
            "channel_name": channel.name,
            "follower_id": follower_id,
            "device_id": device_id,
            "display_name": cert["display_name"],
            "role": Role.FOLLOWER.value,
            "root": org.root,
        }

    def _count_join(self, channel: Channel, source: str) -> None:
        """One more new follower of the tribe this hour (a retry of a join is not one): 429
        past the deployment's cap, on top of the per-address limit of ``bocage serve``.

        Each source address has a share of that cap, counted first: whoever holds the poster can
        take no more than ``1 / ADDRESS_SHARE`` of a tribe's hour from one address (an IPv6 /64),
        nor ``SITE_SHARES`` shares from one IPv6 /48, and their refused joins do not count
        against the tribe's cap (nor, refused by their /64, against their /48's)."""
        hour = self._clock.now() // 3600
        share = max(1, self._joins_per_hour // ADDRESS_SHARE)
        for tier in source_tiers(source) if source else ():
            allowed = share * tier.shares
            if allowed >= self._joins_per_hour:  # a share of all of it is no share
                continue
            if self._links.count_source_join(channel.channel_id, hour, tier.block) > allowed:
                whose = "this address" if tier.shares == 1 else f"this address's network ({tier.block})"
                raise TooManyRequests(
                    f"{whose} brought {allowed} new followers to this tribe this hour, its share: "
                    "try again in the next hour"
                )
        if self._links.count_tribe_join(channel.channel_id, hour) > self._joins_per_hour:
            raise TooManyRequests(
                f"this tribe took {self._joins_per_hour} new followers this hour, as many as it "
                "takes: try again in the next hour"
            )

    def _open_link(self, link_id: str) -> tuple[JoinLink, Channel]:
        """The link and its tribe, if it still takes followers: 404 unknown, 410 revoked, expired,
        full or replaced by a newer link."""
        link = self._links.current_for(link_id) if looks_like(link_id, "j") else None
        if link is None:
            raise NotFound("unknown join link")
        channel = self._channels.find(link.channel_id)
        if channel is None:
            raise NotFound("unknown join link")
        if link.link_id != link_id:
            raise Gone("this join link was replaced by a newer one; ask for the new poster")
        refusal = link.refusal(self._clock.now())
        if refusal is not None:
            raise Gone(refusal)
        return link, channel

    def _admit(self, link: JoinLink, channel: Channel, request: JoinRequest, cert: dict[str, Any]) -> None:
        joined = self._links.count_join(link.channel_id, 1)
        if link.cap is not None and joined > link.cap:
            self._links.count_join(link.channel_id, -1)
            raise Gone(f"this join link has reached its cap of {link.cap} followers")
        now = self._clock.now()
        follower = Member(
            org_id=link.org_id,
            member_id=str(cert["follower_id"]),
            display_name=str(cert["display_name"]),
            role=Role.FOLLOWER,
            status=MemberStatus.ACTIVE,
            created_at=now,
            activated_at=now,
        )
        device = Device(
            device_id=str(cert["device_id"]),
            org_id=link.org_id,
            member_id=follower.member_id,
            name=request.device_name.strip()[:120] or "device",
            sign_public_key=request.sign_public_key,
            box_public_key=request.box_public_key,
            created_at=now,
            device_cert=cert,
            ticket=link.ticket,
        )
        self._members.save(follower)
        self._orgs.write_device(device)
        self._channels.add_follower(channel, device, now)
        self._links.count_followers(link.org_id, 1)

    def _follow_another(self, link: JoinLink, channel: Channel, device: Device, cert: dict[str, Any]) -> None:
        """A follower's device joins another public tribe of its organisation: its roster entry
        there carries this tribe's ticket and the certificate signed with it (clients check each
        tribe's followers against that tribe's ticket, 16.3); the follower is counted once."""
        joined = self._links.count_join(link.channel_id, 1)
        if link.cap is not None and joined > link.cap:
            self._links.count_join(link.channel_id, -1)
            raise Gone(f"this join link has reached its cap of {link.cap} followers")
        here = device.model_copy(update={"device_cert": cert, "ticket": link.ticket})
        self._channels.add_follower(channel, here, self._clock.now())

    def leave(self, who: Principal) -> dict[str, Any]:
        """The follower's device, membership and sealed keys are deleted; their next request is 401."""
        if not who.role.is_follower:
            raise Forbidden("only a follower leaves this way; a member is removed by an admin")
        device = self._orgs.get_device(who.device_id)
        follower = self._members.get(who.org_id, who.member_id)
        if device is None or follower is None:
            raise NotFound("this follower is unknown")
        for channel_id in self._channels.channel_ids_of(who.member_id):
            self._channels.remove_follower(channel_id, device)
        self._members.forget(follower, [device])
        self._links.count_followers(who.org_id, -1)
        return {"follower_id": who.member_id, "device_id": who.device_id, "left": True}

    # -- what a follower may see of the organisation --------------------------------------------

    def visible_members(self, who: Principal) -> MemberPage:
        """``GET /members`` for a follower or a guest: no directory, only the members of their
        channels, those who signed those channels' membership logs, and those whose statements
        certify them (up to the root), so their device can verify who posts (docs/protocol.md,
        16.3 and 21)."""
        wanted: list[str] = [who.member_id]
        for channel_id in self._channels.channel_ids_of(who.member_id):
            wanted += self._channels.member_ids(channel_id)
            wanted += self._channels.log_members(channel_id)  # the whole log's, not a first page's
            link = self._links.of_channel(channel_id)
            if link is not None:
                wanted += self._orgs.signers_of({"by_device": link.ticket["issuer_device"]})
        return self._orgs.with_certifiers(who.org_id, wanted, MAX_VISIBLE)


MAX_VISIBLE = 500  # members a follower's listing holds at most: a tribe's authors and their chain
