"""Impact counters, ``ORG#o / IMPACT#YYYY-MM``: two atomic counters per organisation and
month, ``messages`` and ``notifications`` (one per recipient). Metadata only, never content."""

from __future__ import annotations

from typing import NamedTuple

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.ports import Item, Store


class Counts(NamedTuple):
    messages: int
    notifications: int


class ImpactRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, org_id: str, month: str, *, messages: int, notifications: int) -> None:
        """Atomic increments, one per non-zero amount, all on the month's one item."""
        pk, sk = keys.org_impact(org_id, month)
        for attribute, amount in (("messages", messages), ("notifications", notifications)):
            if amount:
                self._store.increment(pk, sk, attribute, amount)

    def counts(self, org_id: str, month: str) -> Counts:
        return _counts(self._store.get(*keys.org_impact(org_id, month)) or {})

    def by_month(self, org_id: str) -> dict[str, Counts]:
        """month -> counts, for every month with a count, oldest first."""
        return {
            item["sk"].removeprefix(keys.IMPACT_PREFIX): _counts(item)
            for item in query_all(self._store, keys.org_partition(org_id), keys.IMPACT_PREFIX)
        }


def _counts(item: Item) -> Counts:
    return Counts(int(item.get("messages", 0)), int(item.get("notifications", 0)))
