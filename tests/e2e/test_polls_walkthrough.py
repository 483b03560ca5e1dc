"""A poll over `bocage serve`, by the CLI: the server stores no question, option or vote in clear."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

from tests.e2e.conftest import Server, bocage, bocage_fails


def test_poll_react_delete_over_the_network(server: Server, tmp_path: Path) -> None:
    owner, citizen = tmp_path / "owner", tmp_path / "citizen"
    bocage("--profile", str(owner), "activate", server.owner_url(), "--name", "Maire")
    invite = bocage("--profile", str(owner), "invite", "--name", "Camille")
    joined = bocage("--profile", str(citizen), "activate", invite["activation_url"], "--name", "Camille")
    tribe = bocage("--profile", str(owner), "tribe", "create", "Consultation")["channel_id"]
    bocage("--profile", str(owner), "channel", "add", tribe, joined["member_id"])

    question = "Faut-il piétonniser la place du marché ?"
    options = ["Oui tout le temps", "Le samedi seulement"]
    poll = bocage("--profile", str(owner), "poll", "create", tribe, question, *options, "--closes", "7d")
    bocage("--profile", str(citizen), "poll", "vote", tribe, poll["poll_id"], "0")
    bocage("--profile", str(citizen), "poll", "vote", tribe, poll["poll_id"], "1")  # changed their mind
    results = bocage("--profile", str(citizen), "poll", "results", tribe, poll["poll_id"])
    assert results["question"] == question and results["counts"] == [0, 1] and results["closed"] is False
    assert bocage_fails("--profile", str(citizen), "poll", "close", tribe, poll["poll_id"])["status"] == 403
    bocage("--profile", str(owner), "poll", "close", tribe, poll["poll_id"])
    assert bocage("--profile", str(owner), "poll", "results", tribe, poll["poll_id"])["closed"] is True

    note = bocage("--profile", str(owner), "send", tribe, "Merci pour vos réponses")["message_id"]
    bocage("--profile", str(citizen), "react", tribe, note, "🌳")
    bocage("--profile", str(owner), "delete", tribe, note)
    shown = {m["message_id"]: m for m in bocage("--profile", str(citizen), "read", tribe)["messages"]}
    assert shown[note]["deleted"] is True

    server.process.terminate()
    server.process.wait(timeout=10)
    db = sqlite3.connect(tmp_path / "data" / "bocage.sqlite3")
    dump = "\n".join(str(row) for row in db.execute("select pk, sk, data from items"))
    log = server.output()
    for text in (question, *options, "Merci pour vos réponses", "🌳", '"choices"', "piétonniser"):
        encoded = text.encode()
        for form in (text, base64.b64encode(encoded).decode(), base64.urlsafe_b64encode(encoded).decode()):
            assert form not in dump and form not in log, text
