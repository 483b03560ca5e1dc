"""The administrators' audit log, ``AUDIT#o / AT#<at, 12 digits>#<entry id>``.

One unconditional put per entry, with the store's TTL attribute: DynamoDB's TTL (or the
SQLite purge) removes an entry when its organisation's audit period has passed, and reads
never return it after that whether or not it is deleted yet.
"""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.domain.audit import AuditEntry
from chalicelib.ports import Store


class AuditRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, entry: AuditEntry, *, expires_at: int) -> None:
        """Write the entry (again, in place, for a retried action: its id is derived from it)."""
        key = keys.audit_entry(entry.org_id, entry.at, entry.entry_id)
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
