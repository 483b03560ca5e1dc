"""A channel's messages, the id markers that make a resent message land once, and each
device's read cursor per channel.

A message is stored once, under its sequence number; its marker maps the client's message
id to that number. The marker is written once, conditionally, after the number is taken and
*before* the message: a send that fails after writing the message (a timeout that hid a landed
write) still leaves its resend a way to find the first copy.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.frames import StoredMessage
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Item, Store


@dataclass(frozen=True)
class IdMarker:
    """Where a client message id landed: ``seq`` is None while its send is still at work."""

    seq: int | None
    expires_at: int
    stored_at: int = 0

    @property
    def stored(self) -> bool:
        return self.seq is not None


@dataclass(frozen=True)
class MessagePage:
    """Stored messages in sequence order; ``more`` when the store holds further ones."""

    messages: list[StoredMessage]
    more: bool


class MessageRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- id markers ---------------------------------------------------------------------------

    def mark(self, message: StoredMessage, *, attempt: str, replacing: int | None = None) -> bool:
        """Point the message's id at its number, once: the one conditional write that makes a
        resend land once (False when another send of the id marked it first).

        Written after the number is taken and before the message, so a send that fails after
        storing the message (a timeout that hid a landed write) still leaves its resend a way to
        find the first copy. ``replacing``: the number an abandoned earlier attempt marked and
        never stored (services/messaging.py), taken over only if the marker still says so.
        The marker expires with its message.
        """
        key = keys.message_marker(message.channel_id, message.message_id)
        marker = keys.record(
            key,
            {
                "state": "stored",
                "attempt": attempt,
                "seq": message.seq,
                "stored_at": message.stored_at,
                "expires_at": message.expires_at,
            },
        )
        try:
            if replacing is None:
                self._store.put(marker, if_absent=True)
            else:
                self._store.put(marker, if_match={"state": "stored", "seq": replacing})
        except ConditionFailed:
            return False
        return True

    def marker(self, channel_id: str, message_id: str) -> IdMarker | None:
        """Where the id landed. A marker in the older two-step shape (``state: pending`` while
        its send was at work, ``released`` after it failed) reads as still in flight until it
        expires (60 s), then as absent."""
        item = self._store.get(*keys.message_marker(channel_id, message_id))
        if item is None:
            return None
        seq = int(item["seq"]) if item.get("state") == "stored" else None
        return IdMarker(seq=seq, expires_at=int(item["expires_at"]), stored_at=int(item.get("stored_at", 0)))

    def release(self, channel_id: str, message_id: str, attempt: str, now: int) -> None:
        """Give the id back after ``attempt`` failed, so a resend need not wait: the marker
        expires now, if it is still this attempt's (never another's)."""
        key = keys.message_marker(channel_id, message_id)
        released = keys.record(key, {"state": "released", "expires_at": now})
        with contextlib.suppress(ConditionFailed):  # not ours, or the marker never landed
            self._store.put(released, if_match={"attempt": attempt})

    # -- messages -----------------------------------------------------------------------------

    def add(self, message: StoredMessage, *, attempt: str = "seeded") -> None:
        """Mark and store a message whatever was there (tests and imports; sends use ``mark``
        then ``store``)."""
        self._store.delete(*keys.message_marker(message.channel_id, message.message_id))
        self.mark(message, attempt=attempt)
        self.store(message)

    def store(self, message: StoredMessage) -> None:
        """Write the message under its number (its id already marked), or overwrite it (a
        deletion for everyone leaves a bodiless copy)."""
        self._store.put(_message_item(message))

    def get(self, channel_id: str, seq: int) -> StoredMessage | None:
        item = self._store.get(*keys.message(channel_id, seq))
        return None if item is None else _message(item)

    def find(self, channel_id: str, message_id: str) -> StoredMessage | None:
        """A stored message by its client id (through its id marker)."""
        marker = self.marker(channel_id, message_id)
        if marker is None or marker.seq is None:
            return None
        return self.get(channel_id, marker.seq)

    def after(self, channel_id: str, since: int, limit: int) -> MessagePage:
        """Up to ``limit`` messages numbered after ``since``, in order.

        Eventually consistent (half the cost): a message stored in the last second may be
        missing from the page, which the reader's gap rule already allows for (a younger
        number is held back until ``GAP_GRACE``; services/messaging.py), and the next page
        brings it. A stale copy of a just-deleted message can show for that second; the
        deletion itself follows in the same channel.
        """
        page = self._store.query(
            keys.channel_partition(channel_id),
            start=keys.message_sk(since + 1),
            end=keys.message_sk(keys.MAX_SEQ),
            limit=limit,
            consistent=False,
        )
        return MessagePage([_message(item) for item in page.items], more=page.cursor is not None)

    # -- read cursors -------------------------------------------------------------------------

    def save_cursor(self, device_id: str, channel_id: str, seq: int, at: int) -> None:
        """The device has read the channel up to ``seq``."""
        self._store.put(keys.record(keys.read_cursor(device_id, channel_id), {"seq": seq, "at": at}))

    def cursor(self, device_id: str, channel_id: str) -> int:
        """The last message number this device read in the channel (0 before its first read)."""
        item = self._store.get(*keys.read_cursor(device_id, channel_id))
        return 0 if item is None else int(item["seq"])

    def cursors(self, device_id: str) -> dict[str, int]:
        """Channel id -> the last message number this device read there.

        Strong: the device's own cursors, read right after it advanced them (unread counts).
        """
        items = query_all(self._store, keys.device_partition(device_id), keys.CURSOR_PREFIX)
        return {str(i["sk"]).removeprefix(keys.CURSOR_PREFIX): int(i["seq"]) for i in items}


#: The message item's attribute names: one or two letters, since DynamoDB bills a name's bytes on
#: every write, read and GB-month (a 1 KiB message's item went from 1,769 to 1,273 bytes: bench/cost.py).
#: ``channel_id`` and ``seq`` are the item's key and not repeated; ``expires_at`` keeps its name,
#: the store's expiry (and DynamoDB's TTL) attribute. Items written before (long names, base64 text,
#: with ``channel_id``) are read as they are: no migration, retention replaces them in time.
_SHORT = {
    "v": "v",
    "message_id": "i",
    "sender_device": "d",
    "epoch": "e",
    "index": "x",
    "kind": "k",
    "target": "t",
    "sent_at": "a",
    "nonce": "n",
    "ciphertext": "c",
    "signature": "g",
    "sender_member": "m",
    "stored_at": "s",
    "deleted": "z",
    "deleted_at": "za",
    "deleted_by": "zb",
}
_LONG = {short: long for long, short in _SHORT.items()}
#: Fields that are base64url on the wire, stored as their bytes (a third smaller).
_BINARY = frozenset({"nonce", "ciphertext", "signature"})


def _message_item(message: StoredMessage) -> Item:
    """The message under its key, in the short layout; reads give back exactly the wire fields."""
    fields = message.wire()
    item = keys.record(keys.message(message.channel_id, message.seq), {})
    for name, value in fields.items():
        if name in ("channel_id", "seq", "expires_at") or value is None:
            continue
        item[_SHORT[name]] = _packed(value) if name in _BINARY else value
    item["expires_at"] = message.expires_at
    return item


def _packed(text: str) -> bytes | str:
    """A base64url field as its bytes, when decoding and encoding again gives the same text (the
    signature covers the text: anything else, such as padding, stays text)."""
    try:
        raw = b64d(text)
    except ValueError:
        return text
    return raw if b64e(raw) == text else text


def message_fields(item: Item) -> dict[str, Any]:
    """A stored message item's wire fields, whichever layout wrote it."""
    if "channel_id" in item:  # the long layout, written before the short one
        return {k: v for k, v in item.items() if k not in ("pk", "sk")}
    fields: dict[str, Any] = {
        "channel_id": str(item["pk"]).removeprefix(keys.CHANNEL_PREFIX),
        "seq": int(str(item["sk"]).removeprefix(keys.MESSAGE_PREFIX)),
        "expires_at": item["expires_at"],
        "target": None,
    }
    for short, value in item.items():
        name = _LONG.get(short)
        if name is not None:
            fields[name] = b64e(value) if isinstance(value, bytes) else value
    return fields


def _message(item: Item) -> StoredMessage:
    return StoredMessage.model_validate(message_fields(item))
