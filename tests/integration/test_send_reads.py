"""What one message sent over a WebSocket reads and writes on a ``bocage serve`` replica alone in
its directory, with Web Push configured (as ``bocage serve`` has it), on both stores.

Pinned exactly, key by key: a read that comes back fails here. The roster version
(``CHAN#c / STATE``) is not read at all: the write that numbers the message returns it, and the
fan-out from memory and the Web Push check both go by it (services/roster_cache.py). Issue 17.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records import keys
from chalicelib.adapters.web_push_crypto import VapidKey
from chalicelib.ports import Store
from chalicelib.settings import Settings
from tests.faults import FaultyStore
from tests.integration.test_presence_index import CountingIndex, listed_index
from tests.support import People, RecordingPush, SignedApi, sealed_envelope, ws_event


class Wakes:
    """The replica's wake-up queue, recording what a send hands it (nothing consumes it here)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send_batch(self, bodies: Sequence[str]) -> None:
        self.bodies.extend(bodies)


@pytest.fixture
def app_store(app_store: Store) -> FaultyStore:
    """The app's store (either adapter), every call logged with its keys; no fault set."""
    return FaultyStore(app_store)


@pytest.fixture
def counted(app_store: FaultyStore) -> FaultyStore:
    return app_store


@pytest.fixture
def app_settings(app_settings: Settings) -> Settings:
    """Web Push configured, as ``bocage serve`` always has it (a key of its own)."""
    return dataclasses.replace(app_settings, vapid_private_key=VapidKey.generate().private_text())


@pytest.fixture
def index(app_store: Store, clock: ManualClock) -> CountingIndex:
    return listed_index(app_store, clock, "r1", ttl=10**8)  # alone for the whole test


@pytest.fixture
def local_connections(index: CountingIndex) -> CountingIndex:
    return index  # the replica pushes from memory


@pytest.fixture(params=["queued", "inline"])
def fanout_queue(request: pytest.FixtureRequest) -> Wakes | None:
    """As bocage serve, the wake-ups queued (the sender only checks whether anyone is left to
    wake); or with no queue at all, pushed by the sender inline: the same reads either way."""
    return Wakes() if request.param == "queued" else None


def sealed(people: People, channel_id: str, text: str) -> dict[str, Any]:
    """The owner's text, sealed beforehand (distributing the key is REST calls of its own)."""
    return sealed_envelope(people.owner, channel_id, {"type": "text", "text": text})


def send_over_socket(api: SignedApi, connection_id: str, envelope: dict[str, Any]) -> None:
    """A ``send`` action on an open connection, as clients send by default."""
    frame = json.dumps({"action": "send", "envelope": envelope})
    answer = api.ws("ws_message", ws_event("$default", connection_id, body=frame))
    assert answer["statusCode"] == 200


def test_a_send_reads_no_roster_version_and_pushes_to_the_members_it_gives(
    people: People,
    api: SignedApi,
    push: RecordingPush,
    counted: FaultyStore,
    index: CountingIndex,
    fanout_queue: Wakes | None,
) -> None:
    bob = people.join("bob")
    people.join("cat")
    group = people.owner.create_channel("group", "Chantier")["channel_id"]
    for name in ("bob", "cat"):
        people.owner.add_member(group, people.info[name]["member_id"])
    for name, connection in (("owner", "k-own"), ("bob", "k-bob")):  # cat stays offline
        assert api.ws_connect(people.keys[name], connection)["statusCode"] == 200
    send_over_socket(api, "k-own", sealed(people, group, "first: the replica copies the roster"))
    envelope = sealed(people, group, "Réunion lundi")
    counted.heal()  # the log restarts

    send_over_socket(api, "k-own", envelope)

    org, owner = people.info["owner"]["org_id"], people.info["owner"]["member_id"]
    device = people.keys["owner"].device_id
    reads = [call for call in counted.calls if call[0] in ("get", "query")]
    assert reads == [
        ("get", (keys.connection("k-own"),)),  # the frame's device, re-checked
        ("get", (keys.device(device),)),
        ("get", (keys.member(org, owner),)),
        ("get", (keys.channel(group),)),  # may this member send here?
        ("get", (keys.channel_member(group, owner),)),
        ("get", (keys.channel_epoch(group),)),
        ("get", (keys.org(org),)),
        ("get", (keys.message_marker(group, envelope["message_id"]),)),  # a resend?
        ("get", (keys.push_subscription(people.keys["cat"].device_id),)),  # cat is offline: none
    ]
    ops = Counter(op for op, _ in counted.calls)
    assert ops == {"get": 9, "increment": 1, "put": 2}  # the number, the marker, the message
    assert fanout_queue is None or fanout_queue.bodies == []  # nobody to wake: cat subscribed nothing
    assert [m["message"]["seq"] for m in push.to("k-bob", "message")] == [1, 2]
    # A member who joins after is pushed the next message: the version the number came with moved.
    dan = people.join("dan")
    people.owner.add_member(group, people.info["dan"]["member_id"])
    assert api.ws_connect(people.keys["dan"], "k-dan")["statusCode"] == 200
    answered = index.answered
    send_over_socket(api, "k-own", sealed(people, group, "Bienvenue"))
    assert index.answered == answered + 1  # from memory
    assert [bob.open(f["message"])["text"] for f in push.to("k-bob", "message")][-1] == "Bienvenue"
    assert [dan.open(f["message"])["text"] for f in push.to("k-dan", "message")] == ["Bienvenue"]


def test_the_wake_check_follows_a_roster_change_with_no_read_of_its_version(
    people: People, api: SignedApi, counted: FaultyStore
) -> None:
    """A member added after the roster was copied is offline: the Web Push check must read their
    device's subscription, so the copy it goes by is the new version's."""
    people.join("bob")
    group = people.owner.create_channel("group", "Conseil")["channel_id"]
    people.owner.add_member(group, people.info["bob"]["member_id"])
    assert api.ws_connect(people.keys["owner"], "k-own")["statusCode"] == 200
    send_over_socket(api, "k-own", sealed(people, group, "avant"))
    people.join("eve")
    people.owner.add_member(group, people.info["eve"]["member_id"])
    envelope = sealed(people, group, "après")
    counted.heal()
    send_over_socket(api, "k-own", envelope)
    subscriptions = {ks[0] for op, ks in counted.calls if op == "get" and ks[0][1] == "PUSH"}
    wanted = {keys.push_subscription(people.keys[n].device_id) for n in ("bob", "eve")}
    assert subscriptions == wanted
    assert ("get", (keys.channel_state(group),)) not in counted.calls
