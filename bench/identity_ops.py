"""Store operations per activation and per authenticated request, on both adapters.

Drives the real Chalice app in process (chalice.test.Client) over a CountingStore,
so the figures are what the Lambda would spend. Also prints the median wall time
of an authenticated request on each adapter (noisy machine: compare ratios).

    python bench/identity_ops.py [--requests 200]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # one line per request would drown the figures

from bocage.client.profile import OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.ports import Store
from chalicelib.settings import Settings
from tests.support import RecordingMailer, SignedApi


@contextmanager
def store_for(kind: str) -> Iterator[Store]:
    clock = SystemClock()
    if kind == "sqlite":
        from chalicelib.adapters.sqlite_store import SqliteStore

        with tempfile.TemporaryDirectory() as tmp:
            yield SqliteStore(os.path.join(tmp, "bench.sqlite3"), clock)
        return
    from moto import mock_aws

    from chalicelib.adapters.dynamodb_store import DynamoDbStore

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    with mock_aws():
        dynamo = DynamoDbStore("bench", clock, region="eu-west-3")
        dynamo.ensure_table()
        yield dynamo


class WallClock:
    def now(self) -> int:
        return int(time.time())

    def advance(self, seconds: int) -> None:
        raise NotImplementedError


def measure(kind: str, requests: int) -> dict[str, float]:
    from chalice.test import Client

    from app import app

    operator = OperatorKey.generate()
    with store_for(kind) as inner:
        store = CountingStore(inner)
        settings = Settings(public_url="https://bench.invalid", operator_keys=(operator.public_key,))
        wiring.use(wiring.build(settings, store=store, clock=SystemClock(), mailer=RecordingMailer()))
        with Client(app) as client:
            api = SignedApi(client.http, WallClock())  # type: ignore[arg-type]
            created = api.create_org(operator)
            store.reset()
            owner, reply = api.activate(created["activation_code"], "Owner")
            assert reply.status == 201, reply.body
            activation = store.reset()
            durations = []
            for _ in range(requests):
                started = time.perf_counter()
                assert api.call("GET", "/me", signer=owner).status == 200
                durations.append(time.perf_counter() - started)
            per_request = store.reset()
            store.reset()
            invite = api.call("POST", "/invitations", {"display_name": "X"}, signer=owner)
            assert invite.status == 201
            invitation = store.reset()
        wiring.use(None)
    auth_only = {"get": 2, "put": 1}  # device, member, nonce (see services/authentication.py)
    return {
        "activation_ops": sum(activation.values()),
        "activation_reads": activation["get"] + activation["query"],
        "activation_writes": activation["put"],
        "me_ops_per_request": sum(per_request.values()) / requests,
        "auth_ops_per_request": sum(auth_only.values()),
        "invite_ops": sum(invitation.values()),
        "me_median_ms": statistics.median(durations) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("AWS_REGION", "eu-west-3")
    header = ("adapter", "activation ops (r/w)", "GET /me ops", "invite ops", "GET /me median")
    print(f"{header[0]:<10}{header[1]:>22}{header[2]:>13}{header[3]:>12}{header[4]:>16}")
    for kind in ("sqlite", "dynamodb"):
        f = measure(kind, args.requests)
        ops = f"{f['activation_ops']:.0f} ({f['activation_reads']:.0f}/{f['activation_writes']:.0f})"
        print(
            f"{kind:<10}{ops:>22}{f['me_ops_per_request']:>13.1f}{f['invite_ops']:>12.0f}"
            f"{f['me_median_ms']:>13.2f} ms"
        )
    print("GET /me = authentication (get device, get member, put nonce) + whoami (get org, get member)")


if __name__ == "__main__":
    main()
