"""A device's Web Push subscription and the slot that coalesces its pushes."""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.domain.push import PushSubscription
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Store


class PushRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, device_id: str) -> PushSubscription | None:
        """Eventually consistent (read for every offline device of every message): a
        subscription of the last second may miss one push."""
        item = self._store.get(*keys.push_subscription(device_id), consistent=False)
        return None if item is None else PushSubscription.model_validate(item)

    def save(self, subscription: PushSubscription) -> None:
        key = keys.push_subscription(subscription.device_id)
        self._store.put(keys.record(key, subscription.model_dump(mode="json")))

    def delete(self, device_id: str) -> None:
        self._store.delete(*keys.push_subscription(device_id))

    def take_slot(self, device_id: str, until: int) -> bool:
        """Whether this push may go: False while an earlier push's slot has not expired."""
        try:
            self._store.put(keys.record(keys.push_slot(device_id), {"expires_at": until}), if_absent=True)
        except ConditionFailed:
            return False
        return True
