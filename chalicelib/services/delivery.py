"""Who is online, and pushing to them: WebSocket presence and fan-out.

Presence is written once per connection (not per message): the connection's
record, one item under its member, and one under each of the member's channels,
all with a TTL a little past API Gateway's two-hour connection limit. A message
costs one presence query; small channels are pushed inline, large ones are cut
into chunks handed to a queue and pushed in parallel by the queue's consumers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.ports import Clock, ConnectionGone, Item, Push, Queue, Store

PRESENCE_TTL = 2 * 3600 + 600  # API Gateway closes connections after 2 hours
INLINE_LIMIT = 50
CHUNK_SIZE = 100
PAGE = 1000


def frame_bytes(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Delivery:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        push: Push,
        queue: Queue | None,
        *,
        inline_limit: int = INLINE_LIMIT,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._store = store
        self._clock = clock
        self._push = push
        self._queue = queue
        self._inline_limit = inline_limit
        self._chunk_size = chunk_size

    # -- connections -----------------------------------------------------------------------

    def connect(
        self, connection_id: str, *, org_id: str, member_id: str, device_id: str, channels: list[str]
    ) -> None:
        expires = self._clock.now() + PRESENCE_TTL
        base = {
            "connection_id": connection_id,
            "member_id": member_id,
            "device_id": device_id,
            "expires_at": expires,
        }
        conn_pk, conn_sk = keys.connection(connection_id)
        puts: list[Item] = [
            {"pk": conn_pk, "sk": conn_sk, **base, "org_id": org_id, "connected_at": self._clock.now()},
            keys.record(keys.member_connection(member_id, connection_id), base),
            *(keys.record(keys.channel_connection(c, connection_id), base) for c in channels),
        ]
        self._store.batch_write(puts=puts)

    def connection(self, connection_id: str) -> Item | None:
        return self._store.get(*keys.connection(connection_id))

    def disconnect(self, connection_id: str) -> None:
        """Forget a connection everywhere; safe to call twice (a 410 and a $disconnect may both come)."""
        record = self.connection(connection_id)
        if record is None:
            return
        member_id = record["member_id"]
        channels = [c for c in self._channels_of(member_id)]
        self._store.batch_write(
            deletes=[
                keys.connection(connection_id),
                keys.member_connection(member_id, connection_id),
                *(keys.channel_connection(c, connection_id) for c in channels),
            ]
        )

    def close_device(self, member_id: str, device_id: str) -> None:
        """A revoked device loses its live connections at once."""
        for item in list(self._member_connections(member_id)):
            if item["device_id"] == device_id:
                self._push.close(item["connection_id"])
                self.disconnect(item["connection_id"])

    # -- membership events (MembershipNotifier) ----------------------------------------------

    def joined(self, channel_id: str, member_id: str, event: dict[str, Any]) -> None:
        puts = [
            keys.record(keys.channel_connection(channel_id, item["connection_id"]), _presence(item))
            for item in self._member_connections(member_id)
        ]
        self._store.batch_write(puts=puts)
        self.publish(channel_id, event)

    def left(self, channel_id: str, member_id: str, event: dict[str, Any]) -> None:
        theirs = list(self._member_connections(member_id))
        self._store.batch_write(
            deletes=[keys.channel_connection(channel_id, i["connection_id"]) for i in theirs]
        )
        self.publish(channel_id, event)
        for item in theirs:
            self.send_to(item["connection_id"], event)

    def changed(self, channel_id: str, event: dict[str, Any]) -> None:
        self.publish(channel_id, event)

    # -- fan-out ------------------------------------------------------------------------------

    def publish(self, channel_id: str, frame: dict[str, Any], *, seq: int | None = None) -> int:
        """Push a frame to every online device of a channel; returns how many connections.

        For a stored message pass ``seq``: queued chunks then carry only the reference,
        and each consumer reads the message once, whatever the chunk's size.
        """
        targets = [item["connection_id"] for item in self._channel_connections(channel_id)]
        if len(targets) <= self._inline_limit or self._queue is None:
            data = frame_bytes(frame)
            for connection_id in targets:
                self._send(connection_id, data)
            return len(targets)
        reference: dict[str, Any] = {"seq": seq} if seq is not None else {"frame": frame}
        bodies = [
            json.dumps(
                {"channel_id": channel_id, **reference, "connections": targets[i : i + self._chunk_size]}
            )
            for i in range(0, len(targets), self._chunk_size)
        ]
        self._queue.send_batch(bodies)
        return len(targets)

    def deliver_chunk(self, body: str) -> int:
        """Queue consumer: push one chunk; returns deliveries made."""
        chunk = json.loads(body)
        frame = chunk.get("frame")
        if frame is None:
            item = self._store.get(*keys.message(chunk["channel_id"], int(chunk["seq"])))
            if item is None:  # deleted or expired meanwhile: nothing to deliver
                return 0
            frame = message_frame(item)
        data = frame_bytes(frame)
        return sum(1 for connection_id in chunk["connections"] if self._send(connection_id, data))

    def send_to(self, connection_id: str, frame: dict[str, Any]) -> bool:
        return self._send(connection_id, frame_bytes(frame))

    def _send(self, connection_id: str, data: bytes) -> bool:
        try:
            self._push.send(connection_id, data)
            return True
        except ConnectionGone as gone:
            self.disconnect(gone.connection_id)  # exactly the stale one, never the sender's
            return False

    # -- queries ------------------------------------------------------------------------------

    def _channel_connections(self, channel_id: str) -> Iterator[Item]:
        return self._all(f"CHAN#{channel_id}", keys.CONNECTION_PREFIX)

    def _member_connections(self, member_id: str) -> Iterator[Item]:
        return self._all(f"MEMBER#{member_id}", keys.CONNECTION_PREFIX)

    def _channels_of(self, member_id: str) -> Iterator[str]:
        for item in self._all(f"MEMBER#{member_id}", keys.CHANNEL_PREFIX):
            yield str(item["channel_id"])

    def _all(self, pk: str, prefix: str) -> Iterator[Item]:
        return query_all(self._store, pk, prefix, page_size=PAGE)


def _presence(item: Item) -> dict[str, Any]:
    return {k: item[k] for k in ("connection_id", "member_id", "device_id", "expires_at")}


def public_message(item: Item) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


def message_frame(item: Item) -> dict[str, Any]:
    return {"type": "message", "message": public_message(item)}
