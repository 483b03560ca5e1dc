"""The local WebSocket gateway, @connections endpoint and in-process push, over real sockets on loopback.

A small echo app defined here: $connect checks a token, $default pushes the body
back uppercased, $disconnect records the connection id. Every test of the ``stack``
fixture runs with both Push adapters: ApiGatewayPush (boto3, signed, to the REST
gateway's @connections endpoint, as on AWS) and InProcessPush (what ``bocage serve`` uses).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.app import Chalice, WebsocketEvent
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from bocage.local.connections import MAX_FRAME, ConnectionRegistry
from bocage.local.gateway import make_server
from bocage.local.in_process_push import FrameTooLarge, InProcessPush
from bocage.local.websocket_gateway import WebSocketGateway
from chalicelib.adapters.apigw_push import ApiGatewayPush
from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.ports import ConnectionGone, Push
from chalicelib.services.delivery import Delivery

pytestmark = pytest.mark.e2e

REGION = "eu-west-3"


@dataclass
class AppState:
    push: Push | None = None
    disconnected: list[str] = field(default_factory=list)


STATE = AppState()
app = Chalice(app_name="bocage-ws-echo")


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> dict[str, Any]:
    query = event.to_dict().get("queryStringParameters") or {}
    if query.get("token") == "boom":
        raise RuntimeError("the $connect handler crashed")
    if query.get("token") == "slow":
        time.sleep(0.5)
        return {"statusCode": 200}
    if query.get("token") != "ok":
        return {"statusCode": 403, "body": "bad token"}
    return {"statusCode": 200}


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> dict[str, Any]:
    raw = event.to_dict()
    data = base64.b64decode(raw["body"]) if raw.get("isBase64Encoded") else raw["body"].encode()
    assert STATE.push is not None
    if data == b"boom":
        raise RuntimeError("the $default handler crashed")
    reply = event.connection_id.encode() if data == b"whoami" else data.upper()
    STATE.push.send(event.connection_id, reply)
    return {"statusCode": 200, "body": "never sent to the client"}


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    STATE.disconnected.append(event.connection_id)


@dataclass
class Stack:
    rest_url: str
    ws_url: str
    push: Push
    registry: ConnectionRegistry

    def client(self, token: str = "ok") -> ClientConnection:
        return connect(f"{self.ws_url}/?token={token}", open_timeout=5)

    def management(self) -> Any:
        return boto3.session.Session().client(
            "apigatewaymanagementapi", endpoint_url=self.rest_url, region_name=REGION
        )


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def whoami(ws: ClientConnection) -> str:
    ws.send("whoami")
    reply = ws.recv(timeout=5)
    assert isinstance(reply, str)
    return reply


def start_stack(rest_host: str, push_kind: str = "boto3") -> tuple[Stack, Callable[[], None]]:
    registry = ConnectionRegistry()
    rest = make_server(app, rest_host, 0, connections=registry)
    threading.Thread(target=rest.serve_forever, daemon=True).start()
    gateway = WebSocketGateway(app, "127.0.0.1", 0, connections=registry)
    gateway.start()
    rest_url = f"http://127.0.0.1:{rest.server_address[1]}"
    push: Push = (
        ApiGatewayPush.for_endpoint(rest_url, REGION) if push_kind == "boto3" else InProcessPush(registry)
    )
    STATE.push, STATE.disconnected = push, []

    def stop() -> None:
        gateway.stop()
        rest.shutdown()
        rest.server_close()
        STATE.push = None

    return Stack(rest_url, gateway.url, push, registry), stop


@pytest.fixture(params=["boto3", "in_process"])
def stack(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Stack]:
    started, stop = start_stack("127.0.0.1", request.param)
    yield started
    stop()


def test_bad_token_refuses_the_handshake_with_the_handlers_status(stack: Stack) -> None:
    with pytest.raises(InvalidStatus) as refused:
        stack.client(token="nope")
    assert refused.value.response.status_code == 403
    assert refused.value.response.body == b"bad token"
    time.sleep(0.2)
    assert STATE.disconnected == []  # a refused $connect has no $disconnect
    assert len(stack.registry) == 0


def test_a_crashing_connect_handler_refuses_with_500(stack: Stack) -> None:
    with pytest.raises(InvalidStatus) as refused:
        stack.client(token="boom")
    assert refused.value.response.status_code == 500


def test_a_crashing_message_handler_tells_the_client_and_keeps_the_connection(stack: Stack) -> None:
    with stack.client() as ws:
        connection_id = whoami(ws)
        ws.send("boom")
        error = json.loads(ws.recv(timeout=5))
        assert error["message"] == "Internal server error"
        assert error["connectionId"] == connection_id
        ws.send("still here")
        assert ws.recv(timeout=5) == "STILL HERE"


def test_a_client_leaving_during_connect_still_gets_its_disconnect(stack: Stack) -> None:
    with pytest.raises(TimeoutError):
        connect(f"{stack.ws_url}/?token=slow", open_timeout=0.1)
    wait_for(lambda: len(STATE.disconnected) == 1)  # $connect said yes, after the client had gone
    time.sleep(0.2)
    assert len(STATE.disconnected) == 1
    assert len(stack.registry) == 0


def test_echo_arrives_and_the_handlers_return_value_does_not(stack: Stack) -> None:
    with stack.client() as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "HELLO"
        ws.send("again")
        assert ws.recv(timeout=5) == "AGAIN"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)  # "never sent to the client" stays on the server


def test_disconnect_fires_once_after_close_and_push_then_raises_gone(stack: Stack) -> None:
    with stack.client() as ws:
        connection_id = whoami(ws)
        assert connection_id.endswith("=") and len(connection_id) == 16
        assert STATE.disconnected == []
    wait_for(lambda: connection_id in STATE.disconnected)
    time.sleep(0.2)
    assert STATE.disconnected == [connection_id]

    with pytest.raises(ConnectionGone) as gone:
        stack.push.send(connection_id, b"anyone there?")
    assert gone.value.connection_id == connection_id
    stack.push.close(connection_id)  # closing a gone connection is not an error


def test_network_drop_fires_disconnect(stack: Stack) -> None:
    with stack.client() as ws:
        connection_id = whoami(ws)
        ws.socket.shutdown(socket.SHUT_RDWR)  # no closing handshake: the TCP connection just ends
        wait_for(lambda: connection_id in STATE.disconnected)
    time.sleep(0.2)
    assert STATE.disconnected == [connection_id]
    assert stack.registry.info(connection_id) is None


def test_get_and_delete_connection(stack: Stack) -> None:
    management = stack.management()
    with stack.client() as ws:
        connection_id = whoami(ws)
        info = management.get_connection(ConnectionId=connection_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert info["ConnectedAt"] <= info["LastActiveAt"]
        assert info["ResponseMetadata"]["HTTPStatusCode"] == 200

        stack.push.close(connection_id)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    wait_for(lambda: STATE.disconnected == [connection_id])
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=connection_id)
    with pytest.raises(management.exceptions.GoneException):
        management.delete_connection(ConnectionId=connection_id)


def test_two_clients_get_only_their_own_echoes_in_order(stack: Stack) -> None:
    received: dict[str, list[Any]] = {}
    barrier = threading.Barrier(2)

    def talk(name: str) -> None:
        with stack.client() as ws:
            barrier.wait()
            for i in range(20):
                ws.send(f"{name}-{i}")
            received[name] = [ws.recv(timeout=5) for _ in range(20)]

    threads = [threading.Thread(target=talk, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert received["a"] == [f"A-{i}" for i in range(20)]
    assert received["b"] == [f"B-{i}" for i in range(20)]


def test_a_binary_frame_round_trips(stack: Stack) -> None:
    with stack.client() as ws:
        ws.send(b"\x00\xff\xfebinary")
        assert ws.recv(timeout=5) == b"\x00\xff\xfeBINARY"


def test_unknown_connection_is_gone_and_ids_are_url_decoded(stack: Stack) -> None:
    with pytest.raises(ConnectionGone):
        stack.push.send("Xy12ab34CdE=", b"x")  # boto3 sends Xy12ab34CdE%3D
    with stack.client() as ws:
        connection_id = whoami(ws)
        stack.push.send(connection_id, b"straight from the backend")
        assert ws.recv(timeout=5) == "straight from the backend"


def test_management_api_answers_loopback_callers_only(aws_env: None) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        address = probe.getsockname()[0]
    except OSError:
        address = "127.0.0.1"
    finally:
        probe.close()
    if address.startswith("127."):
        pytest.skip("no non-loopback interface to call from")
    started, stop = start_stack("0.0.0.0")
    try:
        port = int(started.rest_url.rsplit(":", 1)[1])
        outside = http.client.HTTPConnection(address, port, timeout=5)
        outside.request("POST", "/@connections/abc%3D", body=b"x")
        answer = outside.getresponse()
        assert answer.status == 403
        assert answer.getheader("x-amzn-ErrorType") == "ForbiddenException"
        outside.close()
    finally:
        stop()


@pytest.fixture
def in_process(aws_env: None) -> Iterator[Stack]:
    started, stop = start_stack("127.0.0.1", "in_process")
    yield started
    stop()


def test_a_closed_connection_is_gone_and_delivery_forgets_it(in_process: Stack, tmp_path: Path) -> None:
    clock = SystemClock()
    store = SqliteStore(str(tmp_path / "bocage.sqlite3"), clock)
    delivery = Delivery(store, clock, in_process.push, None)
    try:
        with in_process.client() as ws:
            connection_id = whoami(ws)
            delivery.connect(connection_id, org_id="o1", member_id="m1", device_id="d1", channels=["c1"])
            # what a fan-out queue worker hands it: one chunk of a channel's connections
            chunk = json.dumps(
                {"channel_id": "c1", "frame": {"type": "pong"}, "connections": [connection_id]}
            )
            assert delivery.deliver_chunk(chunk) == 1
            assert json.loads(ws.recv(timeout=5))["type"] == "pong"
        wait_for(lambda: connection_id in STATE.disconnected)
        assert delivery.connection(connection_id) is not None  # the echo app's $disconnect keeps presence
        assert delivery.deliver_chunk(chunk) == 0  # ConnectionGone, handled by forgetting it
        assert delivery.connection(connection_id) is None
    finally:
        store.close()


def test_in_process_push_refuses_a_frame_api_gateway_would_refuse(in_process: Stack) -> None:
    with in_process.client() as ws:
        connection_id = whoami(ws)
        with pytest.raises(FrameTooLarge):
            in_process.push.send(connection_id, b"x" * (MAX_FRAME + 1))
        in_process.push.send(connection_id, b"x" * MAX_FRAME)
        assert ws.recv(timeout=5) == "x" * MAX_FRAME
