"""`bocage seen CHANNEL MESSAGE_ID` ("vu par N / M" for scripts) and `bocage send --mention`,
over a real `bocage serve`: the read moves the count, a mention reaches the person mentioned."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Server, bocage, bocage_fails


def test_seen_follows_the_reads_and_a_mention_reaches_its_member(server: Server, tmp_path: Path) -> None:
    owner, agent = str(tmp_path / "owner"), str(tmp_path / "agent")
    bocage("--profile", owner, "activate", server.owner_url(), "--name", "Maire")
    invitation = bocage("--profile", owner, "invite", "--name", "Agent")
    agent_id = bocage("--profile", agent, "activate", invitation["activation_url"])["member_id"]
    group = bocage("--profile", owner, "group", "create", "Voirie")["channel_id"]
    bocage("--profile", owner, "channel", "add", group, agent_id)
    sent = bocage("--profile", owner, "send", group, "@Agent la rue est fermée", "--mention", agent_id)
    before = bocage("--profile", owner, "seen", group, sent["message_id"])
    assert (before["count"], before["total"], before["not_seen_by"]) == (0, 1, [agent_id])
    shown = bocage("--profile", agent, "read", group)["messages"]
    assert [m.get("mentions") for m in shown if m["message_id"] == sent["message_id"]] == [[agent_id]]
    after = bocage("--profile", owner, "seen", group, sent["message_id"])
    assert (after["seen_by"], after["count"], after["total"]) == ([agent_id], 1, 1)
    missing = bocage_fails("--profile", owner, "seen", group, "x" * 22)
    assert missing["error"] == "cli_error" and "no message" in missing["message"]
