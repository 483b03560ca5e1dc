"""Call records (docs/protocol.md, section 19): ``CHAN#c / CALL#k``, one per call, with a TTL.

Each change is a conditional write on the record's ``version``, so two participants joining at
once cannot both take the sixth place; the item holds ids and times only.
"""

from __future__ import annotations

from collections.abc import Iterator

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.calls import CallRecord
from chalicelib.ports import Store


class CallRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, channel_id: str, call_id: str) -> CallRecord | None:
        item = self._store.get(*keys.call(channel_id, call_id))
        return None if item is None else CallRecord.model_validate(item)

    def of_channel(self, channel_id: str) -> Iterator[CallRecord]:
        """The channel's calls whose records have not expired (ended ones included)."""
        for item in query_all(self._store, keys.channel_partition(channel_id), keys.CALL_PREFIX):
            yield CallRecord.model_validate(item)

    def save(self, before: CallRecord | None, after: CallRecord) -> None:
        """Write ``after`` if the stored record is still ``before`` (``ConditionFailed`` if not)."""
        item = keys.record(keys.call(after.channel_id, after.call_id), after.model_dump(mode="json"))
        if before is None:
            self._store.put(item, if_absent=True)
        else:
            self._store.put(item, if_match={"version": before.version})
