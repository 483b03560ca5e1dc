"""The records replicas of `bocage serve` share through the store, on both adapters: the
directory, the shared secret, job leases, and presence that names a connection's replica."""

from __future__ import annotations

from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.cluster import ClusterRecords, Replica
from chalicelib.adapters.records.presence import Connection, Presence
from chalicelib.ports import Store, Target


def test_the_directory_lists_live_replicas_only(app_store: Store, clock: ManualClock) -> None:
    records = ClusterRecords(app_store)
    now = clock.now()
    records.announce(Replica("r1", "http://10.0.0.1:8081", now + 20))
    records.announce(Replica("r2", "http://10.0.0.2:8081", now + 5))
    assert {r.replica_id: r.address for r in records.replicas()} == {
        "r1": "http://10.0.0.1:8081",
        "r2": "http://10.0.0.2:8081",
    }
    clock.advance(10)  # r2 missed its heartbeats
    assert [r.replica_id for r in records.replicas()] == ["r1"]
    records.leave("r1")
    assert records.replicas() == []


def test_the_first_secret_written_is_everyones(app_store: Store) -> None:
    records = ClusterRecords(app_store)
    assert records.shared_secret("first") == "first"
    assert records.shared_secret("second") == "first"


def test_a_job_slot_is_claimed_once_and_freed_when_it_expires(app_store: Store, clock: ManualClock) -> None:
    records = ClusterRecords(app_store)
    until = clock.now() + 120
    assert records.claim("retention", 7, "r1", until)
    assert not records.claim("retention", 7, "r2", until)
    assert records.claim("retention", 8, "r2", until)  # the next slot
    assert records.claim("billing", 7, "r2", until)  # another job
    clock.advance(121)
    assert records.claim("retention", 7, "r3", until + 200)


def test_presence_names_the_replica_only_when_there_is_one(app_store: Store) -> None:
    presence = Presence(app_store)
    on_aws = Connection(connection_id="k1", member_id="m", device_id="d", expires_at=10**10, org_id="o")
    served = on_aws.model_copy(update={"connection_id": "k2", "replica": "r1"})
    presence.connect(on_aws, ["c"])
    presence.connect(served, ["c"])
    assert sorted(presence.targets_in_channel("c"), key=lambda t: t.connection_id) == [
        Target("k1", None, "d"),
        Target("k2", "r1", "d"),
    ]
    assert presence.get("k2") == served
    assert "replica" not in (app_store.get(*keys.connection("k1")) or {})  # AWS items as before
    assert "replica" not in (app_store.get(*keys.channel_connection("c", "k1")) or {})
