"""A public tribe over `bocage serve`, by the CLI: the town hall publishes it and prints its
poster, an inhabitant joins from the link with a name of their choice, reads, votes and
leaves; the server stores nothing of what was said in clear."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import segno

from tests.e2e.conftest import Server, bocage, bocage_fails


def test_a_town_hall_publishes_a_tribe_and_an_inhabitant_follows_it(server: Server, tmp_path: Path) -> None:
    owner, lea = str(tmp_path / "owner"), str(tmp_path / "lea")
    bocage("--profile", owner, "activate", server.owner_url(), "--name", "Maire")
    created = bocage("--profile", owner, "tribe", "create", "La vie du village", "--public", "--days", "30")
    tribe, url = created["channel_id"], created["join_url"]
    assert "#/join?" in url and "&ticket=" in url and "&root=" in url

    svg, pdf = tmp_path / "affiche.svg", tmp_path / "affiche.pdf"
    assert bocage("--profile", owner, "tribe", "poster", tribe, "--out", str(svg))["join_url"] == url
    bocage("--profile", owner, "tribe", "poster", tribe, "--out", str(pdf))
    text = svg.read_text()
    assert 'width="210mm" height="297mm"' in text and "La vie du village" in text
    assert text.count("<rect") > len(segno.make_qr(url, error="m").matrix)  # the QR code is drawn
    assert pdf.read_bytes().startswith(b"%PDF-1.4") and b"La vie du village" in pdf.read_bytes()

    joined = bocage("--profile", lea, "join", url, "--name", "Léa du moulin")
    assert joined["follower_id"].startswith("f_") and joined["device_id"].startswith("d_")
    assert joined["channel_id"] == tribe and joined["role"] == "follower" and joined["warnings"] == []

    bocage("--profile", owner, "send", tribe, "Marché de Noël samedi sur la place")
    read = bocage("--profile", lea, "read", tribe)["messages"]
    assert [(m["text"], m["sender_name"], m["verified"]) for m in read] == [
        ("Marché de Noël samedi sur la place", "Maire", True)
    ]
    poll = bocage("--profile", owner, "poll", "create", tribe, "Un sapin sur la place ?", "Oui", "Non")
    bocage("--profile", lea, "read", tribe)
    bocage("--profile", lea, "poll", "vote", tribe, poll["poll_id"], "0")
    results = bocage("--profile", owner, "poll", "results", tribe, poll["poll_id"])
    assert results["counts"] == [1, 0] and results["follower_voters"] == 1
    # She changes her mind, the mayor votes: hers counts once, as last cast, apart from his.
    bocage("--profile", lea, "poll", "vote", tribe, poll["poll_id"], "1")
    bocage("--profile", owner, "poll", "vote", tribe, poll["poll_id"], "1")
    results = bocage("--profile", owner, "poll", "results", tribe, poll["poll_id"])
    assert (results["counts"], results["follower_counts"], results["voters"]) == ([0, 2], [0, 1], 2)

    assert bocage_fails("--profile", lea, "send", tribe, "moi aussi")["status"] == 403
    assert [m["display_name"] for m in bocage("--profile", lea, "members")["members"]] == ["Maire"]
    assert bocage_fails("--profile", lea, "invite", "--name", "X")["status"] == 403

    ask_the_town_hall_and_follow_a_second_tribe(owner, lea, tribe, joined["device_id"])

    link = bocage("--profile", owner, "tribe", "link", tribe)
    assert (link["followers"], link["joined"], link["revoked"]) == (1, 1, False)
    assert bocage("--profile", owner, "plan", "show")["followers"] == 1
    bocage("--profile", owner, "tribe", "revoke-link", tribe)
    late = bocage_fails("--profile", str(tmp_path / "late"), "join", url, "--name", "Trop tard")
    assert late["status"] == 410

    left = bocage("--profile", lea, "follower", "leave")
    assert left["left"] is True and not any(Path(lea).iterdir())  # keys deleted with the profile
    assert bocage("--profile", owner, "tribe", "link", tribe)["followers"] == 0

    server.process.terminate()
    server.process.wait(timeout=10)
    db = sqlite3.connect(tmp_path / "data" / "bocage.sqlite3")
    dump = "\n".join(str(row) for row in db.execute("select pk, sk, data from items"))
    for secret in (
        "Marché de Noël",
        "Un sapin",
        "illuminé",
        "1er décembre",
        url.split("&ticket=")[1].split("&")[0],
    ):
        assert secret not in dump and secret not in server.output()


def ask_the_town_hall_and_follow_a_second_tribe(owner: str, lea: str, tribe: str, device_id: str) -> None:
    """A question to the town hall, answered privately (docs/protocol.md, 20); then the same
    device follows a second public tribe from its poster (16.2)."""
    asked = bocage("--profile", lea, "question", tribe, "Le sapin sera-t-il illuminé ?")
    assert asked["question_id"].startswith("q_") and asked["warnings"] == []
    inbox = bocage("--profile", owner, "questions", tribe)["questions"]
    assert [(q["text"], q["asker_name"]) for q in inbox] == [
        ("Le sapin sera-t-il illuminé ?", "Léa du moulin")
    ]
    bocage("--profile", owner, "answer", tribe, asked["question_id"], "Oui, dès le 1er décembre.")
    mine = bocage("--profile", lea, "questions", tribe)["questions"]
    assert (
        mine[0]["answer"]["text"] == "Oui, dès le 1er décembre." and mine[0]["answer"]["by_name"] == "Maire"
    )
    assert (
        bocage_fails("--profile", owner, "question", tribe, "?")["error"] == "cli_error"
    )  # members do not ask

    market = bocage("--profile", owner, "tribe", "create", "Le marché", "--public")
    second = bocage("--profile", lea, "join", market["join_url"], "--name", "Léa du moulin")
    assert (second["channel_id"], second["device_id"]) == (market["channel_id"], device_id)
    bocage("--profile", owner, "send", market["channel_id"], "Les forains arrivent")
    assert [m["text"] for m in bocage("--profile", lea, "read", market["channel_id"])["messages"]] == [
        "Les forains arrivent"
    ]
    member_joins = bocage_fails("--profile", owner, "join", market["join_url"], "--name", "X")
    assert "another --profile" in member_joins["message"]  # a member's profile does not follow


def test_the_cli_lets_new_followers_read_the_last_days(server: Server, tmp_path: Path) -> None:
    """Section 23 by the CLI: the mayor chooses 7 days; an inhabitant who joins after a post
    reads it; a choice out of range is refused before anything is signed."""
    owner, lea = str(tmp_path / "owner"), str(tmp_path / "lea")
    bocage("--profile", owner, "activate", server.owner_url(), "--name", "Maire")
    created = bocage("--profile", owner, "tribe", "create", "La vie du village", "--public")
    tribe = created["channel_id"]
    assert bocage("--profile", owner, "tribe", "history", tribe) == {
        "channel_id": tribe,
        "days": 0,
        "warnings": [],
    }
    chosen = bocage("--profile", owner, "tribe", "history", tribe, "--days", "7")
    assert chosen == {"channel_id": tribe, "days": 7, "warnings": []}
    assert "0 to 30" in bocage_fails("--profile", owner, "tribe", "history", tribe, "--days", "31")["message"]
    bocage("--profile", owner, "send", tribe, "Publié avant l'abonnement")
    bocage("--profile", lea, "join", created["join_url"], "--name", "Léa")
    bocage("--profile", owner, "send", tribe, "Publié après")
    read = bocage("--profile", lea, "read", tribe)["messages"]
    assert [m["text"] for m in read] == ["Publié avant l'abonnement", "Publié après"]
