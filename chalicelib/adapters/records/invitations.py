"""Invitations, ``INVITE#<code hash> / META``: the code itself is never stored.

Each record expires (``expires_at``) a grace period after the invitation's validity ends.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.domain.invitation import Invitation, InvitationStatus
from chalicelib.ports import Store


class InvitationRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, code_hash: str) -> Invitation | None:
        item = self._store.get(*keys.invitation(code_hash))
        return None if item is None else Invitation.model_validate(item)

    def add(self, invitation: Invitation) -> None:
        """Put if absent: ``ConditionFailed`` if the code's hash is already taken."""
        self._put(invitation, if_absent=True)

    def save_if_pending(self, invitation: Invitation) -> None:
        """Overwrite a still pending invitation: ``ConditionFailed`` if it was used meanwhile.

        This single conditional write is what consumes a code exactly once.
        """
        self._put(invitation, if_match={"status": InvitationStatus.PENDING.value})

    def _put(self, invitation: Invitation, **condition: Any) -> None:
        fields = {**invitation.model_dump(mode="json"), "expires_at": invitation.expires_at}
        self._store.put(keys.record(keys.invitation(invitation.code_hash), fields), **condition)
