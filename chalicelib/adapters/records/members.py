"""Members and their devices.

A member is ``ORG#o / MEMBER#m``; right after it come copies of their devices
(``ORG#o / MEMBER#m#DEVICE#d``), so one query lists members with their public keys. Each
device also has its own record, ``DEVICE#d / META``, which authentication reads per request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.organisation import Device, Member
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Item, Store


class MemberRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- members -----------------------------------------------------------------------------

    def get(self, org_id: str, member_id: str) -> Member | None:
        item = self._store.get(*keys.member(org_id, member_id))
        return None if item is None else Member.model_validate(item)

    def save(self, member: Member, *, if_absent: bool = False, unchanged_since: Member | None = None) -> None:
        """Write a member; ``unchanged_since``: only if its status and role are still those.

        Raises ``ConditionFailed`` when the condition does not hold.
        """
        condition = None
        if unchanged_since is not None:
            condition = {"status": unchanged_since.status.value, "role": unchanged_since.role.value}
        self._store.put(
            keys.record(keys.member(member.org_id, member.member_id), member.model_dump(mode="json")),
            if_absent=if_absent,
            if_match=condition,
        )

    def page(
        self, org_id: str, *, cursor: str | None, limit: int
    ) -> tuple[list[Member], list[Device], str | None]:
        """One page of members and their devices, and the cursor of the next page."""
        page = self._store.query(
            keys.org_partition(org_id), prefix=keys.MEMBER_PREFIX, cursor=cursor, limit=limit
        )
        members, devices = _split(page.items)
        return members, devices, page.cursor

    def history(self, org_id: str) -> tuple[list[Member], list[Device]]:
        """Every member ever (removed ones included) and every device ever (revoked ones included)."""
        return _split(query_all(self._store, keys.org_partition(org_id), keys.MEMBER_PREFIX))

    # -- the owner count --------------------------------------------------------------------

    def owner_count(self, org_id: str) -> int | None:
        """The counted owners, or None if this organisation has no count yet (created before it)."""
        item = self._store.get(*keys.owner_count(org_id))
        return None if item is None else int(item["owners"])

    def start_owner_count(self, org_id: str, owners: int) -> None:
        """Create the count unless another writer created it first (theirs stands)."""
        with contextlib.suppress(ConditionFailed):
            self._store.put(keys.record(keys.owner_count(org_id), {"owners": owners}), if_absent=True)

    def add_owners(self, org_id: str, amount: int) -> int:
        """Atomically add to the count (UpdateItem ADD); the new count."""
        return self._store.increment(*keys.owner_count(org_id), "owners", amount)

    # -- devices -----------------------------------------------------------------------------

    def device(self, device_id: str) -> Device | None:
        item = self._store.get(*keys.device(device_id))
        return None if item is None else Device.model_validate(item)

    def devices_of(self, org_id: str, member_id: str) -> list[Device]:
        home = keys.member_home(org_id, member_id)
        items = query_all(self._store, home, keys.member_devices_prefix(member_id))
        return [Device.model_validate(i) for i in items]

    def save_device(self, device: Device) -> None:
        """Two puts: the device's own record, then the copy listed with its member.

        Both are idempotent, so writing the same device again converges both copies.
        """
        fields = device.model_dump(mode="json")
        self._store.put(keys.record(keys.device(device.device_id), fields))
        self._store.put(
            keys.record(keys.member_device(device.org_id, device.member_id, device.device_id), fields)
        )

    def forget(self, member: Member, devices: Iterable[Device]) -> None:
        """Delete a member and their devices outright: a follower who leaves (nothing signed by
        them needs checking later, unlike a member's, whose records stay for old messages)."""
        deletes = [keys.member(member.org_id, member.member_id)]
        for device in devices:
            deletes += [
                keys.device(device.device_id),
                keys.member_device(device.org_id, device.member_id, device.device_id),
            ]
        self._store.batch_write(deletes=deletes)


def _split(items: Iterable[Item]) -> tuple[list[Member], list[Device]]:
    """Members and device copies, as they come interleaved in the organisation's partition."""
    members: list[Member] = []
    devices: list[Device] = []
    for item in items:
        if keys.is_device_sk(item["sk"]):
            devices.append(Device.model_validate(item))
        else:
            members.append(Member.model_validate(item))
    return members, devices
