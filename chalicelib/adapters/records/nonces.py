"""Single-use request nonces, ``NONCE#<subject> / <nonce>``: kept until the token they came
with can no longer be presented, then expired by the store."""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Store


class NonceRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def spend(self, subject: str, nonce: str, *, keep_until: int) -> bool:
        """Record the nonce as used; False if it already was (a replay)."""
        try:
            self._store.put(
                keys.record(keys.nonce(subject, nonce), {"expires_at": keep_until}), if_absent=True
            )
        except ConditionFailed:
            return False
        return True
