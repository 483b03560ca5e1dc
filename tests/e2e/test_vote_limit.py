"""`bocage serve` limits votes per source address (issue 16, item 3: "joins and votes are
rate-limited per source address on `bocage serve`, so a script cannot stuff a poll cheaply").

One allowance per address for both paths a vote takes, REST and the WebSocket ``send`` action;
past it a vote gets 429 with Retry-After (REST) or a ``rate_limited`` error frame naming the
message (WebSocket), and nothing else is held up: messages, polls and reactions go on. A real
server on loopback, the real Python client, real sockets.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from websockets.sync.client import connect

from bocage.client.api import ApiError
from bocage.client.crypto import new_message_id
from bocage.client.messenger import CONNECT_PATH, Messenger
from bocage.client.profile import Profile, sign_token
from tests.e2e.conftest import Server, bocage, start_server

pytestmark = pytest.mark.e2e

BURST = 3


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Server]:
    """A server whose addresses may vote 3 times at once, then once a minute."""
    srv = start_server(
        tmp_path / "data", tmp_path / "serve.log", BOCAGE_VOTE_BURST=str(BURST), BOCAGE_VOTE_RATE="1"
    )
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=10)


def post_envelope(server: Server, owner: Messenger, channel_id: str, poll_id: str) -> tuple[int, Any, Any]:
    """A vote over REST, signed as the client signs it, with the answer's headers."""
    envelope = owner.seal(
        channel_id, new_message_id(), {"type": "vote", "poll_id": poll_id, "choices": [1]}, "vote", None
    )
    path = f"/channels/{channel_id}/messages"
    data = json.dumps(envelope.model_dump(mode="json")).encode()
    keys = owner.keys
    token = sign_token(keys.signing, keys.device_id, "POST", path, None, data, now=int(time.time()))
    request = urllib.request.Request(
        f"{server.url}{path}",
        data=data,
        headers={"Content-Type": "application/json", "Authorization": f"Bocage {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_a_flood_of_votes_from_one_address_is_refused_while_messages_go_through(
    limited: Server, tmp_path: Path
) -> None:
    bocage("--profile", str(tmp_path / "owner"), "activate", limited.owner_url(), "--name", "Maire")
    owner = Messenger(Profile(tmp_path / "owner"))
    tribe = owner.create_channel("tribe", "Consultation")["channel_id"]
    poll = owner.create_poll(tribe, "Un marché le dimanche ?", ["Oui", "Non"])["poll_id"]
    owner.vote(tribe, poll, [1])  # REST
    with owner.live():
        owner.send(tribe, {"type": "vote", "poll_id": poll, "choices": [1]}, kind="vote", live=True)
        owner.send(tribe, {"type": "vote", "poll_id": poll, "choices": [0]}, kind="vote", live=True)
        with pytest.raises(ApiError) as refused:  # the 4th, over the socket: the same allowance
            owner.send(tribe, {"type": "vote", "poll_id": poll, "choices": [1]}, kind="vote", live=True)
        assert (refused.value.status, refused.value.code) == (429, "rate_limited")
        assert "too many votes from this address; retry in" in refused.value.message
        owner.send_text(tribe, "Le dépouillement est demain", live=True)  # other kinds: never limited
    status, headers, body = post_envelope(limited, owner, tribe, poll)  # the 5th, over REST
    assert status == 429 and body["error"] == "rate_limited", body
    assert "too many votes from this address" in body["message"]
    assert 1 <= int(headers["Retry-After"]) <= 60  # one vote back a minute
    owner.send_text(tribe, "Merci à tous")
    second = owner.create_poll(tribe, "Et le samedi ?", ["Oui", "Non"])["poll_id"]
    owner.react(tribe, second, "👍")
    results = owner.poll_results(tribe, poll)
    assert results["counts"] == [1, 0] and results["voters"] == 1  # the last vote let through counts
    texts = [m.get("text") for m in owner.read(tribe)["messages"] if m.get("kind") == "message"]
    assert texts == ["Le dépouillement est demain", "Merci à tous"]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance_over_websockets(
    tmp_path: Path,
) -> None:
    """The WebSocket path counts the client as REST does: behind a proxy in
    BOCAGE_TRUSTED_PROXIES, the address it forwarded, not the proxy's, or a whole town behind
    one reverse proxy would share one allowance."""
    server = start_server(
        tmp_path / "data",
        tmp_path / "serve.log",
        BOCAGE_VOTE_BURST="1",
        BOCAGE_VOTE_RATE="1",
        BOCAGE_TRUSTED_PROXIES="127.0.0.1",
    )
    try:
        bocage("--profile", str(tmp_path / "owner"), "activate", server.owner_url(), "--name", "Maire")
        owner = Messenger(Profile(tmp_path / "owner"))
        tribe = owner.create_channel("tribe", "Consultation")["channel_id"]
        poll = owner.create_poll(tribe, "Un marché le dimanche ?", ["Oui", "Non"])["poll_id"]
        first, second = "203.0.113.9", "198.51.100.2"
        assert vote_over_socket(owner, tribe, poll, forwarded_for=first) == "ack"
        assert vote_over_socket(owner, tribe, poll, forwarded_for=first) == "rate_limited"
        assert vote_over_socket(owner, tribe, poll, forwarded_for=second) == "ack"
        # What a client writes at the left of the header is not believed (the rightmost hop is).
        assert vote_over_socket(owner, tribe, poll, forwarded_for=f"192.0.2.1, {first}") == "rate_limited"
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


def vote_over_socket(owner: Messenger, channel_id: str, poll_id: str, *, forwarded_for: str) -> str:
    """One vote on a fresh WebSocket whose handshake carries ``X-Forwarded-For``: the answer's
    type (``ack``) or error code."""
    keys = owner.keys
    token = sign_token(keys.signing, keys.device_id, "GET", CONNECT_PATH, None, b"", now=int(time.time()))
    envelope = owner.seal(
        channel_id, new_message_id(), {"type": "vote", "poll_id": poll_id, "choices": [0]}, "vote", None
    )
    url = f"{owner.ws_url()}?token={quote(token)}"
    with connect(url, open_timeout=10, additional_headers={"X-Forwarded-For": forwarded_for}) as ws:
        ws.send(json.dumps({"action": "send", "ref": "v1", "envelope": envelope.model_dump(mode="json")}))
        while True:
            frame = json.loads(ws.recv(timeout=10))
            if frame.get("ref") == "v1":
                return str(frame["type"] if frame["type"] == "ack" else frame["error"])


def test_votes_the_server_refuses_spend_nothing_of_the_addresss_allowance(
    limited: Server, tmp_path: Path
) -> None:
    """Someone on the town hall's network posting junk votes (no device: 401) spends nothing of
    the votes the people behind that address may cast: a vote the app does not store gives its
    token back."""
    bocage("--profile", str(tmp_path / "owner"), "activate", limited.owner_url(), "--name", "Maire")
    owner = Messenger(Profile(tmp_path / "owner"))
    tribe = owner.create_channel("tribe", "Consultation")["channel_id"]
    poll = owner.create_poll(tribe, "Un marché le dimanche ?", ["Oui", "Non"])["poll_id"]
    junk = json.dumps({"kind": "vote", "channel_id": tribe}).encode()
    for _ in range(BURST + 2):
        request = urllib.request.Request(
            f"{limited.url}/channels/{quote(tribe)}/messages",
            data=junk,
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as unsigned:
            urllib.request.urlopen(request, timeout=10)
        assert unsigned.value.code == 401
    for choice in (0, 1, 0):  # the whole allowance is still there
        owner.vote(tribe, poll, [choice])
    status, _, body = post_envelope(limited, owner, tribe, poll)
    assert status == 429 and body["error"] == "rate_limited", body
