"""Who is online, and pushing to them: WebSocket presence and fan-out.

Presence is written once per connection (not per message): the connection's
record, one item under its member, and one under each of the member's channels,
all with a TTL a little past API Gateway's two-hour connection limit. A message
costs one presence query; small channels are pushed inline, large ones are cut
into chunks handed to a queue and pushed in parallel by the queue's consumers. A Push that
takes many connections at once (``BatchPush``: ``bocage serve``, whose replicas each hold some
connections) gets the whole channel in one call, with the frame serialised once.

Coalescing: a queue consumer takes a batch of chunks at once (up to ten SQS records); the
frames of that batch bound for one connection go out as one ``batch`` WebSocket message, up to
32 KB (API Gateway's billing unit), in their order. No window is waited for: a lone chunk is
pushed as soon as the consumer has it, so coalescing costs no latency; it happens when
messages arrive together (a burst, a consumer catching up). The inline path (channels up to
``inline_limit`` connections) has one frame per connection per invocation, so nothing to join.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.messages import MessageRecords
from chalicelib.adapters.records.presence import Connection, Presence
from chalicelib.domain.frames import (
    CLOSE_REPLACED,
    ErrorFrame,
    Frame,
    JoinedFrame,
    LeftFrame,
    MembershipFrame,
    MessageFrame,
    coalesce,
    frame_bytes,
    frame_dict,
    parse_frame,
)
from chalicelib.domain.roster import ChannelCounters
from chalicelib.errors import Replaced
from chalicelib.ports import BatchPush, Clock, ConnectionGone, LocalConnections, Push, Queue, Store, Target
from chalicelib.services.roster_cache import RosterCache


class OfflineNotifier(Protocol):
    """Wakes a channel's devices the fan-out did not reach (chalicelib/services/notifications.py)."""

    def anyone_to_wake(
        self, channel_id: str, reached: Iterable[str], counters: ChannelCounters | None = None
    ) -> bool: ...

    def notify(
        self, channel_id: str, reached: Iterable[str], named: Iterable[str], counters: ChannelCounters | None
    ) -> int: ...


PRESENCE_TTL = 2 * 3600 + 600  # API Gateway closes connections after 2 hours
#: Open connections a device may hold (tabs, windows); a newer one closes the oldest past it.
MAX_PER_DEVICE = 5
REPLACED_REASON = "replaced by a newer connection of this device"
INLINE_LIMIT = 50
CHUNK_SIZE = 100

logger = logging.getLogger(__name__)


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
        replica: str | None = None,
        max_per_device: int = MAX_PER_DEVICE,
        notifier: OfflineNotifier | None = None,
        local: LocalConnections | None = None,
    ) -> None:
        self._presence = Presence(store)
        self._memberships = ChannelRecords(store)
        self._messages = MessageRecords(store)
        self._clock = clock
        self._push = push
        self._batch = push if isinstance(push, BatchPush) else None
        self._queue = queue
        self._replica = replica  # the bocage serve replica holding this process's connections
        self._inline_limit = inline_limit
        self._chunk_size = chunk_size
        self._max_per_device = max_per_device
        self._notifier = notifier
        # bocage serve: this process's connections in memory, and the channels' members per
        # roster version; a send reads presence only when other replicas hold connections.
        self._local = local
        self._members = RosterCache(store, clock) if local is not None else None

    # -- connections -----------------------------------------------------------------------

    def connect(
        self,
        connection_id: str,
        *,
        org_id: str,
        member_id: str,
        device_id: str,
        channels: list[str],
        connected_ms: int | None = None,
    ) -> list[str]:
        """Write the connection's presence, then close the device's oldest connections past
        ``max_per_device``; returns the ids closed.

        Without transactions two simultaneous connects may each miss the other: the device then
        holds one connection too many until its next connect trims it (both agree on the order).
        """
        now = self._clock.now()
        connection = Connection(
            connection_id=connection_id,
            member_id=member_id,
            device_id=device_id,
            expires_at=now + PRESENCE_TTL,
            org_id=org_id,
            connected_at=now,
            replica=self._replica,
            connected_ms=connected_ms if connected_ms else now * 1000,
        )
        self._presence.connect(connection, channels)
        if self._local is not None:
            self._local.add(connection_id, member_id, device_id)
        return self._trim(connection)

    def _trim(self, newest: Connection) -> list[str]:
        """The device's connections past the cap, oldest first, told why then closed (never
        ``newest``: it is not open yet, and it is the one the user is looking at)."""
        mine = self._presence.of_device(newest.member_id, newest.device_id)
        others = [c for c in mine if c.connection_id != newest.connection_id]
        excess = others[: max(0, len(others) + 1 - self._max_per_device)]
        refusal = ErrorFrame.of(
            Replaced(
                f"this device opened more than {self._max_per_device} connections; its oldest are closed"
            )
        )
        for old in excess:
            self.send_to(old.connection_id, refusal)  # API Gateway's close carries no code: this does
            self._push.close(old.connection_id, CLOSE_REPLACED, REPLACED_REASON)
            self.disconnect(old.connection_id)
        return [c.connection_id for c in excess]

    def connection(self, connection_id: str) -> Connection | None:
        return self._presence.get(connection_id)

    def disconnect(self, connection_id: str) -> None:
        """Forget a connection everywhere; safe to call twice (a 410 and a $disconnect may both come)."""
        if self._local is not None:
            self._local.remove(connection_id)
        connection = self.connection(connection_id)
        if connection is None:
            return
        self._presence.forget(connection, self._memberships.channel_ids_of(connection.member_id))

    def close_device(self, member_id: str, device_id: str) -> None:
        """A revoked device loses its live connections at once."""
        for connection in list(self._presence.of_member(member_id)):
            if connection.device_id == device_id:
                self._push.close(connection.connection_id)
                self.disconnect(connection.connection_id)

    # -- membership events (MembershipNotifier) ----------------------------------------------

    def joined(self, channel_id: str, member_id: str, frame: JoinedFrame) -> None:
        self._presence.add_to_channel(channel_id, self._presence.of_member(member_id))
        self.publish(channel_id, frame)

    def left(self, channel_id: str, member_id: str, frame: LeftFrame) -> None:
        theirs = list(self._presence.of_member(member_id))
        self._presence.remove_from_channel(channel_id, theirs)
        self.publish(channel_id, frame)
        for connection in theirs:
            self.send_to(connection.connection_id, frame)

    def changed(self, channel_id: str, frame: MembershipFrame) -> None:
        self.publish(channel_id, frame)

    # -- fan-out ------------------------------------------------------------------------------

    def publish(
        self,
        channel_id: str,
        frame: Frame,
        *,
        seq: int | None = None,
        skip_device: str | None = None,
        wake: bool = False,
        named: tuple[str, ...] = (),
        counters: ChannelCounters | None = None,
    ) -> int:
        """Push a frame to every online device of a channel; returns how many connections.

        For a stored message pass ``seq``: queued chunks then carry only the reference,
        and each consumer reads the message once, whatever the chunk's size. ``skip_device``:
        the device that sent the message has it already (its other devices still get it).
        ``wake``: the channel's devices with no live connection get a Web Push (a new message),
        through the queue when there is one (the sender does not wait on push services).
        ``named``: the sender's ``notify``, the members in "mentions only" mode it may wake.
        ``counters``: the channel's, as the write that numbered the message returned them: the
        roster version the in-memory fan-out and the Web Push check go by, with no read of it.
        """
        targets = [
            t
            for t in self._targets(channel_id, counters)
            if skip_device is None or t.device_id != skip_device
        ]
        bodies: list[str] = []
        if len(targets) <= self._inline_limit or self._queue is None:
            self._push_all(targets, frame_bytes(frame))
        else:
            bodies = self._chunks(channel_id, targets, frame, seq)
        if wake and self._notifier is not None:
            reached = sorted({d for d in (*(t.device_id for t in targets), skip_device) if d})
            if self._queue is None:
                self._wake(channel_id, reached, named, counters)
            elif self._anyone_to_wake(channel_id, reached, counters):
                # the push services' round trips are a consumer's to wait for, never the sender's
                wake_body: dict[str, Any] = {"channel_id": channel_id, "wake": reached}
                if named:
                    wake_body["named"] = list(named)
                bodies.append(json.dumps(wake_body))
        if bodies and self._queue is not None:
            self._queue.send_batch(bodies)
        return len(targets)

    def _targets(self, channel_id: str, counters: ChannelCounters | None) -> Iterable[Target]:
        """The channel's connections: from memory when this process holds them all, else presence."""
        if self._local is not None and self._members is not None:
            mine = self._local.of_members(self._members.member_ids(channel_id, counters))
            if mine is not None:
                return mine
        return self._presence.targets_in_channel(channel_id)

    def _chunks(self, channel_id: str, targets: list[Target], frame: Frame, seq: int | None) -> list[str]:
        reference: dict[str, Any] = {"seq": seq} if seq is not None else {"frame": frame_dict(frame)}
        return [
            json.dumps({"channel_id": channel_id, **reference, **_chunk(targets[i : i + self._chunk_size])})
            for i in range(0, len(targets), self._chunk_size)
        ]

    def _anyone_to_wake(self, channel_id: str, reached: list[str], counters: ChannelCounters | None) -> bool:
        """Whether a wake-up is worth queueing (no queue message, and on bocage serve no thread
        woken, for a channel with no subscribed device offline); when the check fails, queue it."""
        if self._notifier is None:
            return False
        try:
            return self._notifier.anyone_to_wake(channel_id, reached, counters)
        except Exception:
            logger.warning("web push pre-check failed", exc_info=True)
            return True

    def _wake(
        self, channel_id: str, reached: list[str], named: Iterable[str], counters: ChannelCounters | None
    ) -> int:
        """Web Push to the offline devices; a failure costs only the pushes, never the send."""
        if self._notifier is None:
            return 0
        try:
            return self._notifier.notify(channel_id, reached, named, counters)
        except Exception:
            logger.warning("web push fan-out failed", exc_info=True)
            return 0

    def deliver_chunk(self, body: str) -> int:
        """Queue consumer: push one chunk; returns deliveries made."""
        return self.deliver_chunks([body])

    def deliver_chunks(self, bodies: list[str]) -> int:
        """Queue consumer: push a batch of chunks, each connection's frames coalesced into as
        few WebSocket messages as fit, in the batch's order, then its Web Push wake-ups; returns the
        frames and wake-ups delivered."""
        outbox: dict[Target, list[bytes]] = {}
        wakes: list[dict[str, Any]] = []
        for body in bodies:
            chunk = json.loads(body)
            if "wake" in chunk:
                wakes.append(chunk)
                continue
            frame = self._chunk_frame(chunk)
            if frame is None:  # the message was deleted or expired meanwhile: nothing to deliver
                continue
            data = frame_bytes(frame)  # once per chunk, whatever its size
            replicas = chunk.get("replicas") or [None] * len(chunk["connections"])
            for connection_id, replica in zip(chunk["connections"], replicas, strict=True):
                outbox.setdefault(Target(connection_id, replica), []).append(data)
        delivered = self._push_coalesced(outbox)
        for wake in wakes:  # the push services' round trips after the live pushes, never before
            delivered += self._wake(wake["channel_id"], wake["wake"], wake.get("named", ()), None)
        return delivered

    def _push_coalesced(self, outbox: dict[Target, list[bytes]]) -> int:
        """Each connection's frames as few messages as fit; connections whose messages are the
        same bytes (the common case: one chunk's frame) share one ``_push_each``."""
        same: dict[tuple[bytes, ...], list[Target]] = {}
        frames_of: dict[str, int] = {}
        for target, frames in outbox.items():
            same.setdefault(tuple(coalesce(frames)), []).append(target)
            frames_of[target.connection_id] = len(frames)
        delivered: set[str] = set()
        lost: set[str] = set()
        for messages, targets in same.items():
            for data in messages:
                live = [t for t in targets if t.connection_id not in lost]
                reached = self._push_each(live, data)
                lost.update(t.connection_id for t in live if t.connection_id not in reached)
                delivered.update(reached)
        return sum(frames_of[c] for c in delivered if c not in lost)

    def _chunk_frame(self, chunk: dict[str, Any]) -> Frame | None:
        if "frame" in chunk:
            frame: Frame = parse_frame(chunk["frame"])
            return frame
        message = self._messages.get(chunk["channel_id"], int(chunk["seq"]))
        return None if message is None else MessageFrame(message=message)

    def send_to(self, connection_id: str, frame: Frame) -> bool:
        return self._send(connection_id, frame_bytes(frame))

    def send_to_device(self, member_id: str, device_id: str, frame: Frame) -> int:
        """One frame to every open connection of one device; returns how many (0: offline)."""
        data = frame_bytes(frame)
        connections = self._presence.of_device(member_id, device_id)
        return sum(1 for c in connections if self._send(c.connection_id, data))

    def send_to_member(self, member_id: str, frame: Frame, *, skip: set[str]) -> int:
        """One frame to the connections of a member's devices but those in ``skip`` (one
        presence query); returns how many."""
        data = frame_bytes(frame)
        others = [c for c in self._presence.of_member(member_id) if c.device_id not in skip]
        return sum(1 for c in others if self._send(c.connection_id, data))

    def _push_all(self, targets: list[Target], data: bytes) -> int:
        """One frame to every target; returns deliveries made."""
        return len(self._push_each(targets, data))

    def _push_each(self, targets: list[Target], data: bytes) -> set[str]:
        """One message to every target; returns the connections it reached."""
        if self._batch is None:
            return {t.connection_id for t in targets if self._send(t.connection_id, data)}
        gone = self._batch.send_many(targets, data)
        for connection_id in gone:
            self.disconnect(connection_id)
        return {t.connection_id for t in targets} - set(gone)

    def _send(self, connection_id: str, data: bytes) -> bool:
        """One push; a failing or timed-out connection costs only its own copy, never the
        others' nor the caller's (the message is stored: that device reads it on catch-up)."""
        try:
            self._push.send(connection_id, data)
            return True
        except ConnectionGone as gone:
            self.disconnect(gone.connection_id)  # exactly the stale one, never the sender's
            return False
        except Exception:
            logger.warning("push failed", extra={"connection_id": connection_id}, exc_info=True)
            return False


def _chunk(targets: list[Target]) -> dict[str, Any]:
    """A chunk's connections, and their replicas only when some are set (never on AWS)."""
    chunk: dict[str, Any] = {"connections": [t.connection_id for t in targets]}
    if any(t.replica is not None for t in targets):
        chunk["replicas"] = [t.replica for t in targets]
    return chunk
