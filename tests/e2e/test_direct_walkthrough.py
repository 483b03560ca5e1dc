"""A direct conversation and an edit over `bocage serve`, by the CLI (`bocage dm`, `bocage edit`)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Server, bocage, bocage_fails


def test_dm_then_edit_over_the_network(server: Server, tmp_path: Path) -> None:
    owner, agent = tmp_path / "owner", tmp_path / "agent"
    mayor = bocage("--profile", str(owner), "activate", server.owner_url(), "--name", "Maire")
    invite = bocage("--profile", str(owner), "invite", "--name", "Camille")
    joined = bocage("--profile", str(agent), "activate", invite["activation_url"], "--name", "Camille")

    opened = bocage("--profile", str(agent), "dm", mayor["member_id"])
    cid = opened["channel_id"]
    assert opened["kind"] == "direct" and opened["created"] is True
    assert bocage("--profile", str(owner), "dm", joined["member_id"])["channel_id"] == cid  # found again

    sent = bocage("--profile", str(agent), "send", cid, "Bonjour Madame la Maire")["message_id"]
    edited = bocage("--profile", str(agent), "edit", cid, sent, "Bonjour Madame le Maire")
    assert edited["channel_id"] == cid and edited["message_id"] != sent
    assert bocage_fails("--profile", str(owner), "edit", cid, sent, "non")["status"] == 403
    shown = {m["message_id"]: m for m in bocage("--profile", str(owner), "read", cid)["messages"]}
    assert (shown[sent]["text"], shown[sent]["edited"]) == ("Bonjour Madame le Maire", True)
    assert bocage_fails("--profile", str(owner), "channel", "add", cid, joined["member_id"])["status"] == 403
