"""The WebSocket handlers ($connect, $default, $disconnect) and the SQS fan-out, in process."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.stub import ANY, Stubber
from moto import mock_aws

from bocage.client.profile import sign_token
from chalicelib.adapters.apigw_push import ApiGatewayPush
from chalicelib.adapters.sqs_queue import SqsQueue
from chalicelib.domain.frames import PongFrame
from chalicelib.services.delivery import Delivery
from tests.support import People, RecordingPush, SignedApi, sealed_envelope, ws_event


def _envelope(messenger: Any, cid: str, text: str) -> dict[str, Any]:
    return sealed_envelope(messenger, cid, {"type": "text", "text": text})


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    """The event Lambda's SQS event source delivers (one record per message)."""
    arn = "arn:aws:sqs:eu-west-3:123456789012:bocage-fanout"
    records = [
        {
            "body": b,
            "messageId": str(i),
            "receiptHandle": "r",
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": "eu-west-3",
        }
        for i, b in enumerate(bodies)
    ]
    return {"Records": records}


def test_connect_needs_a_valid_fresh_token(api: SignedApi, people: People) -> None:
    owner = people.keys["owner"]
    assert api.ws_connect(owner, "good")["statusCode"] == 200
    assert api.ws("ws_connect", ws_event("$connect", "none"))["statusCode"] == 401
    bad = sign_token(owner.signing, owner.device_id, "GET", "/me", None, b"", now=api.clock.now())
    assert api.ws("ws_connect", ws_event("$connect", "bound-elsewhere", token=bad))["statusCode"] == 401
    old = sign_token(owner.signing, owner.device_id, "GET", "$connect", None, b"", now=api.clock.now())
    api.clock.advance(200)
    expired = api.ws("ws_connect", ws_event("$connect", "expired", token=old))
    assert expired["statusCode"] == 401 and "expired" in expired["body"]


def test_send_over_the_socket_reaches_every_online_device(
    api: SignedApi, people: People, push: RecordingPush
) -> None:
    bob = people.join("bob")
    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    api.ws_connect(people.keys["owner"], "c-owner")
    api.ws_connect(people.keys["bob"], "c-bob")
    envelope = _envelope(people.owner, cid, "live")
    api.ws(
        "ws_message",
        ws_event("$default", "c-owner", body=json.dumps({"action": "send", "envelope": envelope})),
    )
    (ack,) = push.to("c-owner", "ack")
    assert ack["ref"] == envelope["message_id"] and ack["seq"] == 1
    (delivered,) = push.to("c-bob", "message")
    assert bob.open(delivered["message"])["text"] == "live"
    assert push.to("c-owner", "message") == []  # the sending device has it: no echo

    api.ws("ws_message", ws_event("$default", "c-bob", body=json.dumps({"action": "ping", "ref": "p1"})))
    assert push.to("c-bob", "pong") == [{"type": "pong", "ref": "p1"}]


def test_a_send_skips_the_sending_device_but_reaches_the_senders_other_devices(
    api: SignedApi, people: People, push: RecordingPush
) -> None:
    """No echo to pay for: the device that sent a message has it; the member's tablet still gets it."""
    cid = people.owner.create_channel("group", "G")["channel_id"]
    tablet_keys, activated = api.activate(api.link(people.keys["owner"])["activation_code"], "Maire")
    assert activated.status == 201
    api.ws_connect(people.keys["owner"], "c-phone")
    api.ws_connect(people.keys["owner"], "c-phone-second-tab")
    api.ws_connect(tablet_keys, "c-tablet")
    receipt = people.owner.send_text(cid, "from my phone")
    assert receipt["online"] == 1
    assert push.to("c-phone", "message") == push.to("c-phone-second-tab", "message") == []
    (delivered,) = push.to("c-tablet", "message")
    assert delivered["message"]["message_id"] == receipt["message_id"]


def test_bad_frames_get_error_frames(api: SignedApi, people: People, push: RecordingPush) -> None:
    api.ws_connect(people.keys["owner"], "c1")
    for body, status in [("not json", 400), ('{"action": "dance"}', 400), ('{"action": "send"}', 400)]:
        api.ws("ws_message", ws_event("$default", "c1", body=body))
        assert push.to("c1", "error")[-1]["status"] == status
    api.ws("ws_message", ws_event("$default", "never-connected", body='{"action": "ping"}'))
    assert push.to("never-connected", "error")[-1]["status"] == 401


def test_error_frames_echo_the_ref_only_when_the_action_had_one(
    api: SignedApi, people: People, push: RecordingPush
) -> None:
    api.ws_connect(people.keys["owner"], "c1")
    api.ws("ws_message", ws_event("$default", "c1", body='{"action": "dance"}'))
    assert "ref" not in push.to("c1", "error")[-1]
    api.ws("ws_message", ws_event("$default", "c1", body='{"action": "dance", "ref": "r7"}'))
    assert push.to("c1", "error")[-1]["ref"] == "r7"
    api.ws("ws_message", ws_event("$default", "c1", body='{"action": "ping", "ref": 7}'))
    assert push.to("c1", "error")[-1]["status"] == 400 and push.to("c1", "pong") == []


def test_tribe_member_cannot_post_over_the_socket(
    api: SignedApi, people: People, push: RecordingPush
) -> None:
    citizen = people.join("citizen")
    cid = people.owner.create_channel("tribe", "T")["channel_id"]
    people.owner.add_member(cid, people.info["citizen"]["member_id"])
    api.ws_connect(people.keys["citizen"], "c-cit")
    envelope = _envelope(citizen, cid, "spam")
    api.ws(
        "ws_message", ws_event("$default", "c-cit", body=json.dumps({"action": "send", "envelope": envelope}))
    )
    (error,) = push.to("c-cit", "error")
    assert error["status"] == 403 and error["ref"] == envelope["message_id"]


def test_revoked_device_is_cut_off_at_its_next_frame(
    api: SignedApi, people: People, push: RecordingPush
) -> None:
    people.join("bob")
    api.ws_connect(people.keys["bob"], "c-bob")
    assert api.revoke(people.keys["owner"], people.keys["bob"].device_id).status == 200
    assert "c-bob" in push.closed  # its live connection is closed at once
    api.ws("ws_message", ws_event("$default", "c-bob", body='{"action": "ping"}'))
    assert push.to("c-bob", "pong") == []


def test_disconnect_forgets_presence(
    api: SignedApi, people: People, push: RecordingPush, container: Any
) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    api.ws_connect(people.keys["owner"], "c-gone")
    api.ws("ws_disconnect", ws_event("$disconnect", "c-gone"))
    people.owner.send_text(cid, "nobody online")
    assert push.to("c-gone") == []
    assert container.store.get("CONN#c-gone", "META") is None


def test_a_410_deletes_exactly_the_stale_connection(api: SignedApi, people: People, container: Any) -> None:
    """API Gateway's real error, through the real adapter (Stubber): the stale one goes, not the sender's."""
    cid = people.owner.create_channel("group", "G")["channel_id"]
    api.ws_connect(people.keys["owner"], "sender")
    api.ws_connect(people.keys["owner"], "stale")
    client = boto3.client(
        "apigatewaymanagementapi", region_name="eu-west-3", endpoint_url="https://abc123.execute-api.test/api"
    )
    stubber = Stubber(client)
    for connection_id in ("sender", "stale"):
        if connection_id == "stale":
            stubber.add_client_error("post_to_connection", "GoneException", http_status_code=410)
        else:
            stubber.add_response("post_to_connection", {}, {"ConnectionId": "sender", "Data": ANY})
    delivery = Delivery(container.store, container.clock, ApiGatewayPush(client), None)
    with stubber:
        for connection_id in ("sender", "stale"):
            delivery.send_to(connection_id, PongFrame(ref="r1"))
    assert container.store.get("CONN#stale", "META") is None
    assert container.store.get("CONN#sender", "META") is not None
    assert container.store.get(f"CHAN#{cid}", "CONN#stale") is None
    assert container.store.get(f"CHAN#{cid}", "CONN#sender") is not None


def test_large_tribes_fan_out_through_sqs_chunks(
    api: SignedApi, people: People, container: Any, aws_env: None
) -> None:
    cid = people.owner.create_channel("tribe", "T")["channel_id"]
    connections = [f"c{i:03d}" for i in range(230)]
    for connection_id in connections:  # 230 online devices of the owner (not the sending one)
        container.delivery.connect(
            connection_id,
            org_id=people.info["owner"]["org_id"],
            member_id=people.info["owner"]["member_id"],
            device_id=f"d_other_{connection_id}",
            channels=[cid],
        )
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-3")
        url = sqs.create_queue(QueueName="bocage-fanout")["QueueUrl"]
        push = RecordingPush()
        delivery = Delivery(
            container.store, container.clock, push, SqsQueue(sqs, url), inline_limit=50, chunk_size=100
        )
        container.messaging._delivery = delivery
        people.owner.send_text(cid, "to many")
        assert push.frames == []  # nothing pushed inline: the send returned after enqueueing
        bodies = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            bodies += [m["Body"] for m in got]
        assert sorted(len(json.loads(b)["connections"]) for b in bodies) == [30, 100, 100]
        container.delivery._push = push  # the app's own SQS handler consumes the chunks
        api.lambda_.invoke("fanout", sqs_event(bodies))
    assert sorted(c for c, f in push.frames if f["type"] == "message") == connections


def test_deeply_nested_frames_get_an_error_frame_not_an_exception(
    api: SignedApi, people: People, push: RecordingPush
) -> None:
    """Red-team finding: a frame nested 5,000 deep raised and left a traceback in the log."""
    api.ws_connect(people.keys["owner"], "c1")
    deep = "[" * 5000 + "]" * 5000
    bodies = [
        deep,
        '{"action": "ping", "ref": "r1", "x": ' + deep + "}",
        '{"action": "send", "ref": "r2", "envelope": {"ciphertext": ' + deep + "}}",
        '{"action": "send", "ref": "r3", "envelope": ' + "{" + '"a":{' * 4000 + "}" * 4001 + "}",
    ]
    for body in bodies:
        assert api.ws("ws_message", ws_event("$default", "c1", body=body)) == {"statusCode": 200}
    errors = push.to("c1", "error")
    assert [e["status"] for e in errors] == [400, 400, 400, 400]
    assert all("JSON objects" in e["message"] and "ref" not in e for e in errors)  # unreadable: no ref
    api.ws("ws_message", ws_event("$default", "c1", body='{"action": "ping", "ref": "after"}'))
    assert push.to("c1", "pong")[-1]["ref"] == "after"  # the connection still works
