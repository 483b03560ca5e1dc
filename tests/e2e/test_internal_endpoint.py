"""The internal endpoint replicas push through: never on the public port, signed on its own."""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bocage.local.cluster import CLOSE_PATH, PUSH_PATH, PeerError, Peers, pack, signature
from tests.e2e.conftest import Server, start_server

pytestmark = pytest.mark.e2e

SECRET = "test-cluster-secret"


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "data", tmp_path / "serve.log", BOCAGE_CLUSTER_SECRET=SECRET)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


def internal_address(server: Server) -> str:
    match = re.search(r"internal endpoint (http://\S+)", server.banner)
    assert match, server.banner
    return match.group(1)


def post(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("POST", path, body, headers or {})
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_public_port_has_neither_the_internal_endpoint_nor_connections_api(replica: Server) -> None:
    for path in (PUSH_PATH, CLOSE_PATH, "/@connections/abc%3D", "/api/@connections/abc%3D"):
        assert post(replica.url, path, pack(["abc="], b"{}")) == 404, path


def test_the_internal_endpoint_refuses_what_is_not_signed_with_the_cluster_secret(replica: Server) -> None:
    address = internal_address(replica)
    body = pack(["abc="], b'{"type": "pong"}')
    now = str(int(time.time()))
    assert post(address, PUSH_PATH, body) == 403
    forged = signature(b"another secret", now, PUSH_PATH, body)
    assert post(address, PUSH_PATH, body, {"X-Bocage-Time": now, "X-Bocage-Signature": forged}) == 403
    old = str(int(time.time()) - 3600)  # a replayed request, past the window
    replayed = signature(SECRET.encode(), old, PUSH_PATH, body)
    assert post(address, PUSH_PATH, body, {"X-Bocage-Time": old, "X-Bocage-Signature": replayed}) == 403
    other_path = signature(SECRET.encode(), now, CLOSE_PATH, body)  # signed for another action
    assert post(address, PUSH_PATH, body, {"X-Bocage-Time": now, "X-Bocage-Signature": other_path}) == 403
    assert post(address, "/health", b"") == 404  # nothing of the public API there


def test_a_signed_push_is_answered_with_the_connections_that_are_gone(replica: Server) -> None:
    peers = Peers(SECRET.encode(), "r_test")
    address = internal_address(replica)
    assert peers.post(address, PUSH_PATH, pack(["gone1=", "gone2="], b'{"type": "pong"}')) == b"gone1=,gone2="
    with pytest.raises(PeerError):
        Peers(b"wrong", "r_test").post(address, PUSH_PATH, pack(["gone1="], b"{}"))
