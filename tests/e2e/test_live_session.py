"""The SDK's live connection against a real `bocage serve`: sends acknowledged over the
WebSocket, rosters kept while the connection vouches for them, pushed messages opened
from what the device already knows."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from bocage.client.api import ApiError, BocageClient
from bocage.client.live import LiveSession
from bocage.client.messenger import Messenger
from bocage.client.profile import Profile
from chalicelib.domain.frames import JoinedFrame, MessageFrame
from tests.e2e.conftest import Server, bocage, bocage_fails, start_server
from tests.e2e.test_messaging_walkthrough import Listener


class CountingClient(BocageClient):
    """The real client, recording each REST call it makes."""

    calls: list[tuple[str, str]]

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
    ) -> dict[str, Any]:
        self.calls.append((method, path))
        return super().request(method, path, body, query)


def counting_messenger(profile: Path) -> tuple[Messenger, list[tuple[str, str]]]:
    p = Profile(profile)
    client = CountingClient(p.info()["server"], device=p.keys())
    client.calls = []
    return Messenger(p, client=client), client.calls


def org_with_group(
    server: Server, tmp_path: Path, *names: str
) -> tuple[dict[str, Path], str, dict[str, str]]:
    """The owner, the named members activated, and a group of the owner's with ``alice`` in it."""
    p = {name: tmp_path / name for name in ("owner", *names)}
    bocage("--profile", str(p["owner"]), "activate", server.owner_url(), "--name", "Maire")
    members = {}
    for name in names:
        invitation = bocage("--profile", str(p["owner"]), "invite", "--name", name.title())
        url = invitation["activation_url"]
        members[name] = bocage("--profile", str(p[name]), "activate", url, "--name", name.title())[
            "member_id"
        ]
    group = bocage("--profile", str(p["owner"]), "group", "create", "Conseil")["channel_id"]
    bocage("--profile", str(p["owner"]), "channel", "add", group, members["alice"])
    return p, group, members


def test_send_live_is_acknowledged_stored_once_and_received(server: Server, tmp_path: Path) -> None:
    p, group, _ = org_with_group(server, tmp_path, "alice")
    listener = Listener(p["alice"], 1)
    text = "Réunion avancée à 17h"
    sent = bocage("--profile", str(p["owner"]), "send", group, text, "--live")
    assert set(sent) == {"message_id", "channel_id", "seq", "expires_at", "duplicate", "online", "warnings"}
    assert sent["warnings"] == []  # every recipient certified, the membership verified
    assert (sent["channel_id"], sent["seq"], sent["duplicate"]) == (group, 1, False)
    (got,) = listener.messages()
    assert (got["message_id"], got["text"], got["verified"], got["sender_name"]) == (
        sent["message_id"],
        text,
        True,
        "Maire",
    )
    stored = [i for i in server.stored_items() if i.get("message_id") == sent["message_id"]]
    assert len([i for i in stored if "ciphertext" in i]) == 1


def test_a_refused_live_send_is_the_same_error_as_over_rest(server: Server, tmp_path: Path) -> None:
    p, _, members = org_with_group(server, tmp_path, "alice")
    tribe = bocage("--profile", str(p["owner"]), "tribe", "create", "Infos")["channel_id"]
    bocage("--profile", str(p["owner"]), "channel", "add", tribe, members["alice"])
    alice = Messenger(Profile(p["alice"]))
    with alice.live(), pytest.raises(ApiError) as refused:
        alice.send_text(tribe, "members do not post in a tribe", live=True)
    assert refused.value.status == 403
    assert (
        bocage_fails("--profile", str(p["alice"]), "send", tribe, "over REST")["error"] == refused.value.code
    )


def test_sends_go_over_the_open_socket_by_default_and_over_rest_without_one(
    server: Server, tmp_path: Path
) -> None:
    p, group, _ = org_with_group(server, tmp_path, "alice")
    owner, calls = counting_messenger(p["owner"])
    owner.send_text(group, "warm-up")  # the key goes out, the roster is kept
    posted = ("POST", f"/channels/{group}/messages")
    calls.clear()
    owner.send_text(group, "no socket")
    assert calls.count(posted) == 1
    with owner.live():
        calls.clear()
        receipt = owner.send_text(group, "over the socket")
        assert posted not in calls and receipt["duplicate"] is False
        over_rest = owner.send_text(group, "asked for REST", live=False)
        assert calls.count(posted) == 1 and over_rest["seq"] == receipt["seq"] + 1
    texts = [m.get("text") for m in bocage("--profile", str(p["alice"]), "read", group)["messages"]]
    assert texts == ["warm-up", "no socket", "over the socket", "asked for REST"]


def test_a_live_send_whose_ack_is_lost_is_resent_over_rest_and_stored_once(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frame reached the server and its ack never came back (the socket dropped): the same
    envelope goes over REST, which answers it as a duplicate; one copy is stored."""
    p, group, _ = org_with_group(server, tmp_path, "alice")
    owner, calls = counting_messenger(p["owner"])
    owner.send_text(group, "warm-up")
    sent_over_socket = LiveSession.send

    def ack_lost(session: LiveSession, envelope: Any, timeout: float = 30.0, *, notify: Any = ()) -> Any:
        sent_over_socket(session, envelope, timeout, notify=notify)
        raise TimeoutError("no answer from the server")

    with owner.live():
        monkeypatch.setattr(LiveSession, "send", ack_lost)
        calls.clear()
        receipt = owner.send_text(group, "once only")
    assert calls.count(("POST", f"/channels/{group}/messages")) == 1
    assert receipt["duplicate"] is True and receipt["seq"] == 2
    stored = [i for i in server.stored_items() if i.get("message_id") == receipt["message_id"]]
    assert len([i for i in stored if "ciphertext" in i]) == 1


def test_a_watched_roster_makes_a_send_one_round_trip_until_someone_joins(
    server: Server, tmp_path: Path
) -> None:
    p, group, members = org_with_group(server, tmp_path, "alice", "bob")
    owner, calls = counting_messenger(p["owner"])
    with owner.live() as session:
        owner.send_text(group, "first")
        calls.clear()
        owner.send_text(group, "second")
        assert calls == []  # the send went over the open socket: no REST request at all

        bocage("--profile", str(p["owner"]), "channel", "add", group, members["bob"])  # another process
        assert any(isinstance(f, JoinedFrame) for f in session.frames(timeout=5))
        calls.clear()
        owner.send_text(group, "welcome Bob")
        assert ("GET", f"/channels/{group}/roster") in calls  # the newer version was fetched
    read = bocage("--profile", str(p["bob"]), "read", group)
    assert [(m.get("text"), m["verified"]) for m in read["messages"]][-1] == ("welcome Bob", True)


def test_a_pushed_message_from_a_known_device_opens_without_a_request(server: Server, tmp_path: Path) -> None:
    p, group, _ = org_with_group(server, tmp_path, "alice")
    bocage("--profile", str(p["owner"]), "send", group, "before")
    assert bocage("--profile", str(p["alice"]), "read", group)["messages"][0]["verified"]  # learns the owner

    alice, calls = counting_messenger(p["alice"])
    with alice.live() as session:
        calls.clear()
        sent = bocage("--profile", str(p["owner"]), "send", group, "pushed")
        frame = next(f for f in session.frames(timeout=10) if isinstance(f, MessageFrame))
        opened = alice.handle(frame)
    assert opened is not None
    assert (opened["message_id"], opened["text"], opened["verified"]) == (sent["message_id"], "pushed", True)
    assert opened["sender_name"] == "Maire"
    assert calls == []


def test_listen_comes_back_after_a_restart_and_shows_each_message_once(
    server: Server, tmp_path: Path
) -> None:
    """A stopping server closes with 1012: `listen` reconnects (retrying while the server is
    down), catches up on what was sent meanwhile, and shows every message exactly once."""
    p, group, _ = org_with_group(server, tmp_path, "alice")
    listener = Listener(p["alice"], 3)
    bocage("--profile", str(p["owner"]), "send", group, "avant")
    server.process.terminate()  # drains, then ends by the signal (uvicorn re-raises it)
    assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Traceback" not in server.output()
    port = int(server.url.rsplit(":", 1)[1])
    assert server.data is not None
    again = start_server(server.data, tmp_path / "again.log", port=port, **server.env)
    try:
        bocage("--profile", str(p["owner"]), "send", group, "pendant")
        bocage("--profile", str(p["owner"]), "send", group, "après")
        assert [m["text"] for m in listener.messages()] == ["avant", "pendant", "après"]
    finally:
        again.process.terminate()
        again.process.wait(timeout=10)
