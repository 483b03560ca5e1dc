"""The per-device connection cap in ``$connect`` (issue 19, red-team finding: one device held 60
WebSockets). The Chalice handler, on SQLite and on moto's DynamoDB, with the Push port recorded:
on AWS the oldest connection gets a ``replaced`` error frame, then the @connections DELETE."""

from __future__ import annotations

from typing import Any

from bocage.client.profile import DeviceKeys, sign_token
from chalicelib.domain.frames import CLOSE_REPLACED
from chalicelib.services.delivery import MAX_PER_DEVICE, Delivery
from tests.support import People, RecordingPush, SignedApi, ws_event

T0 = 1_767_225_600_000  # API Gateway's connectedAt, epoch milliseconds


def connect(api: SignedApi, keys: DeviceKeys, connection_id: str, connected_ms: int) -> dict[str, Any]:
    token = sign_token(keys.signing, keys.device_id, "GET", "$connect", None, b"", now=api.clock.now())
    event = ws_event("$connect", connection_id, token=token)
    event["requestContext"]["connectedAt"] = connected_ms
    return api.ws("ws_connect", event)


def present(container: Any, connection_id: str) -> bool:
    return container.delivery.connection(connection_id) is not None


def test_a_sixth_connection_closes_the_devices_oldest_with_a_replaced_error_first(
    api: SignedApi, people: People, push: RecordingPush, container: Any
) -> None:
    owner = people.keys["owner"]
    # ids in the reverse order of age: the oldest is the one API Gateway accepted first
    ids = [f"c{9 - i}" for i in range(MAX_PER_DEVICE + 1)]
    for i, connection_id in enumerate(ids[:MAX_PER_DEVICE]):
        assert connect(api, owner, connection_id, T0 + i)["statusCode"] == 200
    assert push.closed == [] and push.frames == []  # five are allowed

    assert connect(api, owner, ids[-1], T0 + 60_000)["statusCode"] == 200
    oldest = ids[0]
    assert push.closed == [oldest]
    assert push.close_codes[oldest] == (CLOSE_REPLACED, "replaced by a newer connection of this device")
    (error,) = push.to(oldest)
    assert (error["type"], error["status"], error["error"]) == ("error", 409, "replaced")
    assert not present(container, oldest)
    assert all(present(container, c) for c in ids[1:])

    bob = people.join("bob")
    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    bob.send_text(cid, "after the cap")  # (the owner's own sends are never pushed back to it)
    assert push.to(oldest, "message") == []  # its presence is gone everywhere
    assert all(len(push.to(c, "message")) == 1 for c in ids[1:])


def test_other_devices_and_members_keep_their_own_five(
    api: SignedApi, people: People, push: RecordingPush, container: Any
) -> None:
    people.join("bob")
    for i in range(MAX_PER_DEVICE):
        connect(api, people.keys["bob"], f"bob{i}", T0 + i)
    for i in range(MAX_PER_DEVICE + 2):
        connect(api, people.keys["owner"], f"own{i}", T0 + 100 + i)
    assert sorted(push.closed) == ["own0", "own1"]
    assert all(present(container, f"bob{i}") for i in range(MAX_PER_DEVICE))


def test_a_device_past_the_cap_by_a_race_is_trimmed_at_its_next_connect(
    api: SignedApi, people: People, push: RecordingPush, container: Any
) -> None:
    """Two simultaneous connects may each miss the other (no transaction): the next one trims."""
    info, owner = people.info["owner"], people.keys["owner"]
    loose = Delivery(container.store, container.clock, push, None, max_per_device=100)
    for i in range(MAX_PER_DEVICE + 2):  # seven, as if the cap had been raced past
        loose.connect(
            f"r{i}",
            org_id=info["org_id"],
            member_id=info["member_id"],
            device_id=owner.device_id,
            channels=[],
            connected_ms=T0 + i,
        )
    assert connect(api, owner, "newest", T0 + 1_000)["statusCode"] == 200
    assert push.closed == ["r0", "r1", "r2"]
    assert [c for c in ("r3", "r4", "r5", "r6", "newest") if present(container, c)] == [
        "r3",
        "r4",
        "r5",
        "r6",
        "newest",
    ]


def test_the_new_connection_is_never_the_one_closed(
    api: SignedApi, people: People, push: RecordingPush, container: Any
) -> None:
    """A $connect stamped earlier than the device's others (clock skew between API Gateway's
    hosts) still keeps the new connection: the client that just connected is the one in use."""
    owner = people.keys["owner"]
    for i in range(MAX_PER_DEVICE):
        connect(api, owner, f"c{i}", T0 + 1_000 + i)
    assert connect(api, owner, "skewed", T0)["statusCode"] == 200
    assert present(container, "skewed")
    assert push.closed == ["c0"]  # the oldest of the others


def test_the_cap_is_a_setting(app_store: Any, clock: Any, push: RecordingPush) -> None:
    """BOCAGE_WS_PER_DEVICE (e.g. kiosks, or a bench holding many sockets of one device)."""
    from chalicelib import wiring
    from chalicelib.settings import Settings

    settings = Settings.from_env({"BOCAGE_WS_PER_DEVICE": "2"})
    assert settings.ws_per_device == 2 and Settings.from_env({}).ws_per_device == MAX_PER_DEVICE
    delivery = wiring.build(settings, store=app_store, clock=clock, push=push).delivery
    for i in range(3):
        delivery.connect(f"k{i}", org_id="o", member_id="m", device_id="d", channels=[], connected_ms=T0 + i)
    assert push.closed == ["k0"]
