"""The administrators' audit log, ``AUDIT#o / AT#<at, 12 digits>#<rank, 6 digits>#<entry id>``.

One unconditional put per entry, with the store's TTL attribute: DynamoDB's TTL (or the
SQLite purge) removes an entry when its organisation's audit period has passed, and reads
never return it after that whether or not it is deleted yet. The rank orders the entries of
one second as they were written: the write reads that second's entries first (usually none),
takes the next rank, or the one its entry already has when a retried action writes it again.
Two writers racing in one second may take the same rank: their entries, concurrent anyway,
then list in their ids' order.
"""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.audit import AuditEntry
from chalicelib.ports import Store


class AuditRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, entry: AuditEntry, *, expires_at: int) -> None:
        """Write the entry (again, in place, for a retried action: its id is derived from it)."""
        key = self._slot(entry)
        self._store.put({**keys.record(key, entry.model_dump(mode="json")), "expires_at": expires_at})

    def page(self, org_id: str, *, cursor: str | None, limit: int) -> tuple[list[AuditEntry], str | None]:
        """One page, newest first, and the cursor of the next (None: the last page)."""
        page = self._store.query(
            keys.audit_partition(org_id),
            prefix=keys.AUDIT_PREFIX,
            cursor=cursor,
            limit=limit,
            descending=True,
        )
        return [AuditEntry.model_validate(item) for item in page.items], page.cursor

    def _slot(self, entry: AuditEntry) -> keys.Key:
        """The entry's key: the one it was written under, else the next rank of its second."""
        pk = keys.audit_partition(entry.org_id)
        last = -1
        for item in query_all(self._store, pk, keys.audit_second(entry.at)):
            if item.get("entry_id") == entry.entry_id:
                return pk, str(item["sk"])
            last = max(last, keys.audit_rank(str(item["sk"])))
        return keys.audit_entry(entry.org_id, entry.at, last + 1, entry.entry_id)
