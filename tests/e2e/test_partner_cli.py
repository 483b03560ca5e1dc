"""`bocage partner invite|accept|end` and `bocage partners` over a real `bocage serve`
(docs/protocol.md, section 22): two organisations of one deployment become partners, each pins
the other's root through its own signed statement, and either side ends it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.conftest import bocage, bocage_fails, start_server
from tests.e2e.test_call_relay import owner_of


@contextmanager
def town_and_firm(tmp_path: Path) -> Iterator[tuple[dict[str, Any], dict[str, Any], str, str]]:
    """Two organisations on one `bocage serve`, each with its owner's CLI profile: the town and
    its mayor, the architects' firm and its architect."""
    data = tmp_path / "data"
    town = bocage("org", "create", "Mairie de Plouha", "--data", str(data))
    firm = bocage("org", "create", "Cabinet Ardoise", "--data", str(data))
    server = start_server(data, tmp_path / "serve.log")
    try:
        yield (
            town,
            firm,
            owner_of(town, server, tmp_path / "mayor"),
            owner_of(firm, server, tmp_path / "architect"),
        )
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


def become_partners(mayor: str, architect: str) -> None:
    """The town invites, the firm accepts, the town's listing countersigns: active on both sides."""
    invitation = bocage("--profile", mayor, "partner", "invite")
    bocage("--profile", architect, "partner", "accept", invitation["code"])
    bocage("--profile", mayor, "partners")  # countersigns


def partnered_with_a_drafter(tmp_path: Path, mayor: str, architect: str) -> tuple[str, dict[str, Any]]:
    """The firm's drafter activated (their profile, their invitation), and both sides partnered."""
    drafter = str(tmp_path / "drafter")
    invited = bocage("--profile", architect, "invite", "--name", "Dessinateur")
    bocage("--profile", drafter, "activate", invited["activation_url"])
    become_partners(mayor, architect)
    return drafter, invited


def test_two_organisations_become_partners_and_one_ends_it(tmp_path: Path) -> None:
    with town_and_firm(tmp_path) as (town, firm, mayor, architect):
        invitation = bocage("--profile", mayor, "partner", "invite", "--qr", str(tmp_path / "partner.svg"))
        assert invitation["code"].startswith("bocage-partner:v2:") and "#/partner?" in invitation["url"]
        assert (tmp_path / "partner.svg").read_text().startswith("<?xml")
        accepted = bocage("--profile", architect, "partner", "accept", invitation["url"])
        assert accepted["status"] == "pending" and accepted["partner_org_id"] == town["org_id"]
        second = bocage("--profile", mayor, "partner", "invite")
        refused = bocage_fails("--profile", architect, "partner", "accept", second["code"])
        assert refused["status"] == 409  # already partners (about to be)

        [seen_by_town] = bocage("--profile", mayor, "partners")["partners"]  # countersigns
        assert seen_by_town["status"] == "active" and seen_by_town["partner_name"] == "Cabinet Ardoise"
        assert seen_by_town["partner_org_id"] == firm["org_id"] and seen_by_town["verified"]
        [seen_by_firm] = bocage("--profile", architect, "partners")["partners"]
        assert seen_by_firm["status"] == "active" and seen_by_firm["partner_name"] == "Mairie de Plouha"
        assert seen_by_firm["partner_root"] == seen_by_town["theirs"]["partner_root"]

        ended = bocage("--profile", architect, "partner", "end", town["org_id"])
        assert ended["status"] == "ended"
        [after] = bocage("--profile", mayor, "partners")["partners"]
        assert after["status"] == "ended" and after["end"]["org_id"] == firm["org_id"]
        assert after["end"]["purpose"] == "bocage/partnership-end/v3"  # it names the invitation (22.7)
        assert after["end"]["ticket_key"] == after["ticket"]["ticket_key"]
        nope = bocage_fails("--profile", mayor, "partner", "end", "o_nopenopenopenope")
        assert "no partnership with o_nopenopenopenope" in nope["message"]
        assert bocage_fails("--profile", mayor, "partner", "accept", "not a code")["error"] == "cli_error"


def test_a_partners_member_talks_in_a_group_until_the_partnership_ends(tmp_path: Path) -> None:
    """A adds B's member to a group with `bocage channel add`, B's member reads and answers, both
    listings show the other side's people with their organisation; after the end, B's member
    reads nothing of what follows (docs/protocol.md, 22.6)."""
    with town_and_firm(tmp_path) as (_town, firm, mayor, architect):
        drafter, invited = partnered_with_a_drafter(tmp_path, mayor, architect)

        site = bocage("--profile", mayor, "group", "create", "École")["channel_id"]
        bocage("--profile", mayor, "channel", "add", site, invited["member_id"])
        bocage("--profile", mayor, "send", site, "Réunion lundi")
        read = bocage("--profile", drafter, "read", site)
        assert [(m["text"], m["sender_name"]) for m in read["messages"]] == [
            ("Réunion lundi", "Maire (Mairie de Plouha)")
        ]
        assert read.get("warnings", []) == []
        bocage("--profile", drafter, "send", site, "J'y serai")
        answer = bocage("--profile", mayor, "read", site)["messages"][-1]
        assert (answer["text"], answer["sender_name"]) == ("J'y serai", "Dessinateur (Cabinet Ardoise)")
        listed = {m["member_id"]: m for m in bocage("--profile", mayor, "members")["members"]}
        assert listed[invited["member_id"]]["display_name"] == "Dessinateur (Cabinet Ardoise)"
        assert listed[invited["member_id"]]["org_id"] == firm["org_id"]
        log = bocage("--profile", mayor, "channel", "log", site)
        assert log["names"][invited["member_id"]]["display_name"] == "Dessinateur (Cabinet Ardoise)"

        bocage("--profile", mayor, "partner", "end", firm["org_id"])
        bocage("--profile", mayor, "send", site, "Après la fin")
        assert bocage_fails("--profile", drafter, "read", site)["status"] == 404
        channels = bocage("--profile", drafter, "channels")["channels"]
        assert site not in [c["channel_id"] for c in channels]
        assert [m["text"] for m in bocage("--profile", mayor, "read", site)["messages"]] == [
            "Réunion lundi",
            "J'y serai",
            "Après la fin",
        ]


def test_a_partners_member_hands_their_card_and_is_added_with_it(tmp_path: Path) -> None:
    """`bocage partner card` gives B's member's link; A's mayor adds them to a group with it
    (`bocage channel add GROUP CARD_URL`, checked first), and a card whose fingerprint is not the
    member's key is refused with nothing added (docs/protocol.md, 22.6)."""
    with town_and_firm(tmp_path) as (_town, firm, mayor, architect):
        drafter, invited = partnered_with_a_drafter(tmp_path, mayor, architect)

        card = bocage("--profile", drafter, "partner", "card", "--qr", str(tmp_path / "card.svg"))
        assert set(card) >= {"url", "member_id", "org_id", "fingerprint"}
        assert (card["member_id"], card["org_id"]) == (invited["member_id"], firm["org_id"])
        assert "/app/#/card?" in card["url"] and f"fp={card['fingerprint']}" in card["url"]
        assert (tmp_path / "card.svg").read_text().startswith("<?xml")
        site = bocage("--profile", mayor, "group", "create", "École")["channel_id"]

        architect_fp = bocage("--profile", architect, "partner", "card")["fingerprint"]
        forged = card["url"].replace(card["fingerprint"], architect_fp)
        refused = bocage_fails("--profile", mayor, "channel", "add", site, forged)
        assert "does not match what the server lists" in refused["message"]
        members = bocage("--profile", mayor, "channel", "log", site)["names"]
        assert invited["member_id"] not in members

        bocage("--profile", mayor, "channel", "add", site, card["url"])
        bocage("--profile", mayor, "send", site, "Bienvenue")
        assert [m["text"] for m in bocage("--profile", drafter, "read", site)["messages"]] == ["Bienvenue"]
        bocage("--profile", drafter, "send", site, "Merci")
        answer = bocage("--profile", mayor, "read", site)["messages"][-1]
        assert (answer["text"], answer["sender_name"]) == ("Merci", "Dessinateur (Cabinet Ardoise)")
