"""Calls through the organisation's TURN server, over a real `bocage serve` and Debian's coturn
on loopback: `bocage call credentials` hands a member of a pro organisation a credential coturn
accepts (a relay is allocated and carries packets), a tampered or expired one is refused by
coturn itself, and the free plan gets a clear error. The credential never reaches the log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chalicelib.domain.calls import turn_credential
from tests.coturn import coturn, relay_through
from tests.e2e.conftest import Server, bocage, bocage_fails, start_server


def owner_of(created: dict[str, Any], server: Server, profile: Path) -> str:
    """Activate the owner of an organisation made on the data directory (a bare code)."""
    ids = ("--org", created["org_id"], "--member", created["member_id"])
    bocage(
        "--profile",
        str(profile),
        "activate",
        created["activation_code"],
        "--server",
        server.url,
        *ids,
        "--name",
        "Maire",
    )
    return str(profile)


def test_coturn_relays_for_the_credential_bocage_hands_out(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = bocage("org", "create", "Mairie de Plouha", "--plan", "pro", "--data", str(data))
    with coturn(tmp_path) as turn:
        server = start_server(
            data,
            tmp_path / "serve.log",
            BOCAGE_TURN_URLS=turn.turn_url,
            BOCAGE_STUN_URLS=turn.stun_url,
            BOCAGE_TURN_SECRET=turn.secret,
            BOCAGE_TURN_TTL="900",
        )
        try:
            owner = owner_of(created, server, tmp_path / "owner")
            group = bocage("--profile", owner, "group", "create", "Visite de chantier")["channel_id"]
            answer = bocage("--profile", owner, "call", "credentials", group)
            stun, relay = answer["ice_servers"]
            assert stun == {"urls": [turn.stun_url]} and relay["urls"] == [turn.turn_url]
            assert 0 < answer["expires_at"] - time.time() <= 900

            relayed, output = relay_through(turn, relay["username"], relay["credential"])
            assert relayed, output
            tampered = relay["credential"][:-4] + (
                "AAA=" if not relay["credential"].endswith("AAA=") else "BBB="
            )
            assert relay_through(turn, relay["username"], tampered)[0] is False
            expired = turn_credential(turn.secret, created["member_id"], int(time.time()) - 120, 60)
            assert relay_through(turn, expired.username, expired.credential)[0] is False
            assert relay["credential"] not in server.output()
        finally:
            server.process.terminate()
            server.process.wait(timeout=10)


def test_the_shipped_coturn_configuration_authenticates_bocage_credentials_and_denies_local_peers(
    tmp_path: Path,
) -> None:
    """infra/sovereign's turnserver.conf (Compose and Kubernetes run it): a credential made with
    the shared secret allocates a relay, and the relay refuses to reach the host's own addresses
    (as it refuses private networks and the cloud metadata service)."""
    config = Path(__file__).parents[2] / "infra" / "sovereign" / "k8s" / "turnserver.conf"
    with coturn(tmp_path, config) as turn:
        credential = turn_credential(turn.secret, "m_visitor", int(time.time()), 600)
        relayed, output = relay_through(turn, credential.username, credential.credential)
        assert not relayed and "403 (Forbidden IP)" in output, output  # allocated, then no loopback peer
        wrong = turn_credential("not-the-secret", "m_visitor", int(time.time()), 600)
        refused = relay_through(turn, wrong.username, wrong.credential)[1]
        assert "Cannot complete Allocation" in refused and "Forbidden IP" not in refused  # no relay at all


def test_the_free_plan_gets_a_clear_refusal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = bocage("org", "create", "Association", "--data", str(data))
    server = start_server(
        data, tmp_path / "serve.log", BOCAGE_TURN_URLS="turn:127.0.0.1:3478", BOCAGE_TURN_SECRET="x"
    )
    try:
        owner = owner_of(created, server, tmp_path / "owner")
        group = bocage("--profile", owner, "group", "create", "Bureau")["channel_id"]
        refused = bocage_fails("--profile", owner, "call", "credentials", group)
        assert (refused["status"], refused["error"]) == (403, "calls_not_in_plan")
        assert "pro plan" in refused["message"]
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
