"""File blobs, ``CHAN#c / FILE#b``: one record per blob, in its channel's partition, expiring
with the message that references it (an hour after its upload slot if none does)."""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.domain.files import StoredBlob
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Store


class FileRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, blob: StoredBlob) -> None:
        self._store.put(
            keys.record(keys.blob(blob.channel_id, blob.blob_id), blob.model_dump()), if_absent=True
        )

    def get(self, channel_id: str, blob_id: str) -> StoredBlob | None:
        item = self._store.get(*keys.blob(channel_id, blob_id))
        return StoredBlob.model_validate(item) if item is not None else None

    def reference(self, blob: StoredBlob, message_id: str, expires_at: int) -> bool:
        """Bind an unreferenced blob to its message; False if another reference came first."""
        bound = blob.model_copy(update={"message_id": message_id, "expires_at": expires_at})
        try:
            self._store.put(
                keys.record(keys.blob(blob.channel_id, blob.blob_id), bound.model_dump()),
                # An unreferenced record's expiry is its slot's hour: it changes once referenced.
                if_match={"expires_at": blob.expires_at},
            )
        except ConditionFailed:
            return False
        return True

    def delete(self, blob: StoredBlob) -> None:
        self._store.delete(*keys.blob(blob.channel_id, blob.blob_id))
