"""A public tribe at town scale (docs/protocol.md, 16): N followers join from its link, a tenth
of them are online, and its author sends one message to all of them.

Drives the real Chalice app in process (chalice.test.Client) on SQLite over a CountingStore,
with the real Python client on the author's side (it verifies every follower's certificate,
then seals its sender key to each in batches of 200) and the real WebSocket handlers for the
online followers (``$connect`` through the app, frames to a recording Push port). Prints, as
medians over ``--runs``:

- per join: store operations and wall time of ``POST /join`` (the client's certificate is made
  before the clock starts);
- the first message: sealed keys and ``PUT /keys`` calls (the distribution: one seal per
  follower, once per epoch), its store operations, then the store operations of its
  ``POST /channels/c/messages`` (the same whatever N: nothing is written per recipient) and
  pushes (one per online connection);
- the wall time of the distribution, of the POST and of the client's whole send (which checks
  the roster again: followers verified once are not verified again).

    python bench/followers.py [--followers 1000] [--online 0.1] [--runs 3]
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # one line per request would drown the figures
os.environ.setdefault("AWS_REGION", "eu-west-3")  # Chalice's WebSocket handlers want one; nothing calls AWS

from bocage.client.api import join_body
from bocage.client.issuing import follower_cert
from bocage.client.profile import DeviceKeys, OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.domain.followers import parse_join_url
from chalicelib.settings import Settings
from tests.support import RecordingMailer, RecordingPush, SignedApi, messenger_for


class WallClock:
    def now(self) -> int:
        return int(time.time())


def join_request(url: str, keys: DeviceKeys, name: str) -> dict[str, Any]:
    target = parse_join_url(url)
    keys_of = {"sign_public_key": keys.sign_public_key, "box_public_key": keys.box_public_key}
    cert = follower_cert(target, **keys_of, display_name=name, now=int(time.time()))
    return join_body(target.link, keys, cert)


@contextmanager
def stack(directory: str) -> Iterator[tuple[SignedApi, CountingStore, RecordingPush, OperatorKey]]:
    from chalice.test import Client

    from app import app

    operator, push = OperatorKey.generate(), RecordingPush()
    store = CountingStore(SqliteStore(os.path.join(directory, "bench.sqlite3"), SystemClock()))
    settings = Settings(  # every join comes from this one address: no hourly cap in the way
        public_url="https://bench.invalid", operator_keys=(operator.public_key,), joins_per_tribe_hour=10**9
    )
    wiring.use(wiring.build(settings, store=store, clock=SystemClock(), mailer=RecordingMailer(), push=push))
    try:
        with Client(app) as client:
            yield SignedApi(client.http, WallClock(), client.lambda_), store, push, operator  # type: ignore[arg-type]
    finally:
        wiring.use(None)


def run(followers: int, online: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, stack(tmp) as (api, store, push, operator):
        created = api.create_org(operator)
        keys, reply = api.activate(created["activation_code"], "Maire")
        author = messenger_for(api, keys, Path(tmp) / "author", dict(reply.body))
        tribe = author.create_channel("tribe", "La vie du village")["channel_id"]
        url = author.publish(tribe)["join_url"]
        join_ops, join_times, joined = [], [], []
        for i in range(followers):
            device = DeviceKeys.generate()
            body = join_request(url, device, f"Habitant {i}")
            store.reset()
            started = time.perf_counter()
            answer = api.call("POST", "/join", body)
            join_times.append(time.perf_counter() - started)
            assert answer.status == 201, answer.body
            join_ops.append(sum(store.reset().values()))
            joined.append(device)
        connected = joined[: round(followers * online)]
        for n, device in enumerate(connected):
            assert api.ws_connect(device, f"conn-{n}")["statusCode"] == 200
        store.reset()
        puts: list[int] = []
        put_sender_keys = author.client.put_sender_keys

        def put_counted(channel_id: str, epoch: int, sealed: list[Any]) -> Any:
            puts.append(len(sealed))
            return put_sender_keys(channel_id, epoch, sealed)

        author.client.put_sender_keys = put_counted
        started = time.perf_counter()
        author.distribute_key(tribe)
        distributed_at = time.perf_counter()
        distribution = store.reset()
        push.frames.clear()
        stored: list[float] = []
        send_message = author.client.send_message

        def counted(envelope: Any, notify: Any = ()) -> Any:
            store.reset()
            began = time.perf_counter()
            receipt = send_message(envelope, notify)
            stored.append(time.perf_counter() - began)
            stored.append(sum(store.reset().values()))
            return receipt

        author.client.send_message = counted
        author.send_text(tribe, "Marché de Noël samedi sur la place")
        sent_at = time.perf_counter()
        pushes = sum(1 for _, frame in push.frames if frame.get("type") == "message")
        return {
            "join_ops": statistics.median(join_ops),
            "join_ms": statistics.median(join_times) * 1000,
            "sealed": sum(puts),
            "put_calls": len(puts),
            "distribution_ops": sum(distribution.values()),
            "distribution_s": distributed_at - started,
            "send_ops": stored[1],
            "send_ms": stored[0] * 1000,
            "client_send_ms": (sent_at - distributed_at) * 1000,
            "pushes": pushes,
            "online": len(connected),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--online", type=float, default=0.1, help="the share of followers online")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [run(args.followers, args.online) for _ in range(args.runs)]

    def median(name: str) -> float:
        return statistics.median(r[name] for r in results)

    print(f"{args.followers} followers, {median('online'):.0f} online, median of {args.runs} run(s):")
    print(f"  join:          {median('join_ops'):.0f} store ops, {median('join_ms'):.1f} ms each")
    print(
        f"  distribution:  {median('sealed'):.0f} sealed keys in {median('put_calls'):.0f} PUT /keys, "
        f"{median('distribution_ops'):.0f} store ops, {median('distribution_s'):.2f} s"
    )
    send = f"{median('send_ops'):.0f} store ops, {median('pushes'):.0f} pushes, {median('send_ms'):.1f} ms"
    print(f"  POST message:  {send} (the store's part does not grow with N)")
    print(f"  client send:   {median('client_send_ms'):.1f} ms (roster check, sealing, POST)")


if __name__ == "__main__":
    main()
