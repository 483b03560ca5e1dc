"""Impact counts per organisation and month: ``messages``, ``notifications`` (one per
recipient) and ``call_seconds`` (participant-seconds of the calls that ended that month).
Metadata only, never content.

Two sources, summed:

- each channel's ``STATE`` item counts its messages per month (``m#YYYY-MM``) in the same single
  write that numbers a message (records/channels.py ``next_seq``), so a send writes nothing for
  impact. Its notifications are that count times the channel's other members (its ``members``
  counter when read, the sender excluded): the counts at send time are not kept, so a member
  who joins or leaves later changes that month's estimate by that much;
- the organisation's ``ORG#o / IMPACT#YYYY-MM`` item, atomic counters: what sends counted
  before the channel counters (a pilot's existing figures), ``add``'s explicit counts, and
  ``call_seconds`` (one increment when a call ends).
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.ports import Item, Store


class Counts(NamedTuple):
    messages: int
    notifications: int
    call_seconds: int = 0


class ImpactRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(
        self, org_id: str, month: str, *, messages: int = 0, notifications: int = 0, call_seconds: int = 0
    ) -> None:
        """Atomic increments, one per non-zero amount, all on the month's one item."""
        pk, sk = keys.org_impact(org_id, month)
        amounts = (("messages", messages), ("notifications", notifications), ("call_seconds", call_seconds))
        for attribute, amount in amounts:
            if amount:
                self._store.increment(pk, sk, attribute, amount)

    def counts(self, org_id: str, month: str) -> Counts:
        return self.by_month(org_id).get(month, Counts(0, 0))

    def by_month(self, org_id: str) -> dict[str, Counts]:
        """month -> counts, for every month with a count, oldest first.

        One query of the organisation's counters and channel index, then one read of each
        channel's ``STATE``: admin views and the monthly billing run, never a send.
        """
        messages: defaultdict[str, int] = defaultdict(int)
        notifications: defaultdict[str, int] = defaultdict(int)
        call_seconds: defaultdict[str, int] = defaultdict(int)
        for item in query_all(self._store, keys.org_partition(org_id), keys.IMPACT_PREFIX):
            month = str(item["sk"]).removeprefix(keys.IMPACT_PREFIX)
            counted = _counts(item)
            messages[month] += counted.messages
            notifications[month] += counted.notifications
            call_seconds[month] += counted.call_seconds
        for index in query_all(self._store, keys.org_partition(org_id), keys.CHANNEL_PREFIX):
            state = self._store.get(*keys.channel_state(str(index["channel_id"]))) or {}
            others = max(0, int(state.get("members", 0)) - 1)
            for name, value in state.items():
                if name.startswith(keys.MONTH_COUNT_PREFIX):
                    month = name.removeprefix(keys.MONTH_COUNT_PREFIX)
                    messages[month] += int(value)
                    notifications[month] += int(value) * others
        months = sorted({*messages, *call_seconds})
        return {m: Counts(messages[m], notifications[m], call_seconds[m]) for m in months}


def _counts(item: Item) -> Counts:
    return Counts(
        int(item.get("messages", 0)), int(item.get("notifications", 0)), int(item.get("call_seconds", 0))
    )
