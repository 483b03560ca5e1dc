"""Keep only the newest of a signed choice (by ``issued_at``): a member's "@mention me only"
(section 17), a public tribe's recent-history window (section 23)."""

from __future__ import annotations

from chalicelib.errors import ConditionFailed
from chalicelib.ports import Store

_ATTEMPTS = 5


def save_if_newer(
    store: Store, key: tuple[str, str], item: dict[str, object], *, not_after: int | None = None
) -> bool:
    """Put ``item`` at ``key`` unless the stored one is newer; False when it was older (dropped).

    The write is conditional on the stored ``issued_at`` not having changed since it was read
    (retried from the newer value), so two clients racing keep the latest, never the last.
    A stored one dated after ``not_after`` (now plus the clock skew allowed) is newer than
    nothing: it never passed the check that a choice is made now, and would otherwise keep every
    real later choice out until its date."""
    for _ in range(_ATTEMPTS):
        stored = store.get(*key)
        stored_at = None if stored is None else int(stored["issued_at"])
        future = stored_at is not None and not_after is not None and stored_at > not_after
        if stored_at is not None and not future and stored_at > int(str(item["issued_at"])):
            return False
        try:
            if stored is None:
                store.put(item, if_absent=True)
            else:
                store.put(item, if_match={"issued_at": stored["issued_at"]})
        except ConditionFailed:
            continue
        return True
    return False
