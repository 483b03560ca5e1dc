"""A public tribe at town scale (docs/protocol.md, 16): N followers join from its link, a tenth
of them are online, and its author sends one message to all of them.

Drives the real Chalice app in process (chalice.test.Client) on SQLite over a CountingStore,
with the real Python client on the author's side (it verifies every follower's certificate,
then seals its sender key to each in batches of 200) and the real WebSocket handlers for the
online followers (``$connect`` through the app, frames to a recording Push port). The fan-out
takes the queue path as on AWS: a channel with more than ``--inline-limit`` connections (50,
the Lambda's) is cut into chunks of 100 connections on the Queue port, here the in-process
``LocalQueue`` of ``bocage serve`` (one consumer thread, batches of up to ten, as SQS hands
them), whose consumer is the Fanout Lambda's ``Delivery.deliver_chunks``. Prints, as medians
over ``--runs``:

- per join: store operations and wall time of ``POST /join`` (the client's certificate is made
  before the clock starts);
- the first message: sealed keys and ``PUT /keys`` calls (the distribution: one seal per
  follower, once per epoch), its store operations, how many followers then find their key;
  the store writes of its ``POST /channels/c/messages`` (the same whatever N: nothing is
  written per recipient) and reads (the roster's version, and the Web Push check's first
  subscriptions: a handful, whatever N);
- the queue: the chunks the send queued (one per 100 online connections) and its one Web Push
  wake-up body, the consumer's batches, its pushes (one per online connection) and Web Push
  wake-ups (one per subscribed offline follower, to a recording WebPush port), its store
  operations, and the time from its start to its last push (it is held during the POST, so
  that the POST's store operations are its own, then let go, as SQS hands the Fanout Lambda
  its batches);
- the wall time of the distribution, of the POST and of the client's whole send (which checks
  the roster again: followers verified once are not verified again).

    python bench/followers.py [--followers 1000] [--online 0.1] [--runs 3] [--inline-limit 50]
                              [--subscribed 1.0]  # the share of offline followers with Web Push
    python bench/followers.py --followers 10000 --runs 1      # the issue's town (minutes)

SQLite in a temporary directory; loopback only; the machine is shared: quote medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # one line per request would drown the figures
os.environ.setdefault("AWS_REGION", "eu-west-3")  # Chalice's WebSocket handlers want one; nothing calls AWS

from bocage.client.profile import DeviceKeys, OperatorKey
from bocage.local.local_queue import LocalQueue
from chalicelib import wiring
from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.ports import PushRequest
from chalicelib.services.delivery import INLINE_LIMIT
from chalicelib.settings import Settings
from tests.push_service import PushDevice
from tests.support import RecordingMailer, RecordingPush, SignedApi, follower_join_body, messenger_for

DRAIN_TIMEOUT = 600.0  # seconds the queue's consumer has to push what is queued


class WallClock:
    def now(self) -> int:
        return int(time.time())


class WatchedQueue:
    """The Queue port of ``bocage serve`` (LocalQueue), counting what the fan-out hands it and
    what its consumer delivers, and when it delivered last."""

    def __init__(self) -> None:
        self.local = LocalQueue()
        self.chunks = self.wakes = self.batches = self.delivered = 0
        self.last_delivery = 0.0
        self._deliver: Any = None

    def send_batch(self, bodies: Any) -> None:
        for body in bodies:
            if '"wake"' in body:
                self.wakes += 1
            else:
                self.chunks += 1
        self.local.send_batch(bodies)

    def start(self, deliver: Any) -> None:
        self._deliver = deliver
        self.local.start(self._consume)

    def _consume(self, batch: list[str]) -> None:
        self.delivered += self._deliver(batch)
        self.batches += 1
        self.last_delivery = time.perf_counter()

    def pause(self) -> None:
        """Deliver everything queued so far, then hold what comes next (its consumer stopped):
        the POST's store operations are then its own, none of the consumer's reads."""
        self.local.stop(DRAIN_TIMEOUT)

    def resume(self) -> None:
        self.local.start(self._consume)

    def settle(self) -> None:
        self.pause()
        self.resume()

    def reset(self) -> None:
        self.chunks = self.wakes = self.batches = self.delivered = 0


class RecordingWebPush:
    """The WebPush port in memory: the devices the notification path would post a wake-up to
    (no push service is called; each is one sealed POST on a real server)."""

    public_key = "bench"

    def __init__(self) -> None:
        self.woken: list[str] = []

    def send_many(self, requests: Sequence[PushRequest]) -> list[str]:
        self.woken.extend(r.device_id for r in requests)
        return []


@contextmanager
def stack(
    directory: str, inline_limit: int = INLINE_LIMIT
) -> Iterator[tuple[SignedApi, CountingStore, RecordingPush, WatchedQueue, RecordingWebPush, OperatorKey]]:
    from chalice.test import Client

    from app import app

    operator, push, queue, web_push = (
        OperatorKey.generate(),
        RecordingPush(),
        WatchedQueue(),
        RecordingWebPush(),
    )
    store = CountingStore(SqliteStore(os.path.join(directory, "bench.sqlite3"), SystemClock()))
    settings = Settings(  # every join comes from this one address: no hourly cap in the way
        public_url="https://bench.invalid", operator_keys=(operator.public_key,), joins_per_tribe_hour=10**9
    )
    container = wiring.build(
        settings,
        store=store,
        clock=SystemClock(),
        mailer=RecordingMailer(),
        push=push,
        queue=queue,
        inline_limit=inline_limit,
        web_push=web_push,
    )
    queue.start(container.delivery.deliver_chunks)
    wiring.use(container)
    try:
        with Client(app) as client:
            api = SignedApi(client.http, WallClock(), client.lambda_)  # type: ignore[arg-type]
            yield api, store, push, queue, web_push, operator
    finally:
        wiring.use(None)
        queue.local.stop(DRAIN_TIMEOUT)


def subscribe(api: SignedApi, devices: list[DeviceKeys]) -> None:
    """A Web Push subscription for each device, through ``PUT /devices/d/push`` as a browser's."""
    browser = PushDevice()  # one key pair for all: the recording sender seals nothing
    for device in devices:
        body = browser.subscription(f"https://fcm.googleapis.com/fcm/send/{device.device_id}")
        answer = api.call("PUT", f"/devices/{device.device_id}/push", body, signer=device)
        assert answer.status == 200, answer.body


def join_all(api: SignedApi, store: CountingStore, url: str, count: int) -> tuple[list[DeviceKeys], Any, Any]:
    """``count`` followers join from the link; their devices, each join's store operations and time."""
    joined, ops, times = [], [], []
    for i in range(count):
        device = DeviceKeys.generate()
        body = follower_join_body(url, device, f"Habitant {i}", api.clock.now())
        store.reset()
        started = time.perf_counter()
        answer = api.call("POST", "/join", body)
        times.append(time.perf_counter() - started)
        assert answer.status == 201, answer.body
        ops.append(sum(store.reset().values()))
        joined.append(device)
    return joined, ops, times


def keyed(api: SignedApi, channel_id: str, epoch: int, sender: str, devices: list[DeviceKeys]) -> int:
    """How many of ``devices`` find the sender's key sealed to them (``GET /channels/c/keys``)."""
    found = 0
    for device in devices:
        answer = api.call("GET", f"/channels/{channel_id}/keys", signer=device, query={"epoch": str(epoch)})
        assert answer.status == 200, answer.body
        mine = [(k["sender_device"], k["recipient_device"]) for k in answer.body["keys"]]
        found += mine == [(sender, device.device_id)]
    return found


def run(
    followers: int, online: float, inline_limit: int = INLINE_LIMIT, subscribed: float = 1.0
) -> dict[str, float]:
    """One town: ``followers`` join, ``online`` of them connect, ``subscribed`` of the others
    have a Web Push subscription, and the author sends one message."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        stack(tmp, inline_limit) as (api, store, push, queue, web_push, operator),
    ):
        created = api.create_org(operator)
        keys, reply = api.activate(created["activation_code"], "Maire")
        author = messenger_for(api, keys, Path(tmp) / "author", dict(reply.body))
        tribe = author.create_channel("tribe", "La vie du village")["channel_id"]
        joined, join_ops, join_times = join_all(api, store, author.publish(tribe)["join_url"], followers)
        connected = joined[: round(followers * online)]
        offline = joined[len(connected) :]
        subscribe(api, offline[: round(len(offline) * subscribed)])
        for n, device in enumerate(connected):
            assert api.ws_connect(device, f"conn-{n}")["statusCode"] == 200
        queue.settle()
        store.reset()
        puts: list[int] = []
        put_sender_keys = author.client.put_sender_keys

        def put_counted(channel_id: str, epoch: int, sealed: list[Any]) -> Any:
            puts.append(len(sealed))
            return put_sender_keys(channel_id, epoch, sealed)

        author.client.put_sender_keys = put_counted
        started = time.perf_counter()
        epoch = author.distribute_key(tribe)
        distributed_at = time.perf_counter()
        distribution = store.reset()
        queue.pause()
        queue.reset()
        push.frames.clear()
        posted: dict[str, float] = {}
        send_message = author.client.send_message

        def counted(envelope: Any, notify: Any = ()) -> Any:
            store.reset()
            began = time.perf_counter()
            receipt = send_message(envelope, notify)
            posted["ms"] = (time.perf_counter() - began) * 1000
            ops = store.reset()
            posted["reads"] = ops["get"] + ops["query"]
            posted["writes"] = sum(ops.values()) - posted["reads"]
            posted["inline"] = sum(1 for _, frame in push.frames if frame.get("type") == "message")
            return receipt

        author.client.send_message = counted
        sending = time.perf_counter()
        author.send_text(tribe, "Marché de Noël samedi sur la place")
        sent_at = time.perf_counter()
        store.reset()
        queue.resume()  # what the send queued, as the Fanout Lambda would take it
        queue.pause()
        consumer = store.reset()
        messages = [connection for connection, frame in push.frames if frame.get("type") == "message"]
        return {
            "followers": followers,
            "join_ops": statistics.median(join_ops),
            "join_ms": statistics.median(join_times) * 1000,
            "sealed": sum(puts),
            "put_calls": len(puts),
            "keyed": keyed(api, tribe, epoch, keys.device_id, joined),
            "distribution_ops": sum(distribution.values()),
            "distribution_s": distributed_at - started,
            "send_reads": posted["reads"],
            "send_writes": posted["writes"],
            "send_ms": posted["ms"],
            "client_send_ms": (sent_at - sending) * 1000,
            "inline_pushes": posted["inline"],
            "pushes": len(messages),
            "pushed_connections": len(set(messages)),
            "online": len(connected),
            "queued_chunks": queue.chunks,
            "queue_batches": queue.batches,
            "queue_delivered": queue.delivered,
            "queued_wakes": queue.wakes,
            "subscribed": round(len(offline) * subscribed),
            "web_pushes": len(web_push.woken),
            "consumer_reads": consumer["get"] + consumer["query"],
            "consumer_writes": sum(v for k, v in consumer.items() if k not in ("get", "query")),
            "consumer_ms": (queue.last_delivery - sent_at) * 1000 if queue.batches else 0.0,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--online", type=float, default=0.1, help="the share of followers online")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--subscribed", type=float, default=1.0, help="the share of offline followers with Web Push"
    )
    parser.add_argument(
        "--inline-limit", type=int, default=INLINE_LIMIT, help="connections pushed inline; past it, queued"
    )
    args = parser.parse_args()
    results = [run(args.followers, args.online, args.inline_limit, args.subscribed) for _ in range(args.runs)]

    def median(name: str) -> float:
        return statistics.median(r[name] for r in results)

    print(f"{args.followers} followers, {median('online'):.0f} online, median of {args.runs} run(s):")
    print(f"  join:          {median('join_ops'):.0f} store ops, {median('join_ms'):.1f} ms each")
    print(
        f"  distribution:  {median('sealed'):.0f} sealed keys in {median('put_calls'):.0f} PUT /keys, "
        f"{median('distribution_ops'):.0f} store ops, {median('distribution_s'):.2f} s; "
        f"{median('keyed'):.0f} followers find theirs"
    )
    send = f"{median('send_writes'):.0f} store writes, {median('send_reads'):.0f} reads, "
    send += f"{median('send_ms'):.1f} ms, {median('inline_pushes'):.0f} pushed inline"
    print(f"  POST message:  {send} (the writes do not grow with N)")
    print(
        f"  queue:         {median('queued_chunks'):.0f} chunks and {median('queued_wakes'):.0f} wake-up "
        f"queued; {median('queue_batches'):.0f} consumer batches, {median('pushes'):.0f} pushes, "
        f"{median('web_pushes'):.0f} Web Push, the last {median('consumer_ms'):.1f} ms after it started"
    )
    print(
        f"  consumer:      {median('consumer_reads'):.0f} store reads, {median('consumer_writes'):.0f} "
        f"writes ({median('subscribed'):.0f} offline followers subscribed, one 5 s slot each)"
    )
    print(f"  client send:   {median('client_send_ms'):.1f} ms (roster check, sealing, POST)")


if __name__ == "__main__":
    main()
