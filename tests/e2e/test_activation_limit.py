"""`bocage serve` limits activation attempts per client address (issue 19: red-team finding).

Codes carry 160 random bits, so this is not what keeps them secret; it keeps one source from
spending the server's time on guesses. Past the burst a source gets 429 with Retry-After and a
JSON body; other routes and other sources go on. ``X-Forwarded-For`` counts only from a trusted
proxy (BOCAGE_TRUSTED_PROXIES), or anyone could pick a fresh address per attempt.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, start_server

pytestmark = pytest.mark.e2e

BURST = 20  # the default: a training session of 20 people behind one office address


def _post_activate(url: str, forwarded_for: str | None = None) -> tuple[int, Message, Any]:
    headers = {"Content-Type": "application/json"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    request = urllib.request.Request(f"{url}/activate", data=b'{"code": "AAAA-BBBB"}', headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def _health(url: str) -> int:
    with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
        return int(response.status)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(
        tmp_path / "data",
        tmp_path / "serve.log",
        BOCAGE_TRUSTED_PROXIES="127.0.0.1",
        BOCAGE_ACTIVATION_BURST="3",
    )
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=10)


def test_activation_attempts_past_the_burst_get_429_with_retry_after(server: Server) -> None:
    for _ in range(BURST):
        status, _, body = _post_activate(server.url)
        assert status == 400, body  # a malformed attempt still counts
    status, headers, body = _post_activate(server.url)
    assert status == 429
    assert body["error"] == "rate_limited" and "retry in" in body["message"]
    assert 1 <= int(headers["Retry-After"]) <= 6  # one attempt back every 6 s (10 a minute)
    # Not believed from an untrusted peer: a made-up address does not buy a fresh allowance.
    assert _post_activate(server.url, forwarded_for="203.0.113.9")[0] == 429
    assert _health(server.url) == 200  # other routes go on


def test_a_trusted_proxy_has_each_forwarded_client_counted_apart(proxied: Server) -> None:
    for _ in range(3):
        assert _post_activate(proxied.url, forwarded_for="203.0.113.9")[0] == 400
    assert _post_activate(proxied.url, forwarded_for="203.0.113.9")[0] == 429
    # The rightmost untrusted hop is the client: what it wrote at the left is not believed.
    assert _post_activate(proxied.url, forwarded_for="198.51.100.1, 203.0.113.9")[0] == 429
    assert _post_activate(proxied.url, forwarded_for="203.0.113.9, 198.51.100.1")[0] == 400
    assert _post_activate(proxied.url, forwarded_for="198.51.100.2")[0] == 400


def test_join_attempts_share_the_allowance(server: Server) -> None:
    """``POST /join`` makes a device from a poster's link: a script filling a poll with followers
    is slowed per address like activation guesses (docs/protocol.md, 16.2)."""
    for path in ("/join", "/activate") * (BURST // 2):
        request = urllib.request.Request(
            f"{server.url}{path}", data=b"{}", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400
    status, headers, body = _post_join(server.url)
    assert status == 429 and body["error"] == "rate_limited" and int(headers["Retry-After"]) >= 1


def _post_join(url: str) -> tuple[int, Message, Any]:
    request = urllib.request.Request(f"{url}/join", data=b"{}", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())
