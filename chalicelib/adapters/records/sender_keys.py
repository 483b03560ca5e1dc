"""Sealed sender keys, sorted by epoch then recipient so that a device fetches all the keys
sealed to it for an epoch in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.roster import SealedKey
from chalicelib.ports import Store


class SenderKeys:
    def __init__(self, store: Store) -> None:
        self._store = store

    def put(self, channel_id: str, sealed: Iterable[SealedKey], *, uploaded_at: int, expires_at: int) -> int:
        """Store each sealed key (a re-upload replaces); returns how many."""
        items = [
            keys.record(
                keys.sender_key(channel_id, key.epoch, key.recipient_device, key.sender_device),
                {
                    "recipient_device": key.recipient_device,
                    "sender_device": key.sender_device,
                    "epoch": key.epoch,
                    "sealed": key.sealed,
                    "uploaded_at": uploaded_at,
                    "expires_at": expires_at,
                },
            )
            for key in sealed
        ]
        self._store.batch_write(puts=items)
        return len(items)

    def sealed_to(self, channel_id: str, epoch: int, device_id: str) -> Iterator[SealedKey]:
        """Every sender's key for ``epoch`` sealed to ``device_id``."""
        prefix = keys.key_prefix(epoch, device_id)
        for item in query_all(self._store, keys.channel_partition(channel_id), prefix):
            yield SealedKey.model_validate(item)

    def forget_recipient(self, channel_id: str, epoch: int, device_id: str) -> int:
        """Delete the keys of ``epoch`` sealed to a device that left for good (a follower)."""
        doomed = [
            (str(item["pk"]), str(item["sk"]))
            for item in query_all(
                self._store, keys.channel_partition(channel_id), keys.key_prefix(epoch, device_id)
            )
        ]
        if doomed:
            self._store.batch_write(deletes=doomed)
        return len(doomed)
