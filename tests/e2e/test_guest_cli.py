"""`bocage invite --name N --role guest` over a real `bocage serve` (docs/protocol.md, section 21):
the guest activates from the link, talks in the group they were added to and nowhere else."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Server, bocage, bocage_fails


def test_a_guest_invited_from_the_cli_sees_only_their_group(server: Server, tmp_path: Path) -> None:
    owner, agent, guest = (str(tmp_path / name) for name in ("owner", "agent", "guest"))
    bocage("--profile", owner, "activate", server.owner_url(), "--name", "Maire")
    invitation = bocage("--profile", owner, "invite", "--name", "Agent")
    bocage("--profile", agent, "activate", invitation["activation_url"], "--name", "Agent")
    invitation = bocage("--profile", owner, "invite", "--name", "Paul Charpentier", "--role", "guest")
    assert invitation["role"] == "guest"
    paul = bocage("--profile", guest, "activate", invitation["activation_url"])
    assert paul["role"] == "guest"
    site = bocage("--profile", owner, "group", "create", "Chantier")["channel_id"]
    bocage("--profile", owner, "channel", "add", site, paul["member_id"])
    bocage("--profile", owner, "send", site, "Livraison lundi")
    assert [m["text"] for m in bocage("--profile", guest, "read", site)["messages"]] == ["Livraison lundi"]

    listed = {m["display_name"]: m for m in bocage("--profile", owner, "members")["members"]}
    assert listed["Paul Charpentier"]["certified_role"] == "guest"
    seen_by_guest = {m["display_name"] for m in bocage("--profile", guest, "members")["members"]}
    assert seen_by_guest == {"Maire", "Paul Charpentier"}  # the agent is in no channel of his
    refused = bocage_fails("--profile", guest, "group", "create", "À moi")
    assert refused["status"] == 403 and "guest" in refused["message"]
    refused = bocage_fails("--profile", owner, "role", paul["member_id"], "admin")
    assert "stays a guest" in refused["message"]  # the CLI does not even sign it (21.3)
