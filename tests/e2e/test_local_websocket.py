"""`bocage serve`'s WebSocket side and its in-process push, over real sockets on loopback.

A small echo app defined here: $connect checks a token, $default pushes the body back
uppercased, $disconnect records the connection id. The server is the one `bocage serve`
runs (bocage/local/asgi.py: uvicorn, the same protocols, limits and upkeep), on a thread.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chalice.app import Chalice, WebsocketEvent
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from bocage.local import connections as connections_module
from bocage.local.asgi import ServerThread, assemble, listen, make_server
from bocage.local.connections import MAX_FRAME, ConnectionRegistry
from bocage.local.in_process_push import FrameTooLarge, InProcessPush
from bocage.local.serve_settings import ServeSettings
from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.ports import ConnectionGone, Target
from chalicelib.services.delivery import Delivery

pytestmark = pytest.mark.e2e


@dataclass
class AppState:
    push: InProcessPush | None = None
    disconnected: list[str] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)


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
    STATE.codes.append(int(event.to_dict()["requestContext"]["disconnectStatusCode"]))


@dataclass
class Stack:
    url: str
    ws_url: str
    push: InProcessPush
    registry: ConnectionRegistry
    server: ServerThread

    def client(self, token: str = "ok", **options: Any) -> ClientConnection:
        options.setdefault("open_timeout", 5)
        ws: ClientConnection = connect(f"{self.ws_url}?token={token}", **options)
        return ws


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


def start_stack(options: ServeSettings) -> Stack:
    registry = ConnectionRegistry(options.ws_send_buffer)
    executor = ThreadPoolExecutor(options.workers)
    listener = listen("127.0.0.1", 0)
    port = int(listener.getsockname()[1])
    asgi = assemble(app, executor, registry, options, domain_name=f"127.0.0.1:{port}")
    server = ServerThread(make_server(asgi, options), [listener]).start()
    push = InProcessPush(registry)
    STATE.push, STATE.disconnected, STATE.codes = push, [], []
    return Stack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", push, registry, server)


@pytest.fixture
def stack_with(aws_env: None) -> Iterator[Callable[..., Stack]]:
    started: list[Stack] = []

    def start(**options: Any) -> Stack:
        started.append(start_stack(ServeSettings(**{"shutdown_timeout": 2, **options})))
        return started[-1]

    yield start
    for stack in started:
        stack.server.stop()
    STATE.push = None


@pytest.fixture
def stack(stack_with: Callable[..., Stack]) -> Stack:
    return stack_with()


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


def test_websockets_live_on_ws_only(stack: Stack) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{stack.url.replace('http', 'ws')}/elsewhere?token=ok", open_timeout=5)
    assert refused.value.response.status_code == 404


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
        stack.client(token="slow", open_timeout=0.1)
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
    assert connection_id not in stack.registry


def test_the_backend_closes_a_connection(stack: Stack) -> None:
    with stack.client() as ws:
        connection_id = whoami(ws)
        stack.push.close(connection_id)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1000
    wait_for(lambda: STATE.disconnected == [connection_id])


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


def test_unknown_connection_is_gone(stack: Stack) -> None:
    with pytest.raises(ConnectionGone):
        stack.push.send("Xy12ab34CdE=", b"x")
    with stack.client() as ws:
        connection_id = whoami(ws)
        stack.push.send(connection_id, b"straight from the backend")
        assert ws.recv(timeout=5) == "straight from the backend"


def test_pushes_from_many_threads_all_arrive_each_thread_s_in_order_then_the_close(stack: Stack) -> None:
    """Pushes from worker threads wait together for the event loop (one wake-up for all that
    arrive before it runs): none is lost, each thread's come in its order, and a close pushed
    after them comes after them."""
    with stack.client() as ws:
        connection_id = whoami(ws)
        barrier = threading.Barrier(4)

        def push(name: str) -> None:
            barrier.wait()
            for i in range(100):
                stack.push.send(connection_id, f"{name}-{i}".encode())

        threads = [threading.Thread(target=push, args=(name,)) for name in "abcd"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        closer = threading.Thread(target=stack.push.close, args=(connection_id, 1000, "done"))
        closer.start()
        closer.join(5)
        got = [str(ws.recv(timeout=5)) for _ in range(400)]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    for name in "abcd":
        assert [g for g in got if g.startswith(f"{name}-")] == [f"{name}-{i}" for i in range(100)]


def test_one_frame_to_many_is_serialised_once(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = connections_module.encode_frame

    def counting(data: bytes) -> bytes:
        calls.append(data)
        return real(data)

    monkeypatch.setattr(connections_module, "encode_frame", counting)
    with contextlib.ExitStack() as opened:
        clients = [opened.enter_context(stack.client()) for _ in range(3)]
        ids = [whoami(ws) for ws in clients]
        calls.clear()
        gone = stack.push.send_many([Target(i) for i in [*ids, "Gone00000000="]], b'{"type": "pong"}')
        assert gone == ["Gone00000000="]
        assert [ws.recv(timeout=5) for ws in clients] == ['{"type": "pong"}'] * 3
        assert calls == [b'{"type": "pong"}']


def test_a_closed_connection_is_gone_and_delivery_forgets_it(stack: Stack, tmp_path: Path) -> None:
    clock = SystemClock()
    store = SqliteStore(str(tmp_path / "bocage.sqlite3"), clock)
    delivery = Delivery(store, clock, stack.push, None)
    try:
        with stack.client() as ws:
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
        assert delivery.deliver_chunk(chunk) == 0  # gone, handled by forgetting it
        assert delivery.connection(connection_id) is None
    finally:
        store.close()


def test_in_process_push_refuses_a_frame_api_gateway_would_refuse(stack: Stack) -> None:
    with stack.client() as ws:
        connection_id = whoami(ws)
        with pytest.raises(FrameTooLarge):
            stack.push.send(connection_id, b"x" * (MAX_FRAME + 1))
        stack.push.send(connection_id, b"x" * MAX_FRAME)
        assert ws.recv(timeout=5) == "x" * MAX_FRAME


# -- the server's limits ----------------------------------------------------------------------


def test_a_client_that_stops_reading_is_dropped_and_others_keep_up(stack_with: Callable[..., Stack]) -> None:
    stack = stack_with(ws_send_buffer=256 * 1024)
    frame = b"y" * (64 * 1024)
    with stack.client() as reader, stack.client(max_size=None) as stalled:
        reader_id, stalled_id = whoami(reader), whoami(stalled)
        # the stalled client never reads again: its kernel buffers fill, then the server's
        received = 0
        for _ in range(200):
            if stalled_id not in stack.registry:
                break
            stack.push.send_many([Target(stalled_id), Target(reader_id)], frame)
            assert reader.recv(timeout=5) == frame.decode()
            received += 1
        wait_for(lambda: stalled_id in STATE.disconnected)
        assert stack.registry.dropped == 1
        assert stalled_id not in stack.registry
        stack.push.send(reader_id, b"still served")
        assert reader.recv(timeout=5) == "still served"
    assert received < 200


def test_an_idle_websocket_is_closed_with_1001(stack_with: Callable[..., Stack]) -> None:
    stack = stack_with(ws_idle_timeout=0.6)
    with stack.client() as idle, stack.client() as busy:
        idle_id = whoami(idle)
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            whoami(busy)  # every frame counts as activity
            time.sleep(0.1)
        with pytest.raises(ConnectionClosed):
            idle.recv(timeout=5)
        assert idle.close_code == 1001
        assert whoami(busy)
    wait_for(lambda: idle_id in STATE.disconnected)


def test_connections_over_the_cap_are_refused_with_503(stack_with: Callable[..., Stack]) -> None:
    stack = stack_with(max_connections=2)
    with stack.client() as first, stack.client() as second:
        assert whoami(first) and whoami(second)
        with pytest.raises(InvalidStatus) as refused:
            stack.client()
        assert refused.value.response.status_code == 503
    wait_for(lambda: len(stack.registry) == 0)
    with stack.client() as again:
        assert whoami(again)


def test_stopping_closes_websockets_with_1012_and_runs_their_disconnect(
    stack_with: Callable[..., Stack],
) -> None:
    stack = stack_with()
    with stack.client() as ws:
        connection_id = whoami(ws)
        stack.server.stop()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1012  # Service Restart: both clients reconnect on it
    assert STATE.disconnected == [connection_id]


# -- the lean WebSocket protocol (bocage/local/websocket_protocol.py) -----------------------------

UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
)


def raw_upgrade(stack: Stack, path: str = "/ws?token=ok", extra: str = "") -> tuple[socket.socket, bytes]:
    """A bare TCP client sends an upgrade request; returns the socket and the answer's head."""
    port = int(stack.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(UPGRADE.format(path=path, extra=extra).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server ends the TCP connection within ``timeout`` (whatever it sends first)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_an_upgrade_without_a_key_is_refused_with_400_and_no_handler_runs(stack: Stack) -> None:
    port = int(stack.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"GET /ws?token=ok HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"Sec-WebSocket-Key" in answer  # websockets says what is wrong
    time.sleep(0.2)
    assert len(stack.registry) == 0 and STATE.disconnected == []


def test_a_message_over_128_kib_closes_with_1009_and_runs_disconnect(stack: Stack) -> None:
    with stack.client(max_size=None) as ws:
        connection_id = whoami(ws)
        ws.send("z" * (128 * 1024 + 1))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1009  # Message Too Big
    wait_for(lambda: connection_id in STATE.disconnected)
    assert STATE.codes == [1009]


def test_a_fragmented_message_is_handled_whole_and_one_of_exactly_128_kib_passes(stack: Stack) -> None:
    with stack.client(max_size=None) as ws:
        ws.send(["frag", "mented ", "message"])  # three frames: TEXT, CONT, CONT
        assert ws.recv(timeout=5) == "FRAGMENTED MESSAGE"
        ws.send([b"\xffbin", b"ary"])  # BINARY, CONT (not UTF-8: it comes back as binary)
        assert ws.recv(timeout=5) == b"\xffBINARY"
        ws.send(["a" * (64 * 1024), "b" * (64 * 1024)])  # 128 KiB in all: the limit, not over it
        reply = ws.recv(timeout=5)
        assert reply == "A" * (64 * 1024) + "B" * (64 * 1024)


def test_invalid_utf8_in_a_text_frame_closes_with_1007(stack: Stack) -> None:
    with stack.client() as ws:
        connection_id = whoami(ws)
        with ws.protocol_mutex:  # a TEXT frame that is not UTF-8, below the client's own checks
            ws.protocol.send_text(b"\xff\xfe not UTF-8")
            pending = ws.protocol.data_to_send()
        for data in pending:
            ws.socket.sendall(data)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1007
    wait_for(lambda: connection_id in STATE.disconnected)


def test_a_client_that_answers_no_ping_is_cut_off_and_one_that_answers_stays(
    stack_with: Callable[..., Stack],
) -> None:
    stack = stack_with(ws_ping_interval=0.3)
    dead, head = raw_upgrade(stack)  # completes the handshake, then neither reads nor answers
    with dead, stack.client() as alive:  # websockets' client answers pings by itself
        assert head.startswith(b"HTTP/1.1 101 ")
        wait_for(lambda: len(stack.registry) == 2)
        assert closed_by_server(dead, timeout=5)
        wait_for(lambda: len(stack.registry) == 1 and len(STATE.disconnected) == 1)
        time.sleep(1.0)  # three more rounds of pings
        assert whoami(alive) in stack.registry


def test_a_client_that_pings_and_never_reads_its_pongs_is_cut_off(stack: Stack) -> None:
    """Each ping gets a pong; a client that sends pings and reads nothing would make the server
    hold its pongs without end. Past MAX_CONTROL_BACKLOG unread, the connection is dropped."""
    sock, head = raw_upgrade(stack)
    with sock:
        assert head.startswith(b"HTTP/1.1 101 ")
        ping = bytes([0x89, 0x80 | 125]) + b"\0\0\0\0" + b"p" * 125  # masked, with a zero mask
        sock.settimeout(10)
        sent, ceiling = 0, 64 * 1024 * 1024
        try:
            while sent < ceiling:
                sock.sendall(ping * 512)
                sent += len(ping) * 512
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            pass
        assert sent < ceiling
        assert closed_by_server(sock, timeout=5)


def test_a_client_that_never_answers_our_close_is_cut_off(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bocage.local import websocket_protocol

    monkeypatch.setattr(websocket_protocol, "CLOSE_TIMEOUT", 0.5)
    sock, head = raw_upgrade(stack)
    with sock:
        assert head.startswith(b"HTTP/1.1 101 ")
        wait_for(lambda: len(stack.registry) == 1)
        (connection_id,) = [c.connection_id for c in stack.registry.snapshot()]
        started = time.monotonic()
        stack.push.close(connection_id, 1000, "bye")
        assert closed_by_server(sock, timeout=5)  # our close frame came, no answer went back
        assert 0.4 < time.monotonic() - started < 4
    wait_for(lambda: STATE.disconnected == [connection_id])


def test_upgrades_on_other_paths_are_refused_with_404_before_any_handler(stack: Stack) -> None:
    sock, head = raw_upgrade(stack, path="/@connections/abc?token=ok")
    with sock:
        assert head.startswith(b"HTTP/1.1 404 ")
    assert len(stack.registry) == 0
