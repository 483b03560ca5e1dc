"""`bocage audit`: the administrators' audit log from the command line, against a running server."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Server, bocage, bocage_fails


def test_owners_read_the_audit_log_and_set_its_period(server: Server, tmp_path: Path) -> None:
    owner, agent = tmp_path / "owner", tmp_path / "agent"
    bocage("--profile", str(owner), "activate", server.owner_url(), "--name", "Maire")
    invitation = bocage("--profile", str(owner), "invite", "--name", "Agent")
    bocage("--profile", str(agent), "activate", invitation["activation_url"], "--name", "Agent")

    entries = bocage("--profile", str(owner), "audit")["entries"]
    assert sorted(e["action"] for e in entries) == [
        "invitation.activated",
        "invitation.activated",
        "invitation.issued",
        "invitation.issued",
    ]
    issued = [e for e in entries if e["action"] == "invitation.issued" and e["actor"]["display_name"]]
    assert issued[0]["actor"]["display_name"] == "Maire" and issued[0]["details"]["name"] == "Agent"
    assert invitation["activation_code"] not in str(entries)
    assert len(bocage("--profile", str(owner), "audit", "--limit", "1")["entries"]) == 1

    assert bocage_fails("--profile", str(agent), "audit")["status"] == 403
    assert bocage("--profile", str(owner), "audit", "--keep", "2y")["retention_days"] == 730
    assert bocage_fails("--profile", str(owner), "audit", "--keep", "7d")["status"] == 400
    newest = bocage("--profile", str(owner), "audit", "--limit", "1")["entries"][0]
    assert newest["action"] == "org.audit_retention_changed"
    assert newest["details"] == {"old": 365, "new": 730}
