"""What retention governs in a channel: its messages, their id markers and its sealed keys.

The retention job walks them kind by kind, page by page, and re-stamps or deletes each one;
the walk's position is a kind (its index in ``SWEEP_ORDER``) and a page cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.messages import message_fields
from chalicelib.ports import Item, Store


class Expiring(StrEnum):
    MESSAGE = "message"
    MARKER = "marker"  # a message id's marker
    KEY = "key"  # a sealed sender key
    FILE = "file"  # a file blob's record (its bytes follow: services/files.py)


#: The order the job walks a channel in: its saved position counts in this order.
SWEEP_ORDER = (Expiring.MESSAGE, Expiring.MARKER, Expiring.KEY, Expiring.FILE)

_PREFIX = {
    Expiring.MESSAGE: keys.MESSAGE_PREFIX,
    Expiring.MARKER: keys.MARKER_PREFIX,
    Expiring.KEY: keys.KEY_PREFIX,
    Expiring.FILE: keys.BLOB_PREFIX,
}


@dataclass(frozen=True)
class ExpiringItem:
    """The facts retention decides on; which ones are set depends on ``kind``.

    ``stored_at``: messages and stored markers; ``uploaded_at``: keys; ``epoch`` and
    ``sender_device``: messages and keys; ``seq``: messages.
    """

    kind: Expiring
    expires_at: int | None
    stored_at: int | None = None
    uploaded_at: int | None = None
    epoch: int | None = None
    sender_device: str | None = None
    seq: int | None = None
    item: Item = field(default_factory=dict, repr=False, compare=False)


class ExpiringItems:
    def __init__(self, store: Store) -> None:
        self._store = store

    def page(
        self, channel_id: str, kind: Expiring, cursor: str | None, limit: int
    ) -> tuple[list[ExpiringItem], str | None]:
        """One page of the channel's items of ``kind``, and the cursor of the next (None: last)."""
        page = self._store.query(
            keys.channel_partition(channel_id), prefix=_PREFIX[kind], cursor=cursor, limit=limit
        )
        return [_expiring(kind, item) for item in page.items], page.cursor

    def apply(self, restamp: Iterable[tuple[ExpiringItem, int]], delete: Iterable[ExpiringItem]) -> None:
        """New expiry times and deletions, in one batch."""
        self._store.batch_write(
            puts=[{**x.item, "expires_at": due} for x, due in restamp],
            deletes=[(x.item["pk"], x.item["sk"]) for x in delete],
        )


def _expiring(kind: Expiring, item: Item) -> ExpiringItem:
    facts = message_fields(item) if kind is Expiring.MESSAGE else item  # short names (messages.py)
    return ExpiringItem(
        kind=kind,
        expires_at=_int(facts.get("expires_at")),
        stored_at=_int(facts.get("stored_at")),
        uploaded_at=_int(facts.get("uploaded_at")),
        epoch=_int(facts.get("epoch")),
        sender_device=facts.get("sender_device"),
        seq=_int(facts.get("seq")),
        item=item,
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
