"""Coalesced pushes (issue 18): a burst for one connection goes as fewer WebSocket messages.

The app runs on in-process moto with the real adapters, as bench/cost.py drives it (DynamoDB,
SQS, API Gateway's @connections API); the channel's fan-out takes the queue path, and the app's
own SQS handler consumes the chunks of one batch. What each connection received is read back
from moto's @connections backend, then handed byte for byte to the Python client over a real
WebSocket on loopback, which must open every frame of the batch, in order.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core.models import DEFAULT_ACCOUNT_ID as ACCOUNT
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

from bocage.client.live import LiveSession
from chalicelib import wiring
from chalicelib.adapters.sqs_queue import SqsQueue
from chalicelib.domain.frames import BATCH_UNIT, MessageFrame, ServerFrame
from chalicelib.services.delivery import Delivery

cost: Any = importlib.import_module("bench.cost")

REGION = "eu-west-3"
BURST = 5
TEXT_BYTES = cost.Load().message_bytes


def posted(connection_id: str) -> list[Any]:
    """Each WebSocket message moto's @connections API received for a connection, in order
    (moto keeps one byte string per connection: the JSON messages one after the other)."""
    backend = apigatewaymanagementapi_backends[ACCOUNT][REGION]
    held = {unquote(c): conn.data for c, conn in backend.connections.items()}
    text, decoder, messages, at = held.get(connection_id, b"").decode("utf-8"), json.JSONDecoder(), [], 0
    while at < len(text):
        message, at = decoder.raw_decode(text, at)
        messages.append(message)
    return messages


@pytest.fixture(scope="module")
def burst() -> Iterator[dict[str, Any]]:
    """Three members online; the first sends a burst of five over REST; the fan-out goes
    through SQS (inline limit 0), and the bench's poller hands one batch of its chunks to the
    app's ``fanout`` handler."""
    with cost.deployed(REGION) as running:
        members = running.open_channel(3)
        for i, member in enumerate(members):
            running.connect(member, f"c{i}")
        container = wiring.container()
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.get_queue_url(QueueName="bocage-cost-fanout")["QueueUrl"]
        queued = Delivery(
            container.store, container.clock, container.push, SqsQueue(sqs, url), inline_limit=0
        )
        container.messaging._delivery = queued  # every send's fan-out takes the queue path
        for _ in range(BURST):
            running.send(members[0], TEXT_BYTES, fan_out=False)
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"] == str(BURST)  # one chunk per send: three connections fit one
        assert running.fanout.drain(running.meter, running.api.lambda_.invoke) == 1  # one SQS batch
        tally = running.meter.tallies["push"]
        yield {
            "tally": tally,
            "received": {c: posted(c) for c in ("c0", "c1", "c2")},
            "reader": members[1].messenger,
        }


def test_a_burst_to_one_connection_goes_as_one_websocket_message(burst: dict[str, Any]) -> None:
    tally = burst["tally"]
    # two recipients, one message each, instead of five each
    assert tally.calls["apigatewaymanagementapi.PostToConnection"] == 2
    assert tally.ws_messages == 2
    for connection_id in ("c1", "c2"):
        (message,) = burst["received"][connection_id]
        assert message["type"] == "batch"
        assert [f["type"] for f in message["frames"]] == ["message"] * BURST
        assert len(json.dumps(message).encode("utf-8")) <= BATCH_UNIT  # billed as one 32 KB unit


def test_the_sending_device_gets_none_of_its_own_messages(burst: dict[str, Any]) -> None:
    assert burst["received"]["c0"] == []


def test_a_lone_frame_is_never_wrapped() -> None:
    from chalicelib.domain.frames import PongFrame, coalesce, frame_bytes

    alone = frame_bytes(PongFrame(ref="p"))
    assert coalesce([alone]) == [alone]
    big = [b'{"type":"pong","ref":"' + b"x" * 20_000 + b'"}'] * 3  # no two fit one unit
    assert coalesce(big) == big


def test_the_python_client_opens_every_frame_of_a_batch_in_order(burst: dict[str, Any]) -> None:
    """The batch moto received is replayed over a real WebSocket to the SDK's live session."""
    (batch,) = burst["received"]["c1"]
    wire = json.dumps(batch, separators=(",", ":"), ensure_ascii=False)

    def push_then_wait(connection: ServerConnection) -> None:
        connection.send(wire)
        connection.recv()  # until the client closes

    seen: list[ServerFrame] = []
    with serve(push_then_wait, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        with connect(f"ws://127.0.0.1:{port}") as ws:
            session = LiveSession(ws, seen.append)
            frames = list(session.frames(timeout=2))
        server.shutdown()
    assert frames == seen and all(isinstance(f, MessageFrame) for f in frames)
    messages = [f.message for f in frames if isinstance(f, MessageFrame)]
    assert [m.seq for m in messages] == [f["message"]["seq"] for f in batch["frames"]]
    assert [m.seq for m in messages] == sorted(m.seq for m in messages) and len(messages) == BURST
    opened = [burst["reader"].open(m.wire()) for m in messages]
    assert all(o["verified"] and o.get("error") is None for o in opened), opened
    assert [o["seq"] for o in opened] == [m.seq for m in messages]
    assert all(o["text"] == cost.text_of(TEXT_BYTES) for o in opened)
