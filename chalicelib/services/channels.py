"""Channels and their membership, device rosters and sender-key envelopes.

Membership changes bump the channel's *epoch* when someone leaves, so the next
message uses sender keys the departed member never receives, and bump the
*roster* version whenever the set of devices changes, so senders know to
distribute their key to new devices (multi-device) without asking every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.channel import (
    Channel,
    ChannelKind,
    ChannelMember,
    ChannelRole,
    require_may_create,
    require_may_manage,
)
from chalicelib.domain.encoding import b64d
from chalicelib.domain.ids import looks_like, new_id
from chalicelib.domain.organisation import Device, Member
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import DAY, effective_days
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, Forbidden, NotFound
from chalicelib.ports import Clock, Item, Store
from chalicelib.services.organisations import OrganisationService

PAGE = 200
MAX_KEYS_PER_CALL = 500
MAX_SEALED_KEY_BYTES = 512
KEY_GRACE_SECONDS = 86400


class MembershipNotifier(Protocol):
    """Told when a channel's membership changes, to update presence and tell online devices."""

    def joined(self, channel_id: str, member_id: str, event: dict[str, Any]) -> None: ...

    def left(self, channel_id: str, member_id: str, event: dict[str, Any]) -> None: ...

    def changed(self, channel_id: str, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Epoch:
    number: int
    started_at: int


@dataclass(frozen=True)
class ChannelState:
    epoch: int
    roster: int
    seq: int


@dataclass(frozen=True)
class ChannelAccess:
    """A caller's view of one channel: the channel, its state and the caller's membership."""

    channel: Channel
    membership: ChannelMember | None


class ChannelService:
    def __init__(
        self, store: Store, clock: Clock, orgs: OrganisationService, notifier: MembershipNotifier
    ) -> None:
        self._store = store
        self._clock = clock
        self._orgs = orgs
        self._notifier = notifier

    # -- lookups ---------------------------------------------------------------------------

    def access(self, who: Principal, channel_id: str, *, member_only: bool = True) -> ChannelAccess:
        """The channel if it is in the caller's organisation (404 otherwise, so nothing leaks)."""
        item = self._store.get(*keys.channel(channel_id)) if looks_like(channel_id, "c") else None
        channel = Channel.model_validate(item) if item else None
        if channel is None or channel.org_id != who.org_id:
            raise NotFound(f"no channel {channel_id}")
        membership = self.membership(channel_id, who.member_id)
        if member_only and membership is None and not who.role.is_admin:
            raise Forbidden("you are not a member of this channel")
        return ChannelAccess(channel, membership)

    def membership(self, channel_id: str, member_id: str) -> ChannelMember | None:
        item = self._store.get(*keys.channel_member(channel_id, member_id))
        return ChannelMember.model_validate(item) if item else None

    def state(self, channel_id: str) -> ChannelState:
        counters = self._store.get(*keys.channel_state(channel_id)) or {}
        return ChannelState(
            epoch=self.epoch(channel_id).number,
            roster=int(counters.get("roster", 0)),
            seq=int(counters.get("seq", 0)),
        )

    def member_count(self, channel_id: str) -> int:
        """People in the channel, from a counter kept on join and leave (impact figures)."""
        return int((self._store.get(*keys.channel_state(channel_id)) or {}).get("members", 0))

    def epoch(self, channel_id: str) -> Epoch:
        item = self._store.get(*keys.channel_epoch(channel_id)) or {}
        return Epoch(number=int(item.get("epoch", 0)), started_at=int(item.get("started_at", 0)))

    def channel_ids_of(self, member_id: str) -> list[str]:
        return [item["channel_id"] for item in self._all(f"MEMBER#{member_id}", keys.CHANNEL_PREFIX)]

    def member_ids(self, channel_id: str) -> Iterator[str]:
        for item in self._all(f"CHAN#{channel_id}", keys.MEMBER_PREFIX):
            yield str(item["member_id"])

    # -- channels ----------------------------------------------------------------------------

    def create(self, who: Principal, kind: ChannelKind, name: str) -> dict[str, Any]:
        require_may_create(kind, who.role)
        now = self._clock.now()
        channel = Channel(
            channel_id=new_id("c"),
            org_id=who.org_id,
            kind=kind,
            name=name.strip(),
            created_by=who.member_id,
            created_at=now,
        )
        self._store.put(
            keys.record(keys.channel(channel.channel_id), channel.model_dump(mode="json")), if_absent=True
        )
        self._store.put(
            keys.record(keys.org_channel(who.org_id, channel.channel_id), {"channel_id": channel.channel_id})
        )
        pk, sk = keys.channel_epoch(channel.channel_id)
        self._store.put({"pk": pk, "sk": sk, "epoch": 0, "started_at": now})
        self._join(channel, who.member_id, ChannelRole.AUTHOR, who.member_id)
        return self._describe(channel, ChannelRole.AUTHOR)

    def rename(self, who: Principal, channel_id: str, name: str) -> dict[str, Any]:
        access = self.access(who, channel_id)
        require_may_manage(who.role, access.membership)
        renamed = access.channel.model_copy(update={"name": name.strip()})
        self._store.put(keys.record(keys.channel(channel_id), renamed.model_dump(mode="json")))
        self._notify(channel_id, {"type": "channel", "channel_id": channel_id, "name": renamed.name})
        return self._describe(renamed, access.membership.role if access.membership else None)

    def list_mine(self, who: Principal) -> list[dict[str, Any]]:
        result = []
        for item in self._all(f"MEMBER#{who.member_id}", keys.CHANNEL_PREFIX):
            channel_item = self._store.get(*keys.channel(item["channel_id"]))
            if channel_item is None:
                continue
            result.append(self._describe(Channel.model_validate(channel_item), ChannelRole(item["role"])))
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

    def retention_days(self, channel: Channel) -> int:
        """The channel's effective retention: the shorter of its own and its organisation's."""
        return effective_days(self._orgs.get(channel.org_id).retention_days, channel.retention_days)

    def set_retention(self, who: Principal, channel_id: str, days: int | None) -> Channel:
        access = self.access(who, channel_id)
        require_may_manage(who.role, access.membership)
        org_days = self._orgs.get(who.org_id).retention_days
        if days is not None and days > org_days:
            raise BadRequest(
                f"a channel may keep messages for less time than its organisation ({org_days} days), not more"
            )
        updated = access.channel.model_copy(update={"retention_days": days})
        self._store.put(keys.record(keys.channel(channel_id), updated.model_dump(mode="json")))
        return updated

    def org_channel_ids(self, org_id: str, *, after: str | None = None) -> Iterator[str]:
        """The organisation's channels in id order, optionally resuming after one."""
        for item in self._all(f"ORG#{org_id}", keys.CHANNEL_PREFIX):
            if after is None or item["channel_id"] > after:
                yield str(item["channel_id"])

    # -- membership ------------------------------------------------------------------------

    def add_member(
        self, who: Principal, channel_id: str, member_id: str, role: ChannelRole
    ) -> dict[str, Any]:
        """Add a member, or change the role of one already in: the same call either way."""
        access = self.access(who, channel_id)
        require_may_manage(who.role, access.membership)
        if self.membership(channel_id, member_id) is not None:
            return self.set_role(who, channel_id, member_id, role)
        member = self._orgs.member(who.org_id, member_id)
        if not member.is_active:
            raise Conflict(f"{member.display_name} has not activated a device yet, or was removed")
        self._join(access.channel, member_id, role, who.member_id)
        return {"channel_id": channel_id, "member_id": member_id, "role": role.value}

    def set_role(self, who: Principal, channel_id: str, member_id: str, role: ChannelRole) -> dict[str, Any]:
        access = self.access(who, channel_id)
        require_may_manage(who.role, access.membership)
        current = self.membership(channel_id, member_id)
        if current is None:
            raise NotFound(f"{member_id} is not a member of this channel")
        updated = current.model_copy(update={"role": role})
        self._save_membership(updated)
        self._notify(
            channel_id, {"type": "role", "channel_id": channel_id, "member_id": member_id, "role": role}
        )
        return {"channel_id": channel_id, "member_id": member_id, "role": role.value}

    def remove_member(self, who: Principal, channel_id: str, member_id: str) -> dict[str, Any]:
        """Managers remove anyone; anyone may leave. Either way the epoch moves on."""
        access = self.access(who, channel_id)
        if member_id != who.member_id:
            require_may_manage(who.role, access.membership)
        if self.membership(channel_id, member_id) is None:
            raise NotFound(f"{member_id} is not a member of this channel")
        self._leave(channel_id, member_id)
        state = self.state(channel_id)
        return {"channel_id": channel_id, "member_id": member_id, "removed": True, "epoch": state.epoch}

    def _join(self, channel: Channel, member_id: str, role: ChannelRole, added_by: str) -> None:
        membership = ChannelMember(
            channel_id=channel.channel_id,
            member_id=member_id,
            role=role,
            added_at=self._clock.now(),
            added_by=added_by,
        )
        self._save_membership(membership)
        devices = [d for d in self._orgs.devices_of(channel.org_id, member_id) if not d.is_revoked]
        self._store.batch_write(puts=[self._roster_item(channel.channel_id, d) for d in devices])
        roster = self._store.increment(*keys.channel_state(channel.channel_id), "roster")
        self._store.increment(*keys.channel_state(channel.channel_id), "members")
        event = {"type": "joined", "channel_id": channel.channel_id, "member_id": member_id, "roster": roster}
        self._notifier.joined(channel.channel_id, member_id, event)

    def _save_membership(self, membership: ChannelMember) -> None:
        fields = membership.model_dump(mode="json")
        self._store.batch_write(
            puts=[
                keys.record(keys.channel_member(membership.channel_id, membership.member_id), fields),
                keys.record(keys.member_channel(membership.member_id, membership.channel_id), fields),
            ]
        )

    def _leave(self, channel_id: str, member_id: str) -> None:
        """Remove membership and devices, then move the epoch so new keys exclude them."""
        devices = [
            item["device_id"] for item in self._roster_items(channel_id) if item["member_id"] == member_id
        ]
        self._store.batch_write(
            deletes=[
                keys.channel_member(channel_id, member_id),
                keys.member_channel(member_id, channel_id),
                *(keys.channel_device(channel_id, d) for d in devices),
            ]
        )
        self._store.increment(*keys.channel_state(channel_id), "members", -1)
        epoch = self.rekey(channel_id, None)
        event = {"type": "left", "channel_id": channel_id, "member_id": member_id, "epoch": epoch}
        self._notifier.left(channel_id, member_id, event)

    def rekey(self, channel_id: str, event: dict[str, Any] | None) -> int:
        """Move to a new epoch, strictly after every change made before this call.

        A lost race is retried from the latest epoch rather than taken as done: the
        winner's bump may predate our roster change.
        """
        pk, sk = keys.channel_epoch(channel_id)
        while True:
            item = self._store.get(pk, sk)
            current = int(item["epoch"]) if item else 0
            condition: dict[str, Any] = {"if_match": {"epoch": current}} if item else {"if_absent": True}
            try:
                self._store.put(
                    {"pk": pk, "sk": sk, "epoch": current + 1, "started_at": self._clock.now()}, **condition
                )
                break
            except ConditionFailed:
                continue
        self._store.increment(*keys.channel_state(channel_id), "roster")
        if event is not None:
            self._notify(channel_id, {**event, "epoch": current + 1})
        return current + 1

    def _notify(self, channel_id: str, event: dict[str, Any]) -> None:
        self._notifier.changed(channel_id, event)

    # -- organisation events -------------------------------------------------------------

    def device_registered(self, device: Device) -> None:
        """A member's new device joins the roster of every channel of theirs (multi-device)."""
        for channel_id in self.channel_ids_of(device.member_id):
            self._store.put(self._roster_item(channel_id, device))
            roster = self._store.increment(*keys.channel_state(channel_id), "roster")
            self._notify(channel_id, {"type": "device", "channel_id": channel_id, "roster": roster})

    def device_revoked(self, device: Device) -> None:
        """A revoked device leaves every roster, and each channel re-keys without it."""
        for channel_id in self.channel_ids_of(device.member_id):
            self._store.delete(*keys.channel_device(channel_id, device.device_id))
            self.rekey(
                channel_id, {"type": "revoked", "channel_id": channel_id, "device_id": device.device_id}
            )

    def member_removed(self, member: Member) -> None:
        for channel_id in self.channel_ids_of(member.member_id):
            self._leave(channel_id, member.member_id)

    # -- rosters and sender keys ------------------------------------------------------------

    def roster(self, who: Principal, channel_id: str, cursor: str | None = None) -> dict[str, Any]:
        self.access(who, channel_id)
        page = self._store.query(f"CHAN#{channel_id}", prefix=keys.ROSTER_PREFIX, cursor=cursor, limit=PAGE)
        state = self.state(channel_id)
        devices = [
            {k: i[k] for k in ("device_id", "member_id", "sign_public_key", "box_public_key")}
            for i in page.items
        ]
        return {"epoch": state.epoch, "roster": state.roster, "devices": devices, "cursor": page.cursor}

    def members(self, who: Principal, channel_id: str) -> dict[str, Any]:
        """Who is in the channel and with which role (authors post in a tribe)."""
        self.access(who, channel_id)
        members = [
            {"member_id": i["member_id"], "role": i["role"], "added_at": i["added_at"]}
            for i in self._all(f"CHAN#{channel_id}", keys.MEMBER_PREFIX)
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
        now = self._clock.now()
        expires = now + 2 * self.retention_days(access.channel) * DAY + KEY_GRACE_SECONDS
        items = []
        for entry in sealed:
            recipient, blob = entry.get("recipient_device"), entry.get("sealed")
            if not isinstance(recipient, str) or not looks_like(recipient, "d") or not isinstance(blob, str):
                raise BadRequest("each sealed key needs recipient_device (d_...) and sealed (base64url)")
            try:
                size = len(b64d(blob))
            except ValueError as exc:
                raise BadRequest("sealed must be base64url") from exc
            if size > MAX_SEALED_KEY_BYTES:
                raise BadRequest(f"a sealed key is at most {MAX_SEALED_KEY_BYTES} bytes")
            pk, sk = keys.sender_key(channel_id, epoch, recipient, who.device_id)
            items.append(
                {
                    "pk": pk,
                    "sk": sk,
                    "recipient_device": recipient,
                    "sender_device": who.device_id,
                    "epoch": epoch,
                    "sealed": blob,
                    "uploaded_at": now,
                    "expires_at": expires,
                }
            )
        self._store.batch_write(puts=items)
        return {"stored": len(items), "epoch": epoch}

    def my_keys(self, who: Principal, channel_id: str, epoch: int) -> dict[str, Any]:
        """The sender keys sealed to the caller's device for one epoch."""
        self.access(who, channel_id)
        items = self._all(f"CHAN#{channel_id}", keys.key_prefix(epoch, who.device_id))
        keys_out = [
            {k: i[k] for k in ("sender_device", "recipient_device", "epoch", "sealed")} for i in items
        ]
        return {"epoch": epoch, "keys": keys_out}

    def _roster_items(self, channel_id: str) -> list[Item]:
        return list(self._all(f"CHAN#{channel_id}", keys.ROSTER_PREFIX))

    def _roster_item(self, channel_id: str, device: Device) -> Item:
        pk, sk = keys.channel_device(channel_id, device.device_id)
        return {
            "pk": pk,
            "sk": sk,
            "device_id": device.device_id,
            "member_id": device.member_id,
            "sign_public_key": device.sign_public_key,
            "box_public_key": device.box_public_key,
        }

    def _all(self, pk: str, prefix: str) -> Iterator[Item]:
        return query_all(self._store, pk, prefix)
