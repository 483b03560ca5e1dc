"""Delivery with a Push that takes a whole channel at once (``BatchPush``, as `bocage serve`'s)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from chalicelib.adapters.clocks import ManualClock
from chalicelib.domain.frames import PongFrame
from chalicelib.ports import BatchPush, Store, Target
from chalicelib.services.delivery import Delivery
from tests.support import RecordingPush


class RecordingBatchPush:
    def __init__(self, gone: set[str]) -> None:
        self.batches: list[tuple[list[Target], bytes]] = []
        self.gone = gone

    def send(self, connection_id: str, data: bytes) -> None:
        raise AssertionError("a batch push gets the whole channel at once")

    def send_many(self, targets: Sequence[Target], data: bytes) -> list[str]:
        self.batches.append((list(targets), data))
        return [t.connection_id for t in targets if t.connection_id in self.gone]

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        pass


def connect(delivery: Delivery, *connection_ids: str) -> None:
    for cid in connection_ids:
        delivery.connect(cid, org_id="o", member_id=f"m_{cid}", device_id=f"d_{cid}", channels=["c"])


def test_a_channel_is_one_batch_with_each_connections_replica(app_store: Store, clock: ManualClock) -> None:
    push = RecordingBatchPush(gone={"k2"})
    assert isinstance(push, BatchPush) and not isinstance(RecordingPush(), BatchPush)
    here = Delivery(app_store, clock, push, None, replica="r1")
    there = Delivery(app_store, clock, push, None, replica="r2")
    connect(here, "k1", "k2")
    connect(there, "k3")
    assert here.publish("c", PongFrame()) == 3
    ((targets, data),) = push.batches
    assert sorted(targets, key=lambda t: t.connection_id) == [
        Target("k1", "r1", "d_k1"),
        Target("k2", "r1", "d_k2"),
        Target("k3", "r2", "d_k3"),
    ]
    assert json.loads(data) == {"type": "pong", "ref": None}
    assert here.connection("k2") is None  # gone: forgotten everywhere
    assert here.connection("k1") is not None


def test_queued_chunks_carry_replicas_only_when_set(app_store: Store, clock: ManualClock) -> None:
    class Chunks:
        def __init__(self) -> None:
            self.bodies: list[str] = []

        def send_batch(self, bodies: Sequence[str]) -> None:
            self.bodies.extend(bodies)

    queue = Chunks()
    on_aws = Delivery(app_store, clock, RecordingPush(), queue, inline_limit=1)
    connect(on_aws, "a1", "a2")
    on_aws.publish("c", PongFrame())
    assert all("replicas" not in json.loads(body) for body in queue.bodies)  # SQS bodies as before

    push = RecordingBatchPush(gone=set())
    served = Delivery(app_store, clock, push, queue, inline_limit=1, replica="r9")
    connect(served, "s1")
    queue.bodies.clear()
    served.publish("c", PongFrame())
    (body,) = queue.bodies
    chunk = json.loads(body)
    assert dict(zip(chunk["connections"], chunk["replicas"], strict=True)) == {
        "a1": None,
        "a2": None,
        "s1": "r9",
    }
    assert served.deliver_chunk(body) == 3
    assert {(t.connection_id, t.replica) for t in push.batches[0][0]} == {
        ("a1", None),
        ("a2", None),
        ("s1", "r9"),
    }
