"""File blobs (docs/protocol.md, section 18).

``CHAN#c / FILE#b``: one record per blob, in its channel's partition, expiring with the message
that references it (an hour after its upload slot while none does). ``CHAN#c / FILEREF#<message>``:
the one blob a message references, to delete it with the message. ``FILEEXPIRY /
<expires_at>#c#b``: when the bytes must go, walked by time by the purge job; these never expire
on their own, since the blob record they point to can no longer be read once it has.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.adapters.records import keys
from chalicelib.domain.files import StoredBlob
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Store

PURGE_PAGE = 100


@dataclass(frozen=True)
class DueBlob:
    """A blob whose time is up, as the purge index names it."""

    sk: str
    object_key: str
    channel_id: str
    blob_id: str
    org_id: str = ""
    counted: int = 0  # bytes it adds to its organisation's storage in use
    pending_of: str = ""  # the uploader whose pending slots it counts in (an unreferenced slot)


class FileRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _due(self, blob: StoredBlob) -> dict[str, object]:
        key = keys.blob_expiry(blob.expires_at, blob.channel_id, blob.blob_id)
        fields = {"object_key": blob.object_key, "channel_id": blob.channel_id, "blob_id": blob.blob_id}
        counted = blob.size if blob.counted else 0
        pending = {"pending_of": blob.uploader} if blob.reserved and blob.message_id is None else {}
        return keys.record(key, {**fields, "org_id": blob.org_id, "counted": counted, **pending})

    def add(self, blob: StoredBlob) -> None:
        """The slot's record, and its deletion an hour on (index first: never an orphan blob).
        Its reserved bytes are given back if the index cannot be written; once it is, the purge
        gives them back whatever happens next."""
        try:
            self._store.put(self._due(blob))
        except Exception:
            if blob.reserved:
                self.count(blob.org_id, -blob.size)
            raise
        self._store.put(
            keys.record(keys.blob(blob.channel_id, blob.blob_id), blob.model_dump()), if_absent=True
        )

    def get(self, channel_id: str, blob_id: str) -> StoredBlob | None:
        item = self._store.get(*keys.blob(channel_id, blob_id))
        return StoredBlob.model_validate(item) if item is not None else None

    def referenced_by(self, channel_id: str, message_id: str) -> str | None:
        item = self._store.get(*keys.message_blob(channel_id, message_id))
        return str(item["blob_id"]) if item is not None else None

    @staticmethod
    def blob_of(item: dict[str, object]) -> StoredBlob:
        """A blob record as the retention job's page hands it over."""
        return StoredBlob.model_validate(item)

    def reference(self, blob: StoredBlob, message_id: str, expires_at: int, stored_at: int) -> bool:
        """Bind an unreferenced blob to a message that has none; False if either already is."""
        ref = keys.record(keys.message_blob(blob.channel_id, message_id), {"blob_id": blob.blob_id})
        try:
            self._store.put({**ref, "expires_at": expires_at}, if_absent=True)
        except ConditionFailed:
            return self.referenced_by(blob.channel_id, message_id) == blob.blob_id and self._bound(
                blob, message_id
            )
        bound = blob.model_copy(
            update={"message_id": message_id, "expires_at": expires_at, "message_stored_at": stored_at}
        )
        self._store.put(self._due(bound))
        try:
            self._store.put(
                keys.record(keys.blob(blob.channel_id, blob.blob_id), bound.model_dump()),
                # An unreferenced record's expiry is its slot's hour: it changes once referenced.
                if_match={"expires_at": blob.expires_at},
            )
        except ConditionFailed:  # another message bound it first: undo this attempt's writes
            self._store.delete(*keys.message_blob(blob.channel_id, message_id))
            winner = self.get(blob.channel_id, blob.blob_id)
            if winner is None or winner.expires_at != expires_at:  # else the entry is the winner's too
                self._store.delete(*keys.blob_expiry(expires_at, blob.channel_id, blob.blob_id))
            return self._bound(blob, message_id)
        self._store.delete(*keys.blob_expiry(blob.expires_at, blob.channel_id, blob.blob_id))
        if not blob.reserved:
            self.count(blob.org_id, blob.size)
        else:
            self.count_pending(blob.org_id, blob.uploader, -blob.size)
        return True

    def restamp(self, blob: StoredBlob, expires_at: int) -> bool:
        """Move a referenced blob's expiry with its message's (a retention change): the new purge
        entry first, so the bytes never lose theirs; False if the blob changed meanwhile (deleted
        for everyone), and then nothing is left of this attempt."""
        moved = blob.model_copy(update={"expires_at": expires_at})
        self._store.put(self._due(moved))
        try:
            self._store.put(
                keys.record(keys.blob(blob.channel_id, blob.blob_id), moved.model_dump()),
                if_match={"expires_at": blob.expires_at},
            )
        except ConditionFailed:
            self._store.delete(*keys.blob_expiry(expires_at, blob.channel_id, blob.blob_id))
            return False
        if blob.message_id is not None:
            ref = keys.record(keys.message_blob(blob.channel_id, blob.message_id), {"blob_id": blob.blob_id})
            self._store.put({**ref, "expires_at": expires_at})
        self._store.delete(*keys.blob_expiry(blob.expires_at, blob.channel_id, blob.blob_id))
        return True

    def claim(self, blob: StoredBlob) -> bool:
        """Take the blob for removal, so that two removers (a "delete for everyone" and the
        retention job, or the purge) give its bytes back once: its record is expired, on condition
        that it is still the one read; False if another remover or a re-stamp changed it first."""
        try:
            self._store.put(
                keys.record(keys.blob(blob.channel_id, blob.blob_id), {**blob.model_dump(), "expires_at": 1}),
                if_match={"expires_at": blob.expires_at},
            )
        except ConditionFailed:
            return False
        return True

    def count(self, org_id: str, delta: int) -> int:
        """Move the organisation's bytes in use (blobs referenced or being uploaded); the new total."""
        return self._store.increment(*keys.org_files_usage(org_id), "bytes_in_use", delta)

    def count_pending(self, org_id: str, member_id: str, delta: int) -> int:
        """Move a member's bytes of slots not yet bound to a message; the new total."""
        return self._store.increment(*keys.member_files_pending(org_id, member_id), "bytes", delta)

    def bytes_in_use(self, org_id: str) -> int:
        item = self._store.get(*keys.org_files_usage(org_id))
        return int(item["bytes_in_use"]) if item is not None else 0

    def limits(self, org_id: str) -> dict[str, int]:
        """The limits the operator set for this organisation: ``max_file_bytes``, ``quota_bytes``."""
        item = self._store.get(*keys.org_files_limits(org_id)) or {}
        return {k: int(v) for k, v in item.items() if k in {"max_file_bytes", "quota_bytes"}}

    def set_limits(self, org_id: str, max_file_bytes: int | None, quota_bytes: int | None) -> None:
        """None: the plan's."""
        fields: dict[str, object] = {"max_file_bytes": max_file_bytes, "quota_bytes": quota_bytes}
        self._store.put(keys.record(keys.org_files_limits(org_id), fields))

    def _bound(self, blob: StoredBlob, message_id: str) -> bool:
        now = self.get(blob.channel_id, blob.blob_id)
        return now is not None and now.message_id == message_id

    def due(self, now: int) -> list[DueBlob]:
        """Blobs whose time is up, oldest first (one page: the job comes back for more)."""
        page = self._store.query(keys.BLOB_EXPIRY_PK, end=f"{now:012d}#~", limit=PURGE_PAGE)
        return [
            DueBlob(
                item["sk"],
                item["object_key"],
                item["channel_id"],
                item["blob_id"],
                item.get("org_id", ""),
                int(item.get("counted", 0)),
                item.get("pending_of", ""),
            )
            for item in page.items
        ]

    def forget_due(self, due: DueBlob) -> None:
        self._store.delete(keys.BLOB_EXPIRY_PK, due.sk)

    def delete(self, blob: StoredBlob) -> None:
        """The blob's records and its purge entry (its bytes are the caller's to delete first)."""
        if blob.message_id is not None:
            self._store.delete(*keys.message_blob(blob.channel_id, blob.message_id))
        self._store.delete(*keys.blob(blob.channel_id, blob.blob_id))
        self._store.delete(*keys.blob_expiry(blob.expires_at, blob.channel_id, blob.blob_id))
