"""A `bocage serve` replica's fan-out from memory (bocage/local/presence_index.py), on both
stores: while it is alone in the directory a send reaches exactly the channel's members'
connections held here, following joins and leaves through the roster version; once another
replica is listed, connections that replica holds are reached too (presence is read again)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from bocage.local.cluster import REFRESH, Directory, Membership
from bocage.local.presence_index import PresenceIndex
from chalicelib.adapters.clocks import ManualClock, SystemClock
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.cluster import ClusterRecords, Replica
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.frames import PongFrame
from chalicelib.ports import Store, Target
from chalicelib.services.delivery import Delivery


class Sockets:
    """What each replica's sockets received, by connection (a BatchPush over all replicas)."""

    def __init__(self) -> None:
        self.received: dict[str, int] = {}
        self.open: set[str] = set()

    def send(self, connection_id: str, data: bytes) -> None:
        self.send_many([Target(connection_id)], data)

    def send_many(self, targets: Sequence[Target], data: bytes) -> list[str]:
        for t in targets:
            if t.connection_id in self.open:
                self.received[t.connection_id] = self.received.get(t.connection_id, 0) + 1
        return [t.connection_id for t in targets if t.connection_id not in self.open]

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        self.open.discard(connection_id)


def join(store: Store, channel_id: str, member_id: str) -> None:
    """What ChannelService does: the membership, then the roster version moves."""
    records = ChannelRecords(store)
    records.save_membership(
        ChannelMember(
            channel_id=channel_id, member_id=member_id, role=ChannelRole.MEMBER, added_at=1, added_by="o"
        )
    )
    records.bump_roster(channel_id)


def leave(store: Store, channel_id: str, member_id: str) -> None:
    records = ChannelRecords(store)
    records.remove_membership(channel_id, member_id, [])
    records.bump_roster(channel_id)


def replica(store: Store, clock: ManualClock, sockets: Sockets, replica_id: str) -> Delivery:
    ClusterRecords(store).announce(Replica(replica_id, f"http://127.0.0.1/{replica_id}", clock.now() + 60))
    directory = Directory(ClusterRecords(store))
    index = PresenceIndex(replica_id, lambda: directory.alone(replica_id))
    return Delivery(store, clock, sockets, None, replica=replica_id, local=index)


def connect(store: Store, delivery: Delivery, sockets: Sockets, connection_id: str, member_id: str) -> None:
    sockets.open.add(connection_id)
    channels = ChannelRecords(store).channel_ids_of(member_id)  # as $connect does
    delivery.connect(
        connection_id, org_id="o", member_id=member_id, device_id=f"d_{connection_id}", channels=channels
    )


def test_a_lone_replica_follows_joins_leaves_and_disconnects(app_store: Store, clock: ManualClock) -> None:
    sockets = Sockets()
    alone = replica(app_store, clock, sockets, "r1")
    join(app_store, "c", "alice")
    connect(app_store, alone, sockets, "k_alice", "alice")
    connect(app_store, alone, sockets, "k_bob", "bob")  # not in the channel yet
    connect(app_store, alone, sockets, "k_carol", "carol")
    assert alone.publish("c", PongFrame()) == 1
    join(app_store, "c", "bob")
    assert alone.publish("c", PongFrame()) == 2
    leave(app_store, "c", "alice")
    assert alone.publish("c", PongFrame(), skip_device="d_k_bob") == 0  # the sender's own device
    alone.disconnect("k_bob")
    assert alone.publish("c", PongFrame()) == 0
    assert sockets.received == {"k_alice": 2, "k_bob": 1}


def test_with_another_replica_listed_its_connections_are_reached_too(
    app_store: Store, clock: ManualClock
) -> None:
    sockets = Sockets()
    first = replica(app_store, clock, sockets, "r1")
    join(app_store, "c", "alice")
    join(app_store, "c", "bob")
    connect(app_store, first, sockets, "k_alice", "alice")
    second = replica(app_store, clock, sockets, "r2")
    connect(app_store, second, sockets, "k_bob", "bob")
    assert first.publish("c", PongFrame()) == 2  # a copy of the directory read now lists r2
    assert second.publish("c", PongFrame()) == 2
    assert sockets.received == {"k_alice": 2, "k_bob": 2}


def test_a_replica_joining_others_waits_until_they_have_re_read_the_directory(tmp_path: Path) -> None:
    """The first replica serves at once; the next waits past REFRESH, after which the first's
    directory copy, re-read, lists it: the first stops pushing from memory alone before the
    newcomer holds any connection. (On the system clock: heartbeats are dated by it.)"""
    app_store = SqliteStore(str(tmp_path / "bocage.sqlite3"), SystemClock())
    first = Membership(app_store, Replica("r1", "http://127.0.0.1:1", 0))
    started = time.monotonic()
    first.join()
    assert time.monotonic() - started < REFRESH
    directory = Directory(ClusterRecords(app_store))
    assert directory.alone("r1")
    started = time.monotonic()
    Membership(app_store, Replica("r2", "http://127.0.0.1:2", 0)).join()
    assert time.monotonic() - started >= REFRESH
    assert not directory.alone("r1")
    app_store.close()
