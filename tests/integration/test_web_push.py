"""Web Push through the app, on both stores, against a push service stand-in on loopback (real
HTTPS, the VAPID signature checked, the body opened with the device's own keys): registration
(own device only, endpoints allow-listed), pushes to offline devices only, coalesced, through
the inline and the SQS queue paths, and a 404/410 that forgets the subscription."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bocage.client.api import ApiError
from bocage.client.profile import OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.push import PushRecords
from chalicelib.adapters.sqs_queue import SqsQueue
from chalicelib.adapters.web_push_crypto import VapidKey
from chalicelib.services.delivery import Delivery
from chalicelib.services.notifications import COALESCE
from chalicelib.services.roster_cache import SETTLE, RosterCache
from chalicelib.settings import Settings
from tests.integration.test_followers import follow, public_tribe
from tests.integration.test_websocket_handlers import sqs_event
from tests.push_service import PushDevice, PushServiceStandIn, verify_vapid
from tests.support import People, RecordingPush, SignedApi

VAPID = VapidKey.generate()
SUBJECT = "mailto:dsi@mairie.example"


@pytest.fixture
def app_settings(
    operator: OperatorKey, push_service: PushServiceStandIn, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("SSL_CERT_FILE", str(push_service.cert_file))  # trust the stand-in's certificate
    return dataclasses.replace(
        Settings(),
        public_url="https://api.bocage.test",
        operator_keys=(operator.public_key,),
        vapid_private_key=VAPID.private_text(),
        vapid_subject=SUBJECT,
        push_services=(push_service.host,),
    )


def register(api: SignedApi, people: People, name: str, endpoint: str, device: PushDevice) -> Any:
    keys = people.keys[name]
    return api.call("PUT", f"/devices/{keys.device_id}/push", device.subscription(endpoint), signer=keys)


def opened(received: Any, device: PushDevice, audience: str) -> dict[str, Any]:
    """The push's payload, after checking it is signed with the server's VAPID key."""
    claims = verify_vapid(received.headers["authorization"], audience, VAPID.public_key)
    assert claims["sub"] == SUBJECT
    assert received.headers["content-encoding"] == "aes128gcm"
    payload: dict[str, Any] = json.loads(device.open(received.body))
    return payload


@pytest.fixture
def group(people: People) -> tuple[str, Any]:
    """A group of the owner and alice; returns its id and alice's messenger."""
    alice = people.join("alice")
    cid = people.owner.create_channel("group", "Conseil municipal")["channel_id"]
    people.owner.add_member(cid, people.info["alice"]["member_id"])
    return cid, alice


@dataclasses.dataclass(frozen=True)
class Subscribed:
    """A group of the owner and alice, alice's device registered for pushes (no WebSocket open),
    and what the tests drive and look at."""

    api: SignedApi
    people: People
    cid: str
    device: PushDevice
    service: PushServiceStandIn
    container: wiring.Container
    clock: ManualClock
    push: RecordingPush

    def alice_subscription(self) -> Any:
        return PushRecords(self.container.store).get(self.people.keys["alice"].device_id)


@pytest.fixture
def alice(
    api: SignedApi,
    people: People,
    group: tuple[str, Any],
    push_service: PushServiceStandIn,
    container: wiring.Container,
    clock: ManualClock,
    push: RecordingPush,
) -> Subscribed:
    device = PushDevice()
    assert register(api, people, "alice", push_service.endpoint("alice"), device).status == 200
    return Subscribed(api, people, group[0], device, push_service, container, clock, push)


def test_the_public_key_is_served_and_a_device_registers_its_own_subscription_only(
    api: SignedApi, people: People, push_service: PushServiceStandIn, container: wiring.Container
) -> None:
    assert api.call("GET", "/push").body == {"public_key": VAPID.public_key}
    people.join("alice")
    device = PushDevice()
    reply = register(api, people, "owner", push_service.endpoint("owner"), device)
    assert reply.status == 200, reply.body
    owner_id = people.keys["owner"].device_id
    assert reply.body["device_id"] == owner_id
    alice_device = people.keys["alice"].device_id
    for refused in (
        api.call(  # another device of the same organisation
            "PUT",
            f"/devices/{alice_device}/push",
            device.subscription(push_service.endpoint("x")),
            signer=people.keys["owner"],
        ),
        api.call("DELETE", f"/devices/{alice_device}/push", signer=people.keys["owner"]),
    ):
        assert (refused.status, refused.body["error"]) == (404, "not_found")
    records = PushRecords(container.store)
    assert records.get(alice_device) is None
    assert api.call("DELETE", f"/devices/{owner_id}/push", signer=people.keys["owner"]).status == 200
    assert records.get(owner_id) is None


def test_another_organisations_device_is_not_found(
    api: SignedApi,
    people: People,
    operator: OperatorKey,
    push_service: PushServiceStandIn,
    container: wiring.Container,
) -> None:
    other = api.create_org(operator, name="Mairie voisine")
    stranger, _ = api.activate(other["activation_code"], "Voisin")
    device = PushDevice()
    assert register(api, people, "owner", push_service.endpoint("owner"), device).status == 200
    ours = people.keys["owner"].device_id
    for reply in (
        api.call(
            "PUT", f"/devices/{ours}/push", device.subscription(push_service.endpoint("s")), signer=stranger
        ),
        api.call("DELETE", f"/devices/{ours}/push", signer=stranger),
    ):
        assert (reply.status, reply.body["error"]) == (404, "not_found")
    kept = PushRecords(container.store).get(ours)
    assert kept is not None and kept.endpoint == push_service.endpoint("owner")


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("https://169.254.169.254/latest/meta-data/", "not a known push service"),
        ("http://fcm.googleapis.com/fcm/send/x", "https"),
        ("https://localhost:1/push", "not a known push service"),
    ],
)
def test_an_endpoint_off_the_allow_list_is_refused_and_nothing_is_stored(
    api: SignedApi, people: People, container: wiring.Container, endpoint: str, why: str
) -> None:
    reply = register(api, people, "owner", endpoint, PushDevice())
    assert (reply.status, reply.body["error"]) == (400, "bad_request")
    assert why in reply.body["message"]
    assert PushRecords(container.store).get(people.keys["owner"].device_id) is None


def test_bad_keys_and_oversized_bodies_are_refused(
    api: SignedApi, people: People, push_service: PushServiceStandIn
) -> None:
    keys = people.keys["owner"]
    body = PushDevice().subscription(push_service.endpoint("o"))
    for broken in (
        {**body, "keys": {"p256dh": "AAAA", "auth": body["keys"]["auth"]}},
        {**body, "keys": {"p256dh": body["keys"]["p256dh"]}},
        {**body, "endpoint": "https://localhost/" + "a" * 1100},
        {**body, "extra": 1},
    ):
        reply = api.call("PUT", f"/devices/{keys.device_id}/push", broken, signer=keys)
        assert reply.status == 400, (broken, reply.body)


def test_an_offline_device_gets_one_sealed_push_naming_the_channel_by_id_only(
    api: SignedApi, people: People, group: tuple[str, Any], push_service: PushServiceStandIn
) -> None:
    cid, _ = group
    alice_device, owner_device = PushDevice(), PushDevice()
    assert register(api, people, "alice", push_service.endpoint("alice"), alice_device).status == 200
    assert register(api, people, "owner", push_service.endpoint("owner"), owner_device).status == 200
    people.owner.send_text(cid, "Réunion du conseil jeudi à 18 h")
    [received] = push_service.wait_for(1)
    assert received.path == "/push/alice"  # the sender's own device is never woken
    assert opened(received, alice_device, f"https://localhost:{push_service.port}") == {"channel_id": cid}
    assert received.headers["ttl"] and received.headers["topic"] == "bocage"
    assert b"conseil" not in received.body and b"Conseil" not in received.body


def test_pushes_are_coalesced_per_device_and_reactions_wake_nobody(alice: Subscribed) -> None:
    owner, cid = alice.people.owner, alice.cid
    first = owner.send_text(cid, "un")
    owner.send_text(cid, "deux")
    owner.react(cid, first["message_id"], "👍")
    assert len(alice.service.wait_for(1)) == 1
    alice.clock.advance(COALESCE + 1)
    owner.react(cid, first["message_id"], "🎉")
    owner.send_text(cid, "trois")
    assert len(alice.service.wait_for(2)) == 2


def test_a_device_with_a_live_websocket_gets_no_push(alice: Subscribed) -> None:
    assert alice.api.ws_connect(alice.people.keys["alice"], "alice-conn")["statusCode"] == 200
    alice.people.owner.send_text(alice.cid, "en direct")
    assert [f["type"] for f in alice.push.to("alice-conn")] == ["message"]
    assert alice.service.received == []


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_forgotten(alice: Subscribed, status: int) -> None:
    alice.service.answers["/push/alice"] = status
    alice.people.owner.send_text(alice.cid, "un")
    assert len(alice.service.wait_for(1)) == 1
    assert alice.alice_subscription() is None
    alice.clock.advance(COALESCE + 1)
    alice.people.owner.send_text(alice.cid, "deux")
    assert len(alice.service.received) == 1  # nothing more was sent to it


def test_a_redirect_is_not_followed_and_other_failures_keep_the_subscription(alice: Subscribed) -> None:
    alice.service.answers["/push/alice"] = 302
    sent = alice.people.owner.send_text(alice.cid, "un")
    assert sent["seq"] >= 1  # the message is stored whatever the push service says
    assert [r.path for r in alice.service.wait_for(1)] == ["/push/alice"]  # not '/redirected'
    assert alice.alice_subscription() is not None


def test_a_revoked_device_loses_its_subscription(alice: Subscribed) -> None:
    assert alice.api.revoke(alice.people.keys["owner"], alice.people.keys["alice"].device_id).status == 200
    assert alice.alice_subscription() is None
    alice.people.owner.send_text(alice.cid, "après")
    assert alice.service.received == []


def fan_out_through_a_queue(alice: Subscribed) -> tuple[Any, str]:
    """Sends enqueue their fan-out as on AWS (inside ``mock_aws``): the SQS client and queue URL."""
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="bocage-fanout")["QueueUrl"]
    container = alice.container
    container.messaging._delivery = Delivery(
        container.store, container.clock, alice.push, SqsQueue(sqs, url), notifier=container.notifications
    )
    return sqs, url


def test_the_queue_path_pushes_from_the_consumer(alice: Subscribed) -> None:
    """On AWS with a fan-out queue the sender only enqueues; the SQS consumer sends the pushes."""
    service = alice.service
    with mock_aws():
        sqs, url = fan_out_through_a_queue(alice)
        alice.people.owner.send_text(alice.cid, "par la file")
        assert service.received == []  # the send returned without waiting on the push service
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        bodies = [m["Body"] for m in got]
        assert [json.loads(b) for b in bodies] == [
            {"channel_id": alice.cid, "wake": [alice.people.keys["owner"].device_id]}
        ]
        alice.api.lambda_.invoke("fanout", sqs_event(bodies))
    [received] = service.wait_for(1)
    assert opened(received, alice.device, f"https://localhost:{service.port}") == {"channel_id": alice.cid}


def test_a_muted_channel_wakes_nobody_and_unmuting_restores_it(
    api: SignedApi,
    people: People,
    group: tuple[str, Any],
    push_service: PushServiceStandIn,
    clock: ManualClock,
) -> None:
    cid, _ = group
    keys, device = people.keys["alice"], PushDevice()
    muted = {**device.subscription(push_service.endpoint("alice")), "muted": [cid]}
    assert api.call("PUT", f"/devices/{keys.device_id}/push", muted, signer=keys).status == 200
    people.owner.send_text(cid, "en sourdine")
    assert push_service.received == []
    assert register(api, people, "alice", push_service.endpoint("alice"), device).status == 200  # unmuted
    clock.advance(COALESCE + 1)
    people.owner.send_text(cid, "de nouveau")
    assert [r.path for r in push_service.wait_for(1)] == ["/push/alice"]


def test_on_aws_the_key_is_read_from_its_ssm_parameter_on_first_use(aws_env: None) -> None:
    with mock_aws():
        settings = Settings(vapid_parameter="/bocage/dev/vapid", region="eu-west-3")
        sender = wiring.build_web_push(settings)  # built before the parameter exists: nothing read yet
        assert sender is not None
        ssm = boto3.client("ssm", region_name="eu-west-3")
        ssm.put_parameter(Name="/bocage/dev/vapid", Type="SecureString", Value=VAPID.private_text())
        assert sender.public_key == VAPID.public_key
    assert wiring.build_web_push(Settings()) is None  # no key, no parameter: no Web Push


def test_a_follower_s_device_is_woken_by_its_public_tribe(
    api: SignedApi, people: People, push_service: PushServiceStandIn, tmp_path: Any
) -> None:
    """A citizen following the town's public tribe turns notifications on like a member does and
    is woken by a new post there (the payload names the tribe by id only)."""
    cid, url = public_tribe(people)
    follower = follow(api, url, tmp_path / "lea", "Léa")
    keys = follower.profile.keys()
    device = PushDevice()
    subscription = device.subscription(push_service.endpoint("lea"))
    assert api.call("PUT", f"/devices/{keys.device_id}/push", subscription, signer=keys).status == 200
    people.owner.send_text(cid, "Marché de Noël samedi")
    (received,) = push_service.wait_for(1)
    assert opened(received, device, f"https://localhost:{push_service.port}") == {"channel_id": cid}
    assert api.call("DELETE", f"/devices/{keys.device_id}/push", signer=keys).status == 200


def test_who_is_woken_follows_the_roster_after_the_first_send(alice: Subscribed) -> None:
    """The roster Web Push reads is kept per process while its version holds: a member added
    after a send is woken by the next, and a member removed is no longer woken."""
    people, cid, service = alice.people, alice.cid, alice.service
    people.owner.send_text(cid, "un")  # this process now keeps the roster of alice and the owner
    assert [r.path for r in service.wait_for(1)] == ["/push/alice"]
    people.join("bob")
    bob_device = PushDevice()
    assert register(alice.api, people, "bob", service.endpoint("bob"), bob_device).status == 200
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    alice.clock.advance(COALESCE + 1)
    people.owner.send_text(cid, "deux")
    assert sorted(r.path for r in service.wait_for(3)[1:]) == ["/push/alice", "/push/bob"]
    people.owner.remove_member(cid, people.info["alice"]["member_id"])
    alice.clock.advance(COALESCE + 1)
    people.owner.send_text(cid, "trois")
    assert [r.path for r in service.wait_for(4)[3:]] == ["/push/bob"]


def test_a_roster_kept_by_another_process_is_read_again_once_it_changed(alice: Subscribed) -> None:
    """Another replica (or Lambda instance) keeps its own copy: a change made through this one
    moves the version in the shared store, and the other's next read sees it."""
    people, cid = alice.people, alice.cid
    elsewhere = RosterCache(alice.container.store, alice.clock)
    before = {d.device_id for d in elsewhere.devices(cid)}
    assert before == {people.keys["owner"].device_id, people.keys["alice"].device_id}
    people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    assert {d.device_id for d in elsewhere.devices(cid)} == before | {people.keys["bob"].device_id}
    assert alice.api.revoke(people.keys["owner"], people.keys["alice"].device_id).status == 200
    assert {d.device_id for d in elsewhere.devices(cid)} == {
        people.keys["owner"].device_id,
        people.keys["bob"].device_id,
    }


def test_the_queue_gets_a_wake_up_only_when_an_offline_device_may_be_woken(alice: Subscribed) -> None:
    """A send whose offline devices have no subscription, or mute the channel, queues nothing
    (bocage serve wakes no thread for it, AWS sends no SQS message); one with a subscribed
    offline device queues its wake-up as before."""
    keys = alice.people.keys["alice"]
    with mock_aws():
        sqs, url = fan_out_through_a_queue(alice)

        def queued() -> list[Any]:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for m in got:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return [json.loads(m["Body"]) for m in got]

        muted = {**alice.device.subscription(alice.service.endpoint("alice")), "muted": [alice.cid]}
        assert alice.api.call("PUT", f"/devices/{keys.device_id}/push", muted, signer=keys).status == 200
        alice.people.owner.send_text(alice.cid, "en sourdine")
        assert queued() == []
        assert alice.api.call("DELETE", f"/devices/{keys.device_id}/push", None, signer=keys).status == 200
        alice.people.owner.send_text(alice.cid, "sans abonnement")
        assert queued() == []
        assert (
            register(alice.api, alice.people, "alice", alice.service.endpoint("alice"), alice.device).status
            == 200
        )
        alice.people.owner.send_text(alice.cid, "abonnée")
        assert queued() == [{"channel_id": alice.cid, "wake": [alice.people.keys["owner"].device_id]}]
    assert alice.service.received == []


class Died(Exception):
    """The process stopped here: nothing after this write happened."""


def test_a_roster_change_that_died_half_way_is_not_kept_stale(
    alice: Subscribed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process reads the roster while bob is being added; the adding process writes bob's
    device and dies before it can mark the change done. The other's copy must not stay without
    bob: he is counted at its next read, and the copy is kept again once the version stood still."""
    people, cid, store = alice.people, alice.cid, alice.container.store
    elsewhere = RosterCache(store, alice.clock)
    before = {d.device_id for d in elsewhere.devices(cid)}
    people.join("bob")
    bob = people.keys["bob"].device_id
    write, increment = store.batch_write, store.increment
    wrote: list[bool] = []

    def roster_write(puts: Any = (), deletes: Any = ()) -> None:
        puts = list(puts)
        adds_bob = any(str(p["sk"]) == keys.ROSTER_PREFIX + bob for p in puts)
        if adds_bob:
            elsewhere.devices(cid)  # read meanwhile, before bob's device lands
        write(puts, deletes)
        wrote.extend([True] if adds_bob else [])

    def dies_after_the_write(*args: Any, **kwargs: Any) -> int:
        if wrote and args[2] == "roster":
            raise Died
        return increment(*args, **kwargs)

    monkeypatch.setattr(store, "batch_write", roster_write)
    monkeypatch.setattr(store, "increment", dies_after_the_write)
    with pytest.raises(ApiError):  # a 500: the request died with its process
        people.owner.add_member(cid, people.info["bob"]["member_id"])
    monkeypatch.undo()
    assert wrote
    assert {d.device_id for d in elsewhere.devices(cid)} == before | {bob}
    query, reads = store.query, []

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(kwargs.get("prefix"))
        return query(*args, **kwargs)

    monkeypatch.setattr(store, "query", counted)
    alice.clock.advance(SETTLE)
    assert {d.device_id for d in elsewhere.devices(cid)} == before | {bob}  # read, and now kept
    assert {d.device_id for d in elsewhere.devices(cid)} == before | {bob}
    assert reads == [keys.ROSTER_PREFIX]
