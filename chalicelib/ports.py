"""The ports the services depend on. Adapters implement them at the edge.

Services never import boto3, sqlite3 or smtplib: they receive these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# An item is a flat-ish JSON-like mapping: str, int, bool, None, list and dict
# values (no floats: money is integer cents, times are epoch seconds). Every item
# has string keys "pk" and "sk"; "expires_at" (epoch seconds) is the TTL attribute.
Item = dict[str, Any]

#: DynamoDB's item size limit, enforced identically by every adapter.
MAX_ITEM_BYTES = 400 * 1024


@dataclass(frozen=True)
class Page:
    """One page of a query; ``cursor`` is opaque and None on the last page."""

    items: list[Item]
    cursor: str | None = None


class Clock(Protocol):
    def now(self) -> int:
        """Current time in whole epoch seconds."""
        ...


class Store(Protocol):
    """A single-table, DynamoDB-shaped key-value store.

    Items past their ``expires_at`` are never returned by any read, and count
    as absent for ``if_absent`` writes, whether or not they are deleted yet.
    Only single-item conditional writes: no transactions (docs/architecture.md, "The store contract").
    """

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        """One item. ``consistent=False`` may miss a write of the last second (half the cost on
        DynamoDB): only for reads whose callers tolerate that (docs/architecture.md)."""
        ...

    def put(
        self,
        item: Item,
        *,
        if_absent: bool = False,
        if_match: Mapping[str, Any] | None = None,
    ) -> None:
        """Write an item whole.

        ``if_absent``: fail unless no live item has this key.
        ``if_match``: fail unless a live item exists whose attributes equal these values (a
        value ``None``: whose attribute is absent, as items hold no ``None``).
        Raises ``ConditionFailed`` when a condition does not hold, ``ItemTooLarge``
        over ``MAX_ITEM_BYTES``.
        """
        ...

    def delete(self, pk: str, sk: str) -> None: ...

    def query(
        self,
        pk: str,
        *,
        prefix: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        descending: bool = False,
        consistent: bool = True,
    ) -> Page:
        """Items of one partition in sort-key order.

        Either ``prefix`` or an inclusive ``start``/``end`` range (either bound
        optional). ``cursor`` is a previous page's cursor, stable under writes. ``consistent`` as
        for ``get``.
        """
        ...

    def increment(
        self,
        pk: str,
        sk: str,
        attribute: str,
        amount: int = 1,
        *,
        expires_at: int | None = None,
        also: Mapping[str, int] | None = None,
    ) -> int:
        """Atomically add ``amount`` to an integer attribute (created at 0); return the new value.

        ``also``: more integer attributes to add to in the same single write (one write unit for
        a small item, however many counters move), e.g. a message number and a monthly count.
        """
        ...

    def increment_item(self, pk: str, sk: str, name: str, *, also: Mapping[str, int] | None = None) -> Item:
        """``increment`` by one, returning the whole item as that one write left it: its other
        attributes with no read of their own (a send's number and the roster version)."""
        ...

    def batch_write(self, puts: Iterable[Item] = (), deletes: Iterable[tuple[str, str]] = ()) -> None:
        """Unconditional puts and deletes, any number (adapters chunk by 25)."""
        ...


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    inline_id: str | None = None  # Content-ID for an inline image in the HTML part


@dataclass(frozen=True)
class MailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None
    attachments: Sequence[Attachment] = field(default_factory=tuple)


class Mailer(Protocol):
    def send(self, message: MailMessage) -> None:
        """Deliver one message, or raise."""
        ...


class ConnectionGone(Exception):
    """The WebSocket connection no longer exists (API Gateway answered 410 Gone)."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(connection_id)
        self.connection_id = connection_id


class Push(Protocol):
    def send(self, connection_id: str, data: bytes) -> None:
        """Deliver one frame to one WebSocket connection; ``ConnectionGone`` if it is stale."""
        ...

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        """Close a connection (e.g. its device was revoked); a missing one is not an error.

        ``code`` and ``reason`` reach the client under ``bocage serve`` only: API Gateway's
        @connections DELETE takes neither (its clients see 1000), hence an error frame first.
        """
        ...


@dataclass(frozen=True)
class Target:
    """A connection to push to, and the replica of ``bocage serve`` that holds it (None on AWS)."""

    connection_id: str
    replica: str | None = None
    device_id: str | None = None  # known from presence: a send skips the sending device's own


class LocalConnections(Protocol):
    """The connections this very process holds, known in memory (``bocage serve``).

    A send finds its channel's connections here instead of in the store's presence items, but
    only while this process holds every live connection there is (a replica alone on its store):
    otherwise ``of_members`` answers None and presence is read as before.
    """

    def add(self, connection_id: str, member_id: str, device_id: str) -> None: ...

    def remove(self, connection_id: str) -> None: ...

    def of_members(self, member_ids: Iterable[str]) -> list[Target] | None:
        """These members' connections, or None when other processes may hold some."""
        ...


@runtime_checkable
class BatchPush(Push, Protocol):
    """A Push that takes one frame for many connections at once, serialising it once."""

    def send_many(self, targets: Sequence[Target], data: bytes) -> list[str]:
        """Deliver one frame to each target; returns the ids of the connections that are gone."""
        ...


class Queue(Protocol):
    def send_batch(self, bodies: Sequence[str]) -> None:
        """Enqueue message bodies (JSON text) for asynchronous processing; any number."""
        ...


# -- Web Push (RFC 8030): waking a device that has no live WebSocket ---------------------------


@dataclass(frozen=True)
class PushRequest:
    """One push to one device's subscription: ``payload`` is sealed for it by the sender."""

    device_id: str
    endpoint: str
    p256dh: str
    auth: str
    payload: bytes


class WebPush(Protocol):
    @property
    def public_key(self) -> str:
        """The VAPID public key clients subscribe with."""
        ...

    def send_many(self, requests: Sequence[PushRequest]) -> list[str]:
        """Send each push; returns the device ids whose subscription is gone (404 or 410).
        Any other failure costs only that push (the message is stored: the device reads it
        when it opens the app)."""


# -- Object storage (files, docs/protocol.md section 18) ----------------------------------------


@dataclass(frozen=True)
class SignedUrl:
    """A short-lived URL a client uses directly, so a file's bytes never pass through the API.

    ``headers`` are those the request must carry as they are (they are part of the signature)."""

    url: str
    method: str
    expires_at: int
    headers: Mapping[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    """Where encrypted file blobs live (S3 or a directory of ``bocage serve``), by opaque key."""

    def upload_url(self, key: str, size: int, expires_in: int) -> SignedUrl:
        """A URL accepting one PUT of exactly ``size`` bytes at ``key`` until it expires."""
        ...

    def download_url(self, key: str, expires_in: int) -> SignedUrl:
        """A URL from which the blob at ``key`` can be fetched (GET) until it expires."""
        ...

    def size_of(self, key: str) -> int | None:
        """The stored blob's length in bytes, or None when nothing was uploaded at ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob at ``key`` and give its space back; a missing one is not an error."""
        ...

    def set_lifetime(self, key: str, days: int) -> None:
        """Let the store itself delete the blob ``days`` after its upload (one of the
        ``LIFETIME_CLASSES``): a backstop to the purge job, where the store has one."""
        ...
