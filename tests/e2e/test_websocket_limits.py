"""WebSocket abuse against a real `bocage serve` on loopback (issue 19, red-team finding: one
device opened 60 WebSockets and sent 300 pings unthrottled): a device keeps 5 connections, the
oldest closed with 4008; a flood of frames gets ``rate_limited`` then a close with 4029; a
client within the limit never hears of it; and the SDK does not come back after 4008."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bocage.client.api import BocageClient
from bocage.client.live import RATE_LIMITED_PAUSE, ConnectionReplaced, LiveSession
from bocage.client.messenger import Messenger
from bocage.client.profile import Profile, sign_token
from chalicelib.domain.frames import CLOSE_RATE_LIMITED, CLOSE_REPLACED
from tests.e2e.conftest import ROOT, Server, base_env, bocage

pytestmark = pytest.mark.e2e


def owner_profile(server: Server, tmp_path: Path) -> Profile:
    bocage("--profile", str(tmp_path / "owner"), "activate", server.owner_url(), "--name", "Maire")
    return Profile(tmp_path / "owner")


@pytest.fixture
def opened() -> Iterator[contextlib.ExitStack]:
    """The test's sockets, closed at its end whatever happened."""
    with contextlib.ExitStack() as stack:
        yield stack


def open_socket(opened: contextlib.ExitStack, server: Server, profile: Profile) -> ClientConnection:
    keys = profile.keys()
    token = sign_token(keys.signing, keys.device_id, "GET", "$connect", None, b"", now=int(time.time()))
    ws_url = str(BocageClient(server.url).health()["ws_url"])
    return opened.enter_context(
        connect(f"{ws_url}?token={quote(token)}", open_timeout=10, ping_interval=None)
    )


def frames_until_closed(ws: ClientConnection, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every frame the server sends until it closes the connection (or ``timeout`` passes)."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            frames.append(json.loads(ws.recv(timeout=left)))
    except (ConnectionClosed, TimeoutError):
        pass
    return frames


def test_a_sixth_connection_of_a_device_closes_its_oldest_with_4008(
    server: Server, tmp_path: Path, opened: contextlib.ExitStack
) -> None:
    owner = owner_profile(server, tmp_path)
    sockets = []
    for _ in range(5):
        sockets.append(open_socket(opened, server, owner))
        time.sleep(0.01)  # distinct connectedAt milliseconds: "oldest" is well defined
    for ws in sockets:  # all five answer: none was closed
        ws.send('{"action": "ping", "ref": "alive"}')
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong", "ref": "alive"}

    sixth = open_socket(opened, server, owner)
    oldest = frames_until_closed(sockets[0])
    assert [(f["type"], f["status"], f["error"]) for f in oldest] == [("error", 409, "replaced")]
    assert sockets[0].close_code == CLOSE_REPLACED
    assert sockets[0].close_reason == "replaced by a newer connection of this device"
    for ws in [*sockets[1:], sixth]:
        ws.send('{"action": "ping", "ref": "still"}')
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong", "ref": "still"}
        ws.close()


def test_the_sdk_stops_listening_when_replaced_instead_of_reconnecting(
    server: Server, tmp_path: Path, opened: contextlib.ExitStack
) -> None:
    owner = owner_profile(server, tmp_path)
    newer: list[ClientConnection] = []

    def five_newer() -> None:  # once the listener's socket is open
        for _ in range(5):
            time.sleep(0.02)
            newer.append(open_socket(opened, server, owner))

    started = time.monotonic()
    with pytest.raises(ConnectionReplaced) as refused:
        for _ in Messenger(owner).listen(
            timeout=30, on_ready=lambda: threading.Thread(target=five_newer).start()
        ):
            pass
    assert refused.value.code == "replaced" and time.monotonic() - started < 15
    deadline = time.monotonic() + 5
    while len(newer) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    for ws in newer:  # nobody came back to close one of the newer five
        ws.send('{"action": "ping"}')
        assert json.loads(ws.recv(timeout=5))["type"] == "pong"
        ws.close()


def test_bocage_listen_exits_with_the_replaced_error(
    server: Server, tmp_path: Path, opened: contextlib.ExitStack
) -> None:
    owner = owner_profile(server, tmp_path)
    listen = subprocess.Popen(
        [sys.executable, "-m", "bocage", "--profile", str(tmp_path / "owner"), "listen", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=base_env(),
    )
    try:
        assert listen.stderr is not None
        assert listen.stderr.readline().strip() == "listening"
        newer = [open_socket(opened, server, owner) for _ in range(5)]
        assert listen.wait(timeout=20) == 1
        assert "newer connections" in listen.stderr.read()
        for ws in newer:
            ws.close()
    finally:
        if listen.poll() is None:
            listen.kill()


def test_a_flood_of_pings_gets_rate_limited_then_closed_with_4029(
    server: Server, tmp_path: Path, opened: contextlib.ExitStack
) -> None:
    owner = owner_profile(server, tmp_path)
    ws = open_socket(opened, server, owner)
    for i in range(300):
        try:
            ws.send(json.dumps({"action": "ping", "ref": str(i)}))
        except ConnectionClosed:
            break
    frames = frames_until_closed(ws)
    pongs = [f for f in frames if f["type"] == "pong"]
    limited = [f for f in frames if f["type"] == "error"]
    assert 40 <= len(pongs) < 150  # the burst of 40, and what the rate refilled while they ran
    assert limited and {(f["status"], f["error"]) for f in limited} == {(429, "rate_limited")}
    assert len(limited) <= 15  # ten strikes (and the odd refill), then the close
    assert ws.close_code == CLOSE_RATE_LIMITED and ws.close_reason == "too many frames"
    session = LiveSession(ws, lambda _frame: None)
    session.pump()
    assert session.closed and session.pause_before_reconnecting() == RATE_LIMITED_PAUSE
    assert "over the frame limit closed" in server.output()


def test_a_client_within_the_limit_is_never_limited(
    server: Server, tmp_path: Path, opened: contextlib.ExitStack
) -> None:
    """15 frames a second for 4 s: 60 frames, more than the burst, none refused."""
    owner = owner_profile(server, tmp_path)
    ws = open_socket(opened, server, owner)
    answers: list[dict[str, Any]] = []
    started = time.monotonic()
    for i in range(60):
        time.sleep(max(0.0, started + i / 15 - time.monotonic()))
        ws.send(json.dumps({"action": "ping", "ref": str(i)}))
    while len(answers) < 60:
        answers.append(json.loads(ws.recv(timeout=5)))
    assert answers == [{"type": "pong", "ref": str(i)} for i in range(60)]
    ws.send('{"action": "ping", "ref": "after"}')
    assert json.loads(ws.recv(timeout=5)) == {"type": "pong", "ref": "after"}
    ws.close()
