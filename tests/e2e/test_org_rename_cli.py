"""`bocage org rename NAME`: an admin renames the organisation `bocage serve` made on first start."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Server, bocage, bocage_fails


def test_the_owner_renames_the_organisation_a_member_cannot(server: Server, tmp_path: Path) -> None:
    owner, agent = tmp_path / "owner", tmp_path / "agent"
    bocage("--profile", str(owner), "activate", server.owner_url(), "--name", "Maire")
    invitation = bocage("--profile", str(owner), "invite", "--name", "Agent")
    bocage("--profile", str(agent), "activate", invitation["activation_url"], "--name", "Agent")
    renamed = bocage("--profile", str(owner), "org", "rename", "Mairie de Plouha")
    assert renamed["org_name"] == "Mairie de Plouha"
    assert bocage("--profile", str(agent), "whoami")["org"]["name"] == "Mairie de Plouha"
    assert bocage_fails("--profile", str(agent), "org", "rename", "Chez moi")["status"] == 403
