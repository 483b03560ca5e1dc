"""A channel's signed membership log, ``CHAN#c / MLOG#<seq, 12 digits>`` (docs/protocol.md, 14).

Each entry is written once with a conditional put, so two writers racing for the same number
cannot both win and the server itself cannot overwrite an entry; entries are kept as received.
Beside them, ``CHAN#c / LOGMEMBER#m`` for each member an entry names (its subject, or its
signer's member), one item each however long the log, and ``CHAN#c / LOGMEMBERS`` once that
set is complete: what a
follower's or a guest's trimmed listing needs, read without walking the log.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.ports import Store


class MembershipLogRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def head(self, channel_id: str) -> dict[str, Any] | None:
        """The last entry, or None for a channel without a log."""
        page = self._store.query(
            keys.channel_partition(channel_id), prefix=keys.MEMBERSHIP_LOG_PREFIX, limit=1, descending=True
        )
        return dict(page.items[0]["entry"]) if page.items else None

    def get(self, channel_id: str, seq: int) -> dict[str, Any] | None:
        item = self._store.get(*keys.membership_entry(channel_id, seq))
        return None if item is None else dict(item["entry"])

    def append(self, channel_id: str, entry: dict[str, Any]) -> None:
        """Write entry ``entry["seq"]`` if that number is free; ``ConditionFailed`` otherwise."""
        key = keys.membership_entry(channel_id, int(entry["seq"]))
        self._store.put(keys.record(key, {"entry": entry}), if_absent=True)

    def page(self, channel_id: str, start: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Entries from ``start`` on, oldest first, and whether more follow."""
        page = self._store.query(
            keys.channel_partition(channel_id),
            start=keys.membership_entry(channel_id, start)[1],
            end=keys.membership_entry(channel_id, keys.MAX_SEQ)[1],
            limit=limit + 1,
        )
        entries = [dict(item["entry"]) for item in page.items]
        return entries[:limit], len(entries) > limit

    def note_member(self, channel_id: str, member_id: str) -> None:
        self._store.put(keys.record(keys.log_member(channel_id, member_id), {"member_id": member_id}))

    def mark_members_complete(self, channel_id: str) -> None:
        self._store.put(keys.record(keys.log_members_complete(channel_id), {"complete": True}))

    def named(self, channel_id: str) -> list[str] | None:
        """The members the log names (subjects and signers); None if never completed."""
        if self._store.get(*keys.log_members_complete(channel_id)) is None:
            return None
        items = query_all(self._store, keys.channel_partition(channel_id), keys.LOG_MEMBER_PREFIX)
        return [str(item["member_id"]) for item in items]
