"""bocage serve's in-process queue (bocage/local/local_queue.py): what a send hands off runs in
order, in batches of at most ten, on its consumer thread; a full queue makes the sender wait;
stopping runs what is queued; a failing batch does not stop the others."""

from __future__ import annotations

import threading
import time

from bocage.local.local_queue import BATCH, LocalQueue


def test_bodies_reach_the_consumer_in_order_in_batches_of_at_most_ten() -> None:
    batches: list[list[str]] = []
    release = threading.Event()

    def consume(batch: list[str]) -> None:
        release.wait(5)  # the first batch holds the consumer while the rest queue up
        batches.append(batch)

    q = LocalQueue()
    q.start(consume)
    q.send_batch([str(i) for i in range(25)])
    release.set()
    q.stop(timeout=5)
    assert [b for batch in batches for b in batch] == [str(i) for i in range(25)]
    assert all(1 <= len(batch) <= BATCH for batch in batches)
    assert len(batches) >= 3


def test_a_full_queue_makes_the_sender_wait_rather_than_grow() -> None:
    release = threading.Event()
    seen: list[str] = []

    def consume(batch: list[str]) -> None:
        release.wait(5)
        seen.extend(batch)

    q = LocalQueue(limit=2)
    q.start(consume)
    q.send_batch(["a"])  # taken by the consumer, which then holds
    time.sleep(0.2)
    q.send_batch(["b", "c"])  # fills the queue
    done = threading.Event()

    def send() -> None:
        q.send_batch(["d"])
        done.set()

    sender = threading.Thread(target=send)
    sender.start()
    assert not done.wait(0.5)  # no room: the sender waits
    release.set()
    assert done.wait(5)
    q.stop(timeout=5)
    sender.join(5)
    assert seen == ["a", "b", "c", "d"]


def test_stopping_runs_what_is_queued_and_a_failing_batch_stops_nothing() -> None:
    seen: list[str] = []

    def consume(batch: list[str]) -> None:
        if batch[0] == "bad":
            raise RuntimeError("a push service answered nonsense")
        seen.extend(batch)

    q = LocalQueue()
    q.start(consume)
    q.send_batch(["bad"])
    time.sleep(0.2)
    q.send_batch(["x", "y"])
    q.stop(timeout=5)
    assert seen == ["x", "y"]
