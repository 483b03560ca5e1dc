"""A channel's items: the channel, its place in the organisation, membership both ways, the
device roster, the key epoch, the state counters and the retention floor.

Membership is written twice (under the channel and under the member) so both "who is in
this channel" and "which channels is this member in" are one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.channel import Channel, ChannelMember
from chalicelib.domain.organisation import Device
from chalicelib.domain.roster import ChannelCounters, Epoch, RosterDevice
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Item, Store

#: The channel's fields that change after its creation, compared on each ``update``.
WATCHED = ("name", "retention_days", "partner_orgs")
#: Index entries read at once by the end's clean-up: a channel's partner members fit in one.
PAGE_OF_SHARED = 100


class ChannelRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- the channel and the organisation's index of channels ------------------------------

    def get(self, channel_id: str) -> Channel | None:
        item = self._store.get(*keys.channel(channel_id))
        return None if item is None else Channel.model_validate(item)

    def create(self, channel: Channel) -> None:
        """A new channel (never overwrites one), listed in its organisation, at epoch 0."""
        self._store.put(_channel_item(channel), if_absent=True)
        index = keys.org_channel(channel.org_id, channel.channel_id)
        self._store.put(keys.record(index, {"channel_id": channel.channel_id}))
        self._store.put(_epoch_item(channel.channel_id, Epoch(number=0, started_at=channel.created_at)))

    def save(self, channel: Channel) -> None:
        self._store.put(_channel_item(channel))

    def update(self, channel_id: str, change: Callable[[Channel], Channel]) -> Channel | None:
        """One read-change-write of the channel; None if there is none. Raises ``ConditionFailed``
        if a field others change (``WATCHED``) moved between the read and the write, so a rename
        racing a retention change, or a partner's first member, never undoes the other."""
        item = self._store.get(*keys.channel(channel_id))
        if item is None:
            return None
        read = Channel.model_validate(item)
        changed = change(read)
        if changed != read:
            self._store.put(_channel_item(changed), if_match={name: item.get(name) for name in WATCHED})
        return changed

    def org_channel_ids(self, org_id: str) -> Iterator[str]:
        """The organisation's channels in id order."""
        for item in query_all(self._store, *_org_channels(org_id)):
            yield str(item["channel_id"])

    # -- membership -------------------------------------------------------------------------

    def membership(self, channel_id: str, member_id: str) -> ChannelMember | None:
        item = self._store.get(*keys.channel_member(channel_id, member_id))
        return None if item is None else ChannelMember.model_validate(item)

    def save_membership(self, membership: ChannelMember) -> None:
        """Both sides of the membership, and a partner's member's entry in the pair's index."""
        fields = membership.model_dump(mode="json")
        channel_id, member_id = membership.channel_id, membership.member_id
        puts = [
            keys.record(keys.channel_member(channel_id, member_id), fields),
            keys.record(keys.member_channel(member_id, channel_id), fields),
        ]
        shared = _shared_key(membership)
        if shared is not None:
            puts.append(keys.record(shared, fields))
        self._store.batch_write(puts=puts)

    def remove_membership(self, channel_id: str, member_id: str, device_ids: Iterable[str]) -> None:
        """The member and their devices leave the channel, in one batch."""
        self.remove_memberships(channel_id, [member_id], device_ids)

    def remove_memberships(
        self, channel_id: str, member_ids: Iterable[str], device_ids: Iterable[str]
    ) -> None:
        """Members and their devices leave the channel, in one batch (their entries in the index
        of shared memberships stay: ``forget_shared``, once the channel re-keyed)."""
        self._store.batch_write(
            deletes=[
                *(
                    k
                    for m in member_ids
                    for k in (keys.channel_member(channel_id, m), keys.member_channel(m, channel_id))
                ),
                *(keys.channel_device(channel_id, d) for d in device_ids),
            ]
        )

    # -- the index of shared memberships (a partner's members in a host's channels, 22.6) ------

    def next_shared_channel(
        self, host_org: str, member_org: str, after: str | None
    ) -> tuple[str, list[ChannelMember]] | None:
        """The first channel after ``after`` (channel id order) holding members of ``member_org``
        in the index, with all of them; None when there is none left."""
        pk = keys.shared_memberships(host_org, member_org)
        start = keys.CHANNEL_PREFIX if after is None else f"{keys.shared_channel_prefix(after)[:-1]}$"
        page = self._store.query(pk, start=start, limit=PAGE_OF_SHARED)
        if not page.items:
            return None
        found = [ChannelMember.model_validate(item) for item in page.items]
        channel_id = found[0].channel_id
        if page.cursor is not None and found[-1].channel_id == channel_id:  # it may go on
            found = [
                ChannelMember.model_validate(item)
                for item in query_all(self._store, pk, keys.shared_channel_prefix(channel_id))
            ]
        return channel_id, [m for m in found if m.channel_id == channel_id]

    def forget_shared(self, memberships: Iterable[ChannelMember]) -> None:
        """Drop memberships from the index, after they left their channel."""
        entries = [k for k in map(_shared_key, memberships) if k is not None]
        if entries:  # none for a member of the channel's own organisation: no call at all
            self._store.batch_write(deletes=entries)

    def members(self, channel_id: str) -> Iterator[ChannelMember]:
        """The channel's members, without a public tribe's followers (their records sort apart)."""
        for item in query_all(self._store, keys.channel_partition(channel_id), keys.MEMBER_PREFIX):
            yield ChannelMember.model_validate(item)

    def followers(self, channel_id: str) -> Iterator[ChannelMember]:
        """A public tribe's followers (``keys.channel_member`` files them apart from its members)."""
        for item in query_all(self._store, keys.channel_partition(channel_id), keys.FOLLOWER_PREFIX):
            yield ChannelMember.model_validate(item)

    def memberships_of(self, member_id: str) -> Iterator[ChannelMember]:
        """The member's channels (with their role in each), in channel id order."""
        for item in query_all(self._store, *_member_channels(member_id)):
            yield ChannelMember.model_validate(item)

    def channel_ids_of(self, member_id: str) -> list[str]:
        return [str(item["channel_id"]) for item in query_all(self._store, *_member_channels(member_id))]

    # -- the device roster ------------------------------------------------------------------

    def roster(self, channel_id: str) -> Iterator[RosterDevice]:
        for item in query_all(self._store, keys.channel_partition(channel_id), keys.ROSTER_PREFIX):
            yield RosterDevice.model_validate(item)

    def roster_page(
        self, channel_id: str, cursor: str | None, limit: int
    ) -> tuple[list[RosterDevice], str | None]:
        """One page of the roster and the cursor of the next (None on the last)."""
        page = self._store.query(
            keys.channel_partition(channel_id), prefix=keys.ROSTER_PREFIX, cursor=cursor, limit=limit
        )
        return [RosterDevice.model_validate(item) for item in page.items], page.cursor

    def in_roster(self, channel_id: str, device_id: str) -> bool:
        return self._store.get(*keys.channel_device(channel_id, device_id)) is not None

    def roster_device(self, channel_id: str, device_id: str) -> RosterDevice | None:
        item = self._store.get(*keys.channel_device(channel_id, device_id))
        return None if item is None else RosterDevice.model_validate(item)

    def add_devices(self, channel_id: str, devices: Iterable[Device]) -> None:
        self._store.batch_write(puts=[_roster_item(channel_id, d) for d in devices])

    def add_device(self, channel_id: str, device: Device) -> None:
        self._store.put(_roster_item(channel_id, device))

    def remove_device(self, channel_id: str, device_id: str) -> None:
        self._store.delete(*keys.channel_device(channel_id, device_id))

    # -- counters -----------------------------------------------------------------------------

    def counters(self, channel_id: str) -> ChannelCounters:
        return ChannelCounters.model_validate(self._store.get(*keys.channel_state(channel_id)) or {})

    def bump_roster(self, channel_id: str) -> int:
        """A new roster version with no roster write: senders then distribute their key again."""
        return self._store.increment(*keys.channel_state(channel_id), "roster")

    def change_roster(self, channel_id: str, write: Callable[[], None]) -> int:
        """Run ``write`` (a change to the roster) between two version bumps; return the last.

        The first bump also counts the change as under way (``roster_busy``) and the second
        ends it, each in one write of the ``STATE`` item. A process that dies between them
        leaves the version already moved and the change still counted, so no reader takes a
        copy read meanwhile for the roster of the version it sees (services/roster_cache.py).
        """
        state = keys.channel_state(channel_id)
        self._store.increment(*state, "roster", also={"roster_busy": 1})
        try:
            write()
        finally:
            version = self._store.increment(*state, "roster", also={"roster_busy": -1})
        return version

    def count_members(self, channel_id: str, delta: int) -> int:
        return self._store.increment(*keys.channel_state(channel_id), "members", delta)

    def count_followers(self, channel_id: str, delta: int) -> int:
        return self._store.increment(*keys.channel_state(channel_id), "followers", delta)

    def next_seq(self, channel_id: str, month: str | None = None) -> ChannelCounters:
        """The next message number (``seq``): unique, increasing, possibly with gaps (crashed
        writers), with the channel's other counters as that same write left them, so the send's
        fan-out has the roster version with no read of its own (services/roster_cache.py).

        With ``month`` (``YYYY-MM``), the same single write also counts the message in that
        month's impact counter on the channel's ``STATE`` item (records/impact.py reads them):
        no write of its own for the impact figures.
        """
        also = None if month is None else {keys.month_count_attribute(month): 1}
        item = self._store.increment_item(*keys.channel_state(channel_id), "seq", also=also)
        return ChannelCounters.model_validate(item)

    # -- the key epoch ------------------------------------------------------------------------

    def epoch(self, channel_id: str) -> Epoch:
        item = self._store.get(*keys.channel_epoch(channel_id)) or {}
        return Epoch(number=int(item.get("epoch", 0)), started_at=int(item.get("started_at", 0)))

    def advance_epoch(self, channel_id: str, now: int) -> int:
        """Move to the next epoch, strictly after every change made before this call.

        A lost race is retried from the latest epoch rather than taken as done: the
        winner's bump may predate the caller's change.
        """
        while True:
            item = self._store.get(*keys.channel_epoch(channel_id))
            current = int(item["epoch"]) if item else 0
            condition: dict[str, Any] = {"if_match": {"epoch": current}} if item else {"if_absent": True}
            try:
                self._store.put(
                    _epoch_item(channel_id, Epoch(number=current + 1, started_at=now)), **condition
                )
            except ConditionFailed:
                continue
            return current + 1

    # -- the retention floor --------------------------------------------------------------------

    def floor(self, channel_id: str) -> int:
        """The highest message number retention deleted: gaps below it are not in flight."""
        return int((self._store.get(*keys.channel_floor(channel_id)) or {}).get("seq", 0))

    def raise_floor(self, channel_id: str, seq: int) -> None:
        """Record that messages up to ``seq`` were deleted; the floor never goes down."""
        key = keys.channel_floor(channel_id)
        while True:
            item = self._store.get(*key)
            if item is not None and int(item["seq"]) >= seq:
                return
            condition: dict[str, Any] = {"if_match": {"seq": item["seq"]}} if item else {"if_absent": True}
            try:
                self._store.put(keys.record(key, {"seq": seq}), **condition)
            except ConditionFailed:
                continue
            return


def _shared_key(membership: ChannelMember) -> tuple[str, str] | None:
    """A partner's member's entry in the pair's index of shared memberships (None otherwise)."""
    if membership.host_org is None or membership.member_org is None:
        return None
    return keys.shared_membership(
        membership.host_org, membership.member_org, membership.channel_id, membership.member_id
    )


def _org_channels(org_id: str) -> tuple[str, str]:
    """The partition and sort-key prefix of an organisation's channel index."""
    return keys.org(org_id)[0], keys.CHANNEL_PREFIX


def _member_channels(member_id: str) -> tuple[str, str]:
    """The partition and sort-key prefix of a member's side of their memberships."""
    return keys.member_partition(member_id), keys.CHANNEL_PREFIX


def _channel_item(channel: Channel) -> Item:
    return keys.record(keys.channel(channel.channel_id), channel.model_dump(mode="json"))


def _epoch_item(channel_id: str, epoch: Epoch) -> Item:
    return keys.record(
        keys.channel_epoch(channel_id), {"epoch": epoch.number, "started_at": epoch.started_at}
    )


def _roster_item(channel_id: str, device: Device) -> Item:
    entry = RosterDevice.model_validate(device.model_dump())
    return keys.record(keys.channel_device(channel_id, device.device_id), entry.model_dump(mode="json"))
