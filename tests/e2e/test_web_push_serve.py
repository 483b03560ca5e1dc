"""Web Push from a real `bocage serve`: the key it generated on its first start, a device
registering through the Python SDK, and a message from the CLI reaching a push service
stand-in (HTTPS on loopback) sealed for that device and VAPID-signed; a 410 forgets it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bocage.client.api import BocageClient
from bocage.client.messenger import Messenger
from bocage.client.profile import Profile
from chalicelib.adapters.web_push import TIMEOUT as WEB_PUSH_TIMEOUT
from tests.e2e.conftest import Server, bocage
from tests.push_service import PushDevice, PushServiceStandIn, verify_vapid


def owner_and_agent(push_server: Server, tmp_path: Path) -> tuple[Path, Path, str, dict[str, Any]]:
    """The owner's and an agent's CLI profiles, in one group: the profiles, the group, the agent."""
    owner, agent = tmp_path / "owner", tmp_path / "agent"
    bocage("--profile", str(owner), "activate", push_server.owner_url(), "--name", "Maire")
    invitation = bocage("--profile", str(owner), "invite", "--name", "Agent")
    joined = bocage("--profile", str(agent), "activate", invitation["activation_url"], "--name", "Agent")
    group = bocage("--profile", str(owner), "group", "create", "Conseil")["channel_id"]
    bocage("--profile", str(owner), "channel", "add", group, joined["member_id"])
    return owner, agent, group, joined


def test_bocage_serve_pushes_to_an_offline_device_and_forgets_a_gone_one(
    push_server: Server, push_service: PushServiceStandIn, tmp_path: Path
) -> None:
    owner, agent, group, _ = owner_and_agent(push_server, tmp_path)

    profile = Profile(agent)
    client = BocageClient(push_server.url, device=profile.keys())
    key = client.push_key()
    assert key is not None
    device = PushDevice()
    device_id = profile.info()["device_id"]
    assert (
        client.register_push(device_id, device.subscription(push_service.endpoint("agent")))["device_id"]
        == device_id
    )

    bocage("--profile", str(owner), "send", group, "Séance levée à 20 h")  # the agent has no WebSocket
    [received] = push_service.wait_for(1)
    verify_vapid(received.headers["authorization"], f"https://localhost:{push_service.port}", key)
    assert json.loads(device.open(received.body)) == {"channel_id": group}
    assert "levée".encode() not in received.body

    push_service.answers["/push/agent"] = 410  # the browser unsubscribed: the server forgets it
    time.sleep(6)  # past the coalescing slot
    bocage("--profile", str(owner), "send", group, "deux")
    assert len(push_service.wait_for(2)) == 2
    time.sleep(6)
    bocage("--profile", str(owner), "send", group, "trois")
    time.sleep(1)
    assert len(push_service.received) == 2  # nothing was sent to the forgotten subscription


def test_bocage_serve_wakes_a_mentions_only_member_only_when_mentioned(
    push_server: Server, push_service: PushServiceStandIn, tmp_path: Path
) -> None:
    """docs/protocol.md 17: the agent runs `bocage notify GROUP --mentions-only`; the owner's
    message without a mention wakes nothing, one mentioning the agent (sent over the live
    WebSocket, whose `send` carries `notify`) does; `--all` restores every message."""
    owner, agent, group, joined = owner_and_agent(push_server, tmp_path)
    profile = Profile(agent)
    client = BocageClient(push_server.url, device=profile.keys())
    device = PushDevice()
    client.register_push(profile.info()["device_id"], device.subscription(push_service.endpoint("agent")))

    chosen = bocage("--profile", str(agent), "notify", group, "--mentions-only")
    assert (chosen["channel_id"], chosen["member_id"], chosen["mentions_only"]) == (
        group,
        joined["member_id"],
        True,
    )
    bocage("--profile", str(owner), "send", group, "Ordre du jour en ligne")
    time.sleep(2)
    assert push_service.received == []  # stored, read at the next start, but no push
    mention = ("@Agent à vous", "--mention", joined["member_id"], "--live")
    bocage("--profile", str(owner), "send", group, *mention)
    [received] = push_service.wait_for(1)
    assert json.loads(device.open(received.body)) == {"channel_id": group}

    assert bocage("--profile", str(agent), "notify", group, "--all")["mentions_only"] is False
    time.sleep(6)  # past the coalescing slot
    bocage("--profile", str(owner), "send", group, "Séance levée")
    assert len(push_service.wait_for(2)) == 2


def test_a_send_is_acknowledged_without_waiting_for_the_push_service(
    push_server: Server, push_service: PushServiceStandIn, tmp_path: Path
) -> None:
    """A push service that holds its answer (here until the test lets it go) never delays the
    sender's ack: the wake-up goes out after the answer, from the replica's own queue, and still
    reaches the offline device; and the next sends are not held behind it either."""
    owner, agent, group, _ = owner_and_agent(push_server, tmp_path)
    profile = Profile(agent)
    client = BocageClient(push_server.url, device=profile.keys())
    device = PushDevice()
    client.register_push(profile.info()["device_id"], device.subscription(push_service.endpoint("agent")))
    sender = Messenger(Profile(owner), client=BocageClient(push_server.url, device=Profile(owner).keys()))

    push_service.answering.clear()
    started = time.monotonic()
    receipts = [sender.send_text(group, f"Conseil n° {i}", live=False) for i in range(3)]
    took = time.monotonic() - started
    assert took < WEB_PUSH_TIMEOUT / 2, f"three sends took {took:.1f} s while the push service held"
    seqs = [r["seq"] for r in receipts]
    assert seqs == sorted(set(seqs))
    received = push_service.wait_for(1)[0]  # the wake-up is under way, and held
    assert push_service.answered == 0

    push_service.answering.set()
    assert json.loads(device.open(received.body)) == {"channel_id": group}
    deadline = time.monotonic() + 10
    while push_service.answered < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)
    assert (len(push_service.received), push_service.answered) == (1, 1)  # one wake-up for the three
