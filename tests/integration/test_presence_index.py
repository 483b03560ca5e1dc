"""A `bocage serve` replica's fan-out from memory (bocage/local/presence_index.py), on both
stores: while it is alone in the directory a send reaches exactly the channel's members'
connections held here, following joins and leaves through the roster version; once another
replica is listed, connections that replica holds are reached too (presence is read again).
Through the app too: a public tribe's follower, a guest and a member added after connecting
each get a post pushed live from memory."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from bocage.local.cluster import REFRESH, Directory, Membership
from bocage.local.presence_index import PresenceIndex
from chalicelib.adapters.clocks import ManualClock, SystemClock
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.cluster import ClusterRecords, Replica
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.followers import parse_join_url
from chalicelib.domain.frames import PongFrame
from chalicelib.ports import Store, Target
from chalicelib.services.delivery import Delivery
from tests.integration.test_followers import follow, public_tribe
from tests.support import People, RecordingPush, SignedApi


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


class CountingIndex(PresenceIndex):
    """The replica's index, counting the sends it answered from memory (presence not read)."""

    answered = 0

    def of_members(self, member_ids: Iterable[str]) -> list[Target] | None:
        found = super().of_members(member_ids)
        self.answered += found is not None
        return found


def listed_index(store: Store, clock: ManualClock, replica_id: str, ttl: int = 60) -> CountingIndex:
    """A replica announced in the store's directory, and its index, alone while no other is listed."""
    ClusterRecords(store).announce(Replica(replica_id, f"http://127.0.0.1/{replica_id}", clock.now() + ttl))
    directory = Directory(ClusterRecords(store))
    return CountingIndex(replica_id, lambda: directory.alone(replica_id))


def replica(store: Store, clock: ManualClock, sockets: Sockets, replica_id: str) -> Delivery:
    index = listed_index(store, clock, replica_id)
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


# -- through the app: the app's Delivery pushes from this index (tests/conftest.py) -----------------


@pytest.fixture
def local_connections(app_store: Store, clock: ManualClock) -> CountingIndex:
    return listed_index(app_store, clock, "r1", ttl=10**8)  # alone for the whole test


def pushed_texts(push: RecordingPush, connection_id: str, reader: Any) -> list[tuple[str, bool]]:
    """The posts pushed to a connection, as its device opens them: (text, verified)."""
    opened = [reader.open(f["message"]) for f in push.to(connection_id, "message")]
    return [(m.get("text", ""), bool(m["verified"])) for m in opened]


def test_a_follower_connected_to_a_lone_replica_gets_a_tribe_s_posts_live(
    people: People, api: SignedApi, push: RecordingPush, local_connections: CountingIndex, tmp_path: Path
) -> None:
    """Followers' places in a tribe sort apart from its members' (keys.channel_member): the
    members the replica pushes to must count them, or a follower's screen never shows a post."""
    tribe, url = public_tribe(people)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    assert api.ws_connect(lea.keys, "k-lea")["statusCode"] == 200
    assert people.owner.send_text(tribe, "Marché de Noël samedi")["online"] == 1
    assert pushed_texts(push, "k-lea", lea) == [("Marché de Noël samedi", True)]
    # Connected, she follows a second tribe (its roster version moves): its posts reach her too.
    market = people.owner.create_channel("tribe", "Le marché")["channel_id"]
    lea.follow(parse_join_url(people.owner.publish(market)["join_url"]), "Léa")
    answered = local_connections.answered
    people.owner.send_text(market, "Marché dimanche")
    assert pushed_texts(push, "k-lea", lea)[1:] == [("Marché dimanche", True)]
    assert local_connections.answered > answered  # from memory, not from presence
    lea.client.leave_as_follower()
    people.owner.send_text(tribe, "Après son départ")
    assert len(push.to("k-lea", "message")) == 2  # gone from the members pushed to


def test_a_guest_and_a_member_added_after_connecting_get_posts_live(
    people: People, api: SignedApi, push: RecordingPush, local_connections: CountingIndex
) -> None:
    bob, gus = people.join("bob"), people.join("gus", role="guest")
    assert api.ws_connect(people.keys["bob"], "k-bob")["statusCode"] == 200
    assert api.ws_connect(people.keys["gus"], "k-gus")["statusCode"] == 200
    group = people.owner.create_channel("group", "Chantier")["channel_id"]
    people.owner.send_text(group, "avant eux")
    for name in ("bob", "gus"):  # each a `joined`, after their connection was indexed
        people.owner.add_member(group, people.info[name]["member_id"])
    answered = local_connections.answered
    assert people.owner.send_text(group, "Réunion lundi")["online"] == 2
    assert local_connections.answered > answered
    assert pushed_texts(push, "k-bob", bob) == [("Réunion lundi", True)]
    assert pushed_texts(push, "k-gus", gus) == [("Réunion lundi", True)]
