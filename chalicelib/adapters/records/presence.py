"""Who is online: a record per WebSocket connection, and copies under its member and under
each of the member's channels, so a message costs one query to find its connections.

Every copy carries a TTL a little past API Gateway's two-hour connection limit, so presence
a lost ``$disconnect`` left behind goes away by itself. Under ``bocage serve`` every copy also
names the replica that holds the connection, so any replica knows where to push; on AWS
(no replica) the items are as they always were.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import BaseModel, ConfigDict

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.ports import Item, Store, Target

PAGE = 1000  # a channel's connections are read on every message: few, large pages


class Connection(BaseModel):
    """One open WebSocket; ``org_id`` and ``connected_at`` are on the connection's own record only,
    ``connected_ms`` (API Gateway's ``connectedAt``) on it and on the member's copy, where it
    orders a device's connections (the oldest are closed past the cap)."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    connection_id: str
    member_id: str
    device_id: str
    expires_at: int
    org_id: str | None = None
    connected_at: int | None = None
    replica: str | None = None
    connected_ms: int | None = None


_INDEXED = {"connection_id", "member_id", "device_id", "expires_at", "replica"}
_MEMBER_COPY = _INDEXED | {"connected_ms"}


class Presence:
    def __init__(self, store: Store) -> None:
        self._store = store

    def connect(self, connection: Connection, channel_ids: Iterable[str]) -> None:
        """The connection's record and its copies under its member and channels, in one batch."""
        cid = connection.connection_id
        puts: list[Item] = [
            keys.record(keys.connection(cid), connection.model_dump(mode="json", exclude_none=True)),
            _copy(keys.member_connection(connection.member_id, cid), connection, _MEMBER_COPY),
            *(_copy(keys.channel_connection(c, cid), connection) for c in channel_ids),
        ]
        self._store.batch_write(puts=puts)

    def get(self, connection_id: str) -> Connection | None:
        item = self._store.get(*keys.connection(connection_id))
        return None if item is None else Connection.model_validate(item)

    def forget(self, connection: Connection, channel_ids: Iterable[str]) -> None:
        cid = connection.connection_id
        self._store.batch_write(
            deletes=[
                keys.connection(cid),
                keys.member_connection(connection.member_id, cid),
                *(keys.channel_connection(c, cid) for c in channel_ids),
            ]
        )

    def targets_in_channel(self, channel_id: str) -> Iterator[Target]:
        """The channel's connections and their replicas: read on every message, so no model each.

        An eventually consistent read (half the cost): a connection made in the last second may
        miss one live push, which its device reads on the catch-up it makes after connecting.
        """
        for item in self._items(keys.channel_partition(channel_id), consistent=False):
            yield Target(str(item["connection_id"]), item.get("replica"), item.get("device_id"))

    def of_member(self, member_id: str) -> Iterator[Connection]:
        return self._connections(keys.member_partition(member_id))

    def of_device(self, member_id: str, device_id: str) -> list[Connection]:
        """A device's connections, oldest first (ties, within a millisecond, by id)."""
        mine = (c for c in self.of_member(member_id) if c.device_id == device_id)
        return sorted(mine, key=lambda c: (c.connected_ms or 0, c.connection_id))

    def add_to_channel(self, channel_id: str, connections: Iterable[Connection]) -> None:
        """A member joined: their open connections start receiving the channel."""
        puts = [_copy(keys.channel_connection(channel_id, c.connection_id), c) for c in connections]
        self._store.batch_write(puts=puts)

    def remove_from_channel(self, channel_id: str, connections: Iterable[Connection]) -> None:
        deletes = [keys.channel_connection(channel_id, c.connection_id) for c in connections]
        self._store.batch_write(deletes=deletes)

    def _connections(self, pk: str) -> Iterator[Connection]:
        for item in self._items(pk):
            yield Connection.model_validate(item)

    def _items(self, pk: str, *, consistent: bool = True) -> Iterator[Item]:
        """Strong by default: closing a revoked device's connections must see them all."""
        return query_all(self._store, pk, keys.CONNECTION_PREFIX, page_size=PAGE, consistent=consistent)


def _copy(key: keys.Key, connection: Connection, fields: set[str] = _INDEXED) -> Item:
    return keys.record(key, connection.model_dump(mode="json", include=fields, exclude_none=True))
