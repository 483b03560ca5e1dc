"""Channels and their membership, device rosters and sender-key envelopes.

Membership changes bump the channel's *epoch* when someone leaves, so the next
message uses sender keys the departed member never receives, and bump the
*roster* version whenever the set of devices changes, so senders know to
distribute their key to new devices (multi-device) without asking every time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.sender_keys import SenderKeys
from chalicelib.domain.channel import (
    Channel,
    ChannelKind,
    ChannelMember,
    ChannelRole,
    require_may_change_members,
    require_may_create,
    require_may_hold,
    require_may_manage,
)
from chalicelib.domain.direct import channel_id_from_seed, direct_channel_id
from chalicelib.domain.encoding import b64d
from chalicelib.domain.events import ChannelChanged, ChannelLeft, ChannelMembershipChanged
from chalicelib.domain.frames import (
    ChannelFrame,
    DeviceFrame,
    JoinedFrame,
    LeftFrame,
    MembershipFrame,
    RevokedFrame,
    RoleFrame,
    RotatedFrame,
)
from chalicelib.domain.ids import is_follower_id, looks_like
from chalicelib.domain.organisation import Device, Member, Organisation, Role
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import DAY, effective_days
from chalicelib.domain.roster import Epoch, RosterDevice, SealedKey
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, Forbidden, NotFound
from chalicelib.ports import Clock, Store
from chalicelib.services.event_bus import EventBus
from chalicelib.services.membership_log import MembershipLog
from chalicelib.services.organisations import OrganisationService
from chalicelib.services.retries import until_written
from chalicelib.services.shared_groups import SharedGroups

PAGE = 200
MAX_KEYS_PER_CALL = 500
MAX_SEALED_KEY_BYTES = 512
KEY_GRACE_SECONDS = 86400


class MembershipNotifier(Protocol):
    """Told when a channel's membership changes, to update presence and tell online devices."""

    def joined(self, channel_id: str, member_id: str, frame: JoinedFrame) -> None: ...

    def left(self, channel_id: str, member_id: str, frame: LeftFrame) -> None: ...

    def changed(self, channel_id: str, frame: MembershipFrame) -> None: ...


@dataclass(frozen=True)
class ChannelState:
    epoch: int
    roster: int
    seq: int


@dataclass(frozen=True)
class ChannelAccess:
    """A caller's view of one channel: the channel, the caller's membership, and the caller's
    role as the channel's organisation sees it (a partner's member is a plain member there,
    whatever their role at home: 22.6)."""

    channel: Channel
    membership: ChannelMember | None
    org_role: Role


class ChannelService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        orgs: OrganisationService,
        notifier: MembershipNotifier,
        events: EventBus,
        shared: SharedGroups,
    ) -> None:
        self._records = ChannelRecords(store)
        self._log = MembershipLog(store, clock, orgs, shared)
        self._shared = shared
        self._sealed = SenderKeys(store)
        self._clock = clock
        self._orgs = orgs
        self._notifier = notifier
        self._events = events

    # -- lookups ---------------------------------------------------------------------------

    def access(self, who: Principal, channel_id: str, *, member_only: bool = True) -> ChannelAccess:
        """The channel if it is in the caller's organisation, or if the caller is in it and their
        organisation is an active partner of the channel's (22.6); 404 otherwise, so nothing leaks
        and an ended partnership takes effect on the next request."""
        channel = self.find(channel_id)
        if channel is None:
            raise NotFound(f"no channel {channel_id}")
        membership = self.membership(channel_id, who.member_id)
        if channel.org_id != who.org_id:
            if membership is None or self._shared.active(channel.org_id, who.org_id) is None:
                raise NotFound(f"no channel {channel_id}")
            return ChannelAccess(channel, membership, Role.MEMBER)
        if member_only and membership is None and not who.role.is_admin:
            raise Forbidden("you are not a member of this channel")
        return ChannelAccess(channel, membership, who.role)

    def find(self, channel_id: str) -> Channel | None:
        """A channel by id, whoever asks (jobs); None for an unknown or malformed id."""
        return self._records.get(channel_id) if looks_like(channel_id, "c") else None

    def membership(self, channel_id: str, member_id: str) -> ChannelMember | None:
        return self._records.membership(channel_id, member_id)

    def state(self, channel_id: str) -> ChannelState:
        counters = self._records.counters(channel_id)
        return ChannelState(epoch=self.epoch(channel_id).number, roster=counters.roster, seq=counters.seq)

    def member_count(self, channel_id: str) -> int:
        """People in the channel, from a counter kept on join and leave (impact figures)."""
        return self._records.counters(channel_id).members

    def epoch(self, channel_id: str) -> Epoch:
        return self._records.epoch(channel_id)

    def channel_ids_of(self, member_id: str) -> list[str]:
        return self._records.channel_ids_of(member_id)

    def roster_devices(self, channel_id: str) -> Iterator[RosterDevice]:
        """The devices of the channel's members (not revoked), as the roster lists them."""
        return self._records.roster(channel_id)

    def roster_device(self, channel_id: str, device_id: str) -> RosterDevice | None:
        """One device of the channel's roster (a current member's, not revoked), or None."""
        return self._records.roster_device(channel_id, device_id)

    def member_ids(self, channel_id: str) -> Iterator[str]:
        for membership in self._records.members(channel_id):
            yield membership.member_id

    # -- channels ----------------------------------------------------------------------------

    def create(
        self, who: Principal, kind: ChannelKind, name: str, membership: object, id_seed: str | None
    ) -> dict[str, Any]:
        """A channel whose id and creation entry the creator's device made and signed (14). The id
        comes from ``id_seed``: a derived direct id (14.1) is never a group's or a tribe's."""
        require_may_create(kind, who.role)
        entry = self._log.check_creation(who.org_id, membership)
        if entry["kind"] != kind.value or entry["by_device"] != who.device_id:
            raise BadRequest("membership: the creation entry must be the caller's, for this kind")
        if id_seed is None:
            raise BadRequest(
                "id_seed: a new channel's id is made from an id_seed sent with it (docs/protocol.md, "
                "14.1); this client predates it: update it (reload the web app)"
            )
        if entry["channel_id"] != channel_id_from_seed(id_seed):
            raise BadRequest(
                "id_seed: a channel's id is made from the id_seed sent with it (direct "
                "conversations' ids are the pair's, opened with PUT /direct)"
            )
        channel = Channel(
            channel_id=entry["channel_id"],
            org_id=who.org_id,
            kind=kind,
            name=name.strip(),
            created_by=who.member_id,
            created_at=self._clock.now(),
        )
        try:
            self._records.create(channel)
        except ConditionFailed as exc:
            existing = self._records.get(channel.channel_id)
            if existing is None or (existing.org_id, existing.created_by) != (who.org_id, who.member_id):
                raise Conflict("a channel with this id exists; make another id") from exc
            channel = existing  # a retry: converge
        self._log.append_creation(channel.channel_id, entry)
        self._join(channel, who.member_id, ChannelRole.AUTHOR, who.member_id)
        self._events.publish(ChannelChanged(who, channel, "created", None, channel.name, channel.created_at))
        return self._describe(channel, ChannelRole.AUTHOR)

    def open_direct(self, who: Principal, member_id: str, entries: object) -> dict[str, Any]:
        """The caller's direct conversation with ``member_id``: found again, or created with its
        two signed entries (docs/protocol.md, 14.1). Its id is the pair's, so two members opening
        it at once race on one conditional write: the loser finds it, or is told to retry."""
        if member_id == who.member_id:
            raise BadRequest("a direct conversation is with another member")
        peer = self._orgs.member(who.org_id, member_id)  # 404 for another organisation's member
        channel_id = direct_channel_id(who.org_id, who.member_id, member_id)
        found = self._found_direct(who, peer, channel_id)
        if found is not None:
            return found
        require_may_create(ChannelKind.DIRECT, who.role)  # a member opens one with a guest
        if not peer.is_active:
            raise Conflict(f"{peer.display_name} has not activated a device yet, or was removed")
        creation, addition = _direct_entries(entries, channel_id, who, member_id)
        entry = self._log.check_creation(who.org_id, creation)
        first, second = sorted((who.member_id, member_id))
        channel = Channel(
            channel_id=channel_id,
            org_id=who.org_id,
            kind=ChannelKind.DIRECT,
            name="direct",
            created_by=who.member_id,
            created_at=self._clock.now(),
            direct_members=(first, second),
        )
        try:
            self._records.create(channel)
        except ConditionFailed as exc:
            existing = self._records.get(channel_id)
            if existing is None or existing.created_by != who.member_id:
                found = self._found_direct(who, peer, channel_id)
                if found is not None:
                    return found
                raise Conflict("the other member is opening this conversation right now; retry") from exc
            channel = existing  # a retry of the caller's own creation: converge
        self._log.append_creation(channel_id, entry)
        creator = self.membership(channel_id, who.member_id)
        if creator is None:
            self._join(channel, who.member_id, ChannelRole.AUTHOR, who.member_id)
            creator = self.membership(channel_id, who.member_id)
        self._log.append(
            who.org_id, channel_id, ChannelKind.DIRECT.value, [creator] if creator else [], addition
        )
        if self.membership(channel_id, member_id) is None:
            self._join(channel, member_id, ChannelRole.AUTHOR, who.member_id)
        return {**self._describe(channel, ChannelRole.AUTHOR), "created": True}

    def _found_direct(self, who: Principal, peer: Member, channel_id: str) -> dict[str, Any] | None:
        """The direct conversation if it exists, complete: the caller in it, and the other member
        too unless they have left the organisation (a half-done creation is finished instead)."""
        channel = self.find(channel_id)
        if channel is not None and channel.kind is not ChannelKind.DIRECT:
            # Never handed out as the pair's conversation: its members are whoever its author chose.
            raise Conflict(
                f"this pair's direct conversation id is taken by a {channel.kind.value}, "
                "not a direct conversation; an operator must delete that channel"
            )
        membership = self.membership(channel_id, who.member_id) if channel is not None else None
        if channel is None or membership is None or channel.org_id != who.org_id:
            return None
        if peer.is_active and self.membership(channel_id, peer.member_id) is None:
            return None
        return {**self._describe(channel, membership.role), "created": False}

    def rename(self, who: Principal, channel_id: str, name: str) -> dict[str, Any]:
        access = self.access(who, channel_id)
        require_may_manage(access.org_role, access.membership)
        renamed = self._update(channel_id, lambda c: c.model_copy(update={"name": name.strip()}))
        self._notifier.changed(channel_id, ChannelFrame(channel_id=channel_id, name=renamed.name))
        if renamed.name != access.channel.name:
            old = access.channel.name
            self._events.publish(
                ChannelChanged(who, renamed, "renamed", old, renamed.name, self._clock.now())
            )
        return self._describe(renamed, access.membership.role if access.membership else None)

    def _update(self, channel_id: str, change: Callable[[Channel], Channel]) -> Channel:
        """The channel changed on what is stored (a concurrent change is kept, not undone)."""
        updated = until_written(lambda: self._records.update(channel_id, change), "the channel")
        if updated is None:
            raise NotFound("no such channel")
        return updated

    def live_channel_ids(self, who: Principal) -> list[str]:
        """The channels a new WebSocket connection hears: the caller's, a partner's shared group
        only while the partnership lasts (22.6: an end's clean-up may not have reached them yet).
        A membership names the host when it is not the member's organisation, so only those cost
        a read (one per host): a member in their own organisation's channels only costs nothing."""
        found = list(self._records.memberships_of(who.member_id))
        hosts = {m.host_org for m in found if m.host_org is not None and m.host_org != who.org_id}
        ended = {host for host in hosts if not self._shared.may_share(host, who.org_id)}
        return [m.channel_id for m in found if m.host_org not in ended]

    def list_mine(self, who: Principal) -> list[dict[str, Any]]:
        """The caller's channels, a partner's shared groups included while the partnership lasts."""
        result = []
        for membership in self._records.memberships_of(who.member_id):
            channel = self._records.get(membership.channel_id)
            if channel is not None and self._shared.may_share(channel.org_id, who.org_id):
                result.append(self._describe(channel, membership.role))
        return result

    def _describe(self, channel: Channel, role: ChannelRole | None) -> dict[str, Any]:
        state = self.state(channel.channel_id)
        return {
            **channel.public(),
            "my_role": role.value if role else None,
            "epoch": state.epoch,
            "roster": state.roster,
            "latest_seq": state.seq,
        }

    def retention_days(self, channel: Channel, *, read: Organisation | None = None) -> int:
        """The channel's effective retention: the shorter of its own and its organisations'."""
        return effective_days(self.org_retention_days(channel, read=read), channel.retention_days)

    def org_retention_days(self, channel: Channel, *, read: Organisation | None = None) -> int:
        """The shortest setting of the organisations whose members share the channel: its own, and
        each partner that has had a member in it (22.6), read now so either side's change counts.
        ``read``: an organisation the caller read for this request, not read again (a send in a
        channel of the sender's own organisation, with no partner, reads nothing more)."""
        orgs = (channel.org_id, *channel.partner_orgs)
        return min(
            (read if read is not None and read.org_id == org_id else self._orgs.get(org_id)).retention_days
            for org_id in orgs
        )

    def set_retention(self, who: Principal, channel_id: str, days: int | None) -> Channel:
        access = self.access(who, channel_id)
        require_may_manage(access.org_role, access.membership)
        org_days = self.org_retention_days(access.channel)
        if days is not None and days > org_days:
            raise BadRequest(
                f"a channel may keep messages for less time than its organisation ({org_days} days), not more"
            )
        updated = self._update(channel_id, lambda c: c.model_copy(update={"retention_days": days}))
        old = access.channel.retention_days
        if old != days:
            self._events.publish(ChannelChanged(who, updated, "retention", old, days, self._clock.now()))
        return updated

    def org_channel_ids(self, org_id: str, *, after: str | None = None) -> Iterator[str]:
        """The organisation's channels in id order, optionally resuming after one."""
        for channel_id in self._records.org_channel_ids(org_id):
            if after is None or channel_id > after:
                yield channel_id

    # -- membership ------------------------------------------------------------------------

    def add_member(
        self, who: Principal, channel_id: str, member_id: str, role: ChannelRole, membership: object
    ) -> dict[str, Any]:
        """Add a member, or change the role of one already in, with the signed log entry (14)."""
        access = self.access(who, channel_id)
        require_may_change_members(access.channel)
        require_may_manage(access.org_role, access.membership)
        current = self.membership(channel_id, member_id)
        member = self._shared.member(access.channel.org_id, member_id)
        require_may_hold(access.channel, member.role, role)
        if member.org_id != access.channel.org_id:
            self._require_partner_may_join(access.channel, member, role, current)
        if current is None and not member.is_active:
            raise Conflict(f"{member.display_name} has not activated a device yet, or was removed")
        op: Literal["add", "role"] = "role" if current else "add"
        self._append(who, access.channel, membership, op=op, member_id=member_id, role=role)
        changed = ChannelMembershipChanged(who, access.channel, member_id, op, role, self._clock.now())
        if current is not None:
            described = self._set_role(current, role)
            self._events.publish(changed)
            return described
        if self.membership(channel_id, member_id) is None:
            self._join(access.channel, member, role, who.member_id)
        self._events.publish(changed)
        return {"channel_id": channel_id, "member_id": member_id, "role": role.value}

    def _require_partner_may_join(
        self, channel: Channel, member: Member, role: ChannelRole, current: ChannelMember | None
    ) -> None:
        """A partner's member joins a group as a plain member, a tribe only if the host's statement
        allows it, not beside members of another partner their organisation is not partnered with
        (neither side's devices could verify the other's), and not again after an end left them in
        the log (clients would refuse a second ``add`` of someone their replay still holds)."""
        if role is not ChannelRole.MEMBER:
            raise Forbidden("a partner's member is never a channel's author: add them as a member")
        if member.role.is_guest:
            raise Forbidden("a partner's guest stays in their own organisation's channels")
        tribes_open = self._shared.allows_tribes(channel.org_id, member.org_id)
        if channel.kind is ChannelKind.TRIBE and not tribes_open:
            raise Forbidden("your organisation lets no partner's member into its tribes (allow_tribes)")
        strangers = [
            o
            for o in channel.partner_orgs
            if o != member.org_id
            and self._shared.active(channel.org_id, o) is not None
            and self._shared.active(member.org_id, o) is None
        ]
        if strangers:  # their devices could not verify each other: nobody could seal to both
            names = ", ".join(self._orgs.get(o).name for o in strangers)
            raise Conflict(
                f"{member.display_name}'s organisation is not a partner of {names}, whose members "
                "are in this group: create another group"
            )
        if current is None and self._log.still_in(channel.channel_id, member.member_id):
            raise Conflict(
                f"{member.display_name} was in this channel before a partnership ended: "
                "create a new group to talk with them again"
            )

    def _append(
        self,
        who: Principal,
        channel: Channel,
        entry: object,
        *,
        op: str,
        member_id: str,
        role: ChannelRole | None,
    ) -> None:
        """The signed entry must say what the request does, by the calling device."""
        if isinstance(entry, dict) and (
            entry.get("op") != op
            or entry.get("member_id") != member_id
            or entry.get("role") != (role.value if role else None)
            or entry.get("by_device") != who.device_id
        ):
            raise BadRequest(
                f"membership: expected a signed '{op}' entry for {member_id} by the calling device"
            )
        members = list(self._records.members(channel.channel_id))
        self._log.append(channel.org_id, channel.channel_id, channel.kind.value, members, entry)

    def membership_log(self, who: Principal, channel_id: str, start: int, limit: int) -> dict[str, Any]:
        """The channel's signed membership log from ``start`` (members and org admins)."""
        self.access(who, channel_id)
        return self._log.page(channel_id, start, limit)

    def log_members(self, channel_id: str) -> list[str]:
        """The members the channel's membership log names, signers included (trimmed listings,
        16.3: a follower verifies every entry, so needs each of them)."""
        return self._log.named(channel_id)

    def _set_role(self, current: ChannelMember, role: ChannelRole) -> dict[str, Any]:
        channel_id, member_id = current.channel_id, current.member_id
        self._records.save_membership(current.model_copy(update={"role": role}))
        frame = RoleFrame(channel_id=channel_id, member_id=member_id, role=role.value)
        self._notifier.changed(channel_id, frame)
        return {"channel_id": channel_id, "member_id": member_id, "role": role.value}

    def remove_member(
        self, who: Principal, channel_id: str, member_id: str, membership: object
    ) -> dict[str, Any]:
        """Managers remove anyone; anyone may leave. Either way the epoch moves on."""
        access = self.access(who, channel_id)
        require_may_change_members(access.channel)
        if member_id != who.member_id:
            require_may_manage(access.org_role, access.membership)
        current = self.membership(channel_id, member_id)
        if current is None:
            raise NotFound(f"{member_id} is not a member of this channel")
        op = "leave" if member_id == who.member_id else "remove"
        self._append(who, access.channel, membership, op=op, member_id=member_id, role=None)
        self.take_out(channel_id, [current])
        if op == "remove":
            self._events.publish(
                ChannelMembershipChanged(who, access.channel, member_id, "remove", None, self._clock.now())
            )
        state = self.state(channel_id)
        return {"channel_id": channel_id, "member_id": member_id, "removed": True, "epoch": state.epoch}

    def _join(self, channel: Channel, member: Member | str, role: ChannelRole, added_by: str) -> None:
        """``member``: the member (of the channel's organisation when given by id)."""
        channel_id = channel.channel_id
        member_id = member if isinstance(member, str) else member.member_id
        org_id = channel.org_id if isinstance(member, str) else member.org_id
        if org_id not in (channel.org_id, *channel.partner_orgs):  # its retention follows theirs too
            channel = self._update(
                channel_id,
                lambda c: (
                    c
                    if org_id in (c.org_id, *c.partner_orgs)
                    else c.model_copy(update={"partner_orgs": (*c.partner_orgs, org_id)})
                ),
            )
        membership = ChannelMember(
            channel_id=channel_id,
            member_id=member_id,
            role=role,
            added_at=self._clock.now(),
            added_by=added_by,
            host_org=None if org_id == channel.org_id else channel.org_id,
            member_org=None if org_id == channel.org_id else org_id,
        )
        devices = [d for d in self._orgs.devices_of(org_id, member_id) if not d.is_revoked]

        def write() -> None:  # inside the change: a copy kept by version never misses the member
            self._records.save_membership(membership)
            self._records.add_devices(channel_id, devices)

        roster = self._records.change_roster(channel_id, write)
        self._records.count_members(channel_id, 1)
        frame = JoinedFrame(channel_id=channel_id, member_id=member_id, roster=roster)
        self._notifier.joined(channel_id, member_id, frame)

    def take_out(self, channel_id: str, memberships: list[ChannelMember], *, recheck: bool = False) -> None:
        """Remove memberships and their devices, then move the epoch once so new keys exclude
        them all. With ``recheck`` (an end's clean-up, which reads them from the index), those
        already gone (a run cut after their removal) are not counted again, but the channel still
        re-keys and everyone is told; index entries go last, so a cut run is found and finished."""
        if not memberships:
            return
        present = {
            m.member_id
            for m in memberships
            if not recheck or self.membership(channel_id, m.member_id) is not None
        }
        devices = [d.device_id for d in self._records.roster(channel_id) if d.member_id in present]
        if present:
            self._records.change_roster(
                channel_id, lambda: self._records.remove_memberships(channel_id, sorted(present), devices)
            )
            self._records.count_members(channel_id, -len(present))
        epoch = self.rekey(channel_id)
        for membership in memberships:
            member_id = membership.member_id
            frame = LeftFrame(channel_id=channel_id, member_id=member_id, epoch=epoch)
            self._notifier.left(channel_id, member_id, frame)
            self._events.publish(ChannelLeft(channel_id, member_id))
        self._records.forget_shared(memberships)

    # -- followers of a public tribe (docs/protocol.md, 16) ----------------------------------

    def add_follower(self, channel: Channel, device: Device, now: int) -> None:
        """The follower and their one device join the tribe's roster (idempotent: a retry converges).

        Like a member's joining, the roster version moves and online devices are told, so
        senders seal their current key to the new device; nothing sent before is readable.
        Only into a tribe (the join link's): clients refuse a follower anywhere else (16.3)."""
        if channel.kind is not ChannelKind.TRIBE:
            raise Forbidden("followers follow public tribes only")
        channel_id = channel.channel_id
        membership = ChannelMember(
            channel_id=channel_id,
            member_id=device.member_id,
            role=ChannelRole.FOLLOWER,
            added_at=now,
            added_by=device.member_id,
        )

        def write() -> None:  # inside the change, as a member's joining
            self._records.save_membership(membership)
            self._records.add_device(channel_id, device)

        roster = self._records.change_roster(channel_id, write)
        self._records.count_followers(channel_id, 1)
        frame = JoinedFrame(channel_id=channel_id, member_id=device.member_id, roster=roster)
        self._notifier.joined(channel_id, device.member_id, frame)

    def remove_follower(self, channel_id: str, device: Device) -> None:
        """The follower leaves: no epoch change (what they could read was public to any follower),
        and the keys sealed to their device for the current epoch are deleted."""
        roster = self._records.change_roster(
            channel_id,
            lambda: self._records.remove_membership(channel_id, device.member_id, [device.device_id]),
        )
        self._records.count_followers(channel_id, -1)
        self._sealed.forget_recipient(channel_id, self.epoch(channel_id).number, device.device_id)
        self._notifier.changed(channel_id, DeviceFrame(channel_id=channel_id, roster=roster))

    def follower_count(self, channel_id: str) -> int:
        return self._records.counters(channel_id).followers

    def rekey(self, channel_id: str) -> int:
        """Move to a new epoch, strictly after every change made before this call; returns it."""
        epoch = self._records.advance_epoch(channel_id, self._clock.now())
        self._records.bump_roster(channel_id)
        return epoch

    def rotate_keys(self, channel_id: str) -> int:
        """The channel's keys are one retention old: a new epoch, and online devices are told."""
        epoch = self.rekey(channel_id)
        self._notifier.changed(channel_id, RotatedFrame(channel_id=channel_id, epoch=epoch))
        return epoch

    # -- organisation events -------------------------------------------------------------

    def device_registered(self, device: Device) -> None:
        """A member's new device joins the roster of every channel of theirs (multi-device)."""
        for channel_id in self.channel_ids_of(device.member_id):
            roster = self._records.change_roster(
                channel_id, partial(self._records.add_device, channel_id, device)
            )
            self._notifier.changed(channel_id, DeviceFrame(channel_id=channel_id, roster=roster))

    def device_revoked(self, device: Device) -> None:
        """A revoked device leaves every roster, and each channel re-keys without it."""
        for channel_id in self.channel_ids_of(device.member_id):
            self._records.change_roster(
                channel_id, partial(self._records.remove_device, channel_id, device.device_id)
            )
            epoch = self.rekey(channel_id)
            frame = RevokedFrame(channel_id=channel_id, device_id=device.device_id, epoch=epoch)
            self._notifier.changed(channel_id, frame)

    def member_removed(self, member: Member) -> None:
        for membership in list(self._records.memberships_of(member.member_id)):
            self.take_out(membership.channel_id, [membership])

    # -- rosters and sender keys ------------------------------------------------------------

    def roster(self, who: Principal, channel_id: str, cursor: str | None = None) -> dict[str, Any]:
        """A follower sees the tribe's members' devices only: followers do not see each other
        (their names and keys are in their certificates), and seal only to members."""
        self.access(who, channel_id)
        state = self.state(channel_id)  # before the devices: never filed under a newer version
        devices, next_cursor = self._records.roster_page(channel_id, cursor, PAGE)
        if is_follower_id(who.member_id):
            devices = [d for d in devices if not is_follower_id(d.member_id) or d.device_id == who.device_id]
        return {
            "epoch": state.epoch,
            "roster": state.roster,
            "devices": [d.model_dump(mode="json") for d in devices],
            "cursor": next_cursor,
        }

    def members(self, who: Principal, channel_id: str) -> dict[str, Any]:
        """Who is in the channel and with which role (authors post in a tribe)."""
        self.access(who, channel_id)
        members = [
            {"member_id": m.member_id, "role": m.role.value, "added_at": m.added_at}
            for m in self._records.members(channel_id)
        ]
        return {"channel_id": channel_id, "members": members}

    def put_keys(
        self, who: Principal, channel_id: str, epoch: int, sealed: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Store the caller's sender key sealed to each recipient device (once per epoch)."""
        access = self.access(who, channel_id)
        if access.membership is None:
            raise Forbidden("you are not a member of this channel")
        if not 0 < len(sealed) <= MAX_KEYS_PER_CALL:
            raise BadRequest(f"send 1 to {MAX_KEYS_PER_CALL} sealed keys per call")
        state = self.state(channel_id)
        if epoch != state.epoch:
            raise Conflict(f"epoch {epoch} is not the channel's current epoch {state.epoch}")
        checked = [_sealed_key(entry, who.device_id, epoch) for entry in sealed]
        self._require_in_roster(channel_id, {key.recipient_device for key in checked})
        now = self._clock.now()
        expires = now + 2 * self.retention_days(access.channel) * DAY + KEY_GRACE_SECONDS
        stored = self._sealed.put(channel_id, checked, uploaded_at=now, expires_at=expires)
        return {"stored": stored, "epoch": epoch}

    def _require_in_roster(self, channel_id: str, device_ids: set[str]) -> None:
        """A sealed key is for a device of the channel's roster only, so none is stored for a
        stranger's device (one read per recipient: the same order as the writes it guards)."""
        outside = sorted(d for d in device_ids if not self._records.in_roster(channel_id, d))
        if outside:
            shown = ", ".join(outside[:5]) + (" ..." if len(outside) > 5 else "")
            raise BadRequest(f"{len(outside)} recipient device(s) are not in this channel's roster: {shown}")

    def my_keys(self, who: Principal, channel_id: str, epoch: int) -> dict[str, Any]:
        """The sender keys sealed to the caller's device for one epoch."""
        self.access(who, channel_id)
        sealed = self._sealed.sealed_to(channel_id, epoch, who.device_id)
        return {"epoch": epoch, "keys": [k.model_dump(mode="json") for k in sealed]}


def _direct_entries(
    entries: object, channel_id: str, who: Principal, member_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The creation of the pair's channel and the addition of the other member, by the caller."""
    if not (isinstance(entries, list) and len(entries) == 2 and all(isinstance(e, dict) for e in entries)):
        raise BadRequest(
            "membership: the creation and the addition entries are required (docs/protocol.md, 14.1)"
        )
    creation, addition = entries
    if (
        creation.get("channel_id") != channel_id
        or creation.get("kind") != ChannelKind.DIRECT.value
        or creation.get("by_device") != who.device_id
    ):
        raise BadRequest(
            f"membership: expected the caller's creation of the direct conversation {channel_id}"
        )
    if (
        addition.get("op") != "add"
        or addition.get("member_id") != member_id
        or addition.get("role") != "author"
    ):
        raise BadRequest(f"membership: expected the addition of {member_id} as an author")
    return creation, addition


def _sealed_key(entry: dict[str, Any], sender_device: str, epoch: int) -> SealedKey:
    """One uploaded sealed key, checked: a device id and at most MAX_SEALED_KEY_BYTES."""
    recipient, blob = entry.get("recipient_device"), entry.get("sealed")
    if not isinstance(recipient, str) or not looks_like(recipient, "d") or not isinstance(blob, str):
        raise BadRequest("each sealed key needs recipient_device (d_...) and sealed (base64url)")
    try:
        size = len(b64d(blob))
    except ValueError as exc:
        raise BadRequest("sealed must be base64url") from exc
    if size > MAX_SEALED_KEY_BYTES:
        raise BadRequest(f"a sealed key is at most {MAX_SEALED_KEY_BYTES} bytes")
    return SealedKey(sender_device=sender_device, recipient_device=recipient, epoch=epoch, sealed=blob)
