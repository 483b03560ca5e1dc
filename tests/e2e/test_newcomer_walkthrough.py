"""What a newcomer following the README does, over real HTTP on loopback."""

from __future__ import annotations

import base64
import sqlite3
import stat
from pathlib import Path

from tests.e2e.conftest import Server, bocage, bocage_fails, start_server


def test_readme_walkthrough(server: Server, tmp_path: Path) -> None:
    owner, agent = tmp_path / "owner", tmp_path / "agent"
    activated = bocage("--profile", str(owner), "activate", server.owner_url(), "--name", "Maire")
    assert activated["role"] == "owner"
    for key_file in ("sign.key", "box.key"):
        assert stat.S_IMODE((owner / key_file).stat().st_mode) == 0o600

    qr = tmp_path / "agent.png"
    invitation = bocage("--profile", str(owner), "invite", "--name", "Agent Dupont", "--qr", str(qr))
    assert qr.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = tmp_path / "agent.svg"
    bocage("--profile", str(owner), "invite", "--name", "Élu", "--qr", str(svg))
    assert "<svg" in svg.read_text()

    joined = bocage(
        "--profile", str(agent), "activate", invitation["activation_url"], "--name", "Agent Dupont"
    )
    assert joined["member_id"] == invitation["member_id"]
    assert joined["org_id"] == activated["org_id"]

    members = bocage("--profile", str(agent), "members")["members"]
    active = [m for m in members if m["status"] == "active"]
    assert sorted(m["display_name"] for m in active) == ["Agent Dupont", "Maire"]
    assert all(len(m["devices"]) == 1 for m in active)

    me = bocage("--profile", str(agent), "whoami")
    assert me["member"]["role"] == "member"
    refused = bocage_fails("--profile", str(agent), "invite", "--name", "X")
    assert refused["status"] == 403

    # revoking the agent's only device locks that profile out at once
    bocage("--profile", str(owner), "revoke", joined["device_id"])
    assert bocage_fails("--profile", str(agent), "whoami")["status"] == 401

    server.process.terminate()
    server.process.wait(timeout=10)
    log = server.output()
    secrets = [invitation["activation_code"], invitation["activation_code"].replace("-", "")]
    for profile in (owner, agent):
        for key_file in ("sign.key", "box.key"):
            raw = (profile / key_file).read_bytes()
            secrets += [
                base64.urlsafe_b64encode(raw).decode().rstrip("="),
                base64.b64encode(raw).decode(),
                raw.hex(),
            ]
    for secret in secrets:
        assert secret not in log
    assert "Bocage " not in log.split("serving the REST API", 1)[1]  # no Authorization header echoed


def test_org_create_on_the_data_directory_then_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = bocage("org", "create", "Syndicat des eaux", "--plan", "pro", "--data", str(data))
    assert created["org"]["plan"] == "pro"
    db = sqlite3.connect(data / "bocage.sqlite3")
    dump = "\n".join(str(row) for row in db.execute("select pk, sk, data from items"))
    assert created["activation_code"] not in dump
    srv = start_server(data, tmp_path / "serve.log")
    try:
        assert "New organisation" not in srv.banner  # the store was not empty
        joined = bocage(
            "--profile",
            str(tmp_path / "p"),
            "activate",
            created["activation_code"],
            "--server",
            srv.url,
            "--name",
            "Présidente",
            "--org",  # a bare code: the URL fragment's org and member, given separately
            created["org_id"],
            "--member",
            created["member_id"],
        )
        assert joined["org_id"] == created["org_id"] and joined["role"] == "owner"
    finally:
        srv.process.terminate()
        srv.process.wait(timeout=10)


def test_org_create_through_a_server_with_an_operator_key(tmp_path: Path) -> None:
    key_file = tmp_path / "operator.key"
    generated = bocage("operator", "keygen", str(key_file))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    srv = start_server(
        tmp_path / "data", tmp_path / "serve.log", BOCAGE_OPERATOR_KEYS=generated["public_key"]
    )
    try:
        created = bocage(
            "org", "create", "Association Bocage", "--server", srv.url, "--operator-key", str(key_file)
        )
        joined = bocage(
            "--profile", str(tmp_path / "p"), "activate", created["activation_url"], "--name", "A"
        )
        assert joined["org_id"] == created["org_id"]
        other_key = tmp_path / "other.key"
        bocage("operator", "keygen", str(other_key))
        refused = bocage_fails("org", "create", "Nope", "--server", srv.url, "--operator-key", str(other_key))
        assert refused["status"] == 401
    finally:
        srv.process.terminate()
        srv.process.wait(timeout=10)


def test_serve_on_a_dynamodb_api_server(tmp_path: Path, moto_endpoint: str) -> None:
    """`bocage serve` pointed at a DynamoDB-API server creates its table and works the same."""
    srv = start_server(
        tmp_path / "unused",
        tmp_path / "serve.log",
        BOCAGE_STORE="dynamodb",
        BOCAGE_DYNAMODB_ENDPOINT=moto_endpoint,
        BOCAGE_CREATE_TABLE="1",
        BOCAGE_TABLE="bocage-e2e",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    try:
        assert "DynamoDbStore" in srv.banner
        owner = tmp_path / "owner"
        bocage("--profile", str(owner), "activate", srv.owner_url(), "--name", "Maire")
        invitation = bocage("--profile", str(owner), "invite", "--name", "Agent")
        bocage(
            "--profile", str(tmp_path / "agent"), "activate", invitation["activation_url"], "--name", "Agent"
        )
        names = sorted(m["display_name"] for m in bocage("--profile", str(owner), "members")["members"])
        assert names == ["Agent", "Maire"]
    finally:
        srv.process.terminate()
        srv.process.wait(timeout=10)


def test_trust_walkthrough_verify_and_a_clean_send(server: Server, tmp_path: Path) -> None:
    """README steps 1 to 5 with protocol v2: the invitation's fragment, the identity key file,
    safety numbers both sides agree on, a confirmation, and a send with no warning."""
    owner, agent = tmp_path / "owner", tmp_path / "agent"
    activated = bocage("--profile", str(owner), "activate", server.owner_url(), "--name", "Maire")
    assert activated["warnings"] == [] and len(activated["root"]) == 43
    assert stat.S_IMODE((owner / "identity.key").stat().st_mode) == 0o600
    invitation = bocage("--profile", str(owner), "invite", "--name", "Agent Dupont")
    fragment = invitation["activation_url"].split("#", 1)[1]
    assert "&ticket=" in fragment and f"&root={activated['root']}" in fragment
    joined = bocage(
        "--profile", str(agent), "activate", invitation["activation_url"], "--name", "Agent Dupont"
    )
    assert joined["root"] == activated["root"] and joined["warnings"] == []

    mine = bocage("--profile", str(owner), "verify", joined["member_id"])
    theirs = bocage("--profile", str(agent), "verify", activated["member_id"])
    assert mine["safety_number"] == theirs["safety_number"] and not mine["verified"]
    assert mine["qr_payload"].startswith(f"bocage-verify:v2:{activated['org_id']}:{activated['member_id']}:")
    wrong = bocage_fails("--profile", str(owner), "verify", joined["member_id"], "--confirm", "1" * 60)
    assert "differ" in wrong["message"]
    confirmed = bocage(
        "--profile", str(owner), "verify", joined["member_id"], "--confirm", theirs["safety_number"]
    )
    assert confirmed["verified"] and confirmed["certified"] and not confirmed["endorsed"]

    group = bocage("--profile", str(owner), "group", "create", "Bureau")["channel_id"]
    bocage("--profile", str(owner), "channel", "add", group, joined["member_id"])
    sent = bocage("--profile", str(owner), "send", group, "Bonjour")
    assert sent["warnings"] == []
    read = bocage("--profile", str(agent), "read", group)
    assert [(m["text"], m["sender_name"], m["sender_verified"]) for m in read["messages"]] == [
        ("Bonjour", "Maire", True)
    ]
