"""A public tribe's post written in the browser reaches its followers (web/js/followers.js): the
mayor writes in Chromium; a citizen who joined from the poster's link with the CLI reads it,
decrypted and verified. The link is published by the tribe's author, a CLI device."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.browser.conftest import watch_console
from tests.browser.test_web_app import activate, add_to_channel, create_channel, invite, send, wait_for
from tests.e2e.conftest import Server

TRIBE = "Vie du village"
POST = "Marché de Noël samedi sur la place"


def test_a_post_from_the_browser_reaches_a_follower(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    problems: list[str] = []
    owner = new_context("owner").pages[0]
    watch_console(owner, problems)
    activate(owner, web_server.owner_url(), "Maire Dupuis")
    author = str(tmp_path / "author")
    cli("--profile", author, "activate", invite(owner, "Accueil"), "--name", "Accueil")
    create_channel(owner, TRIBE, "tribe")
    add_to_channel(owner, "Accueil", "author")
    tribe = next(
        c["channel_id"] for c in cli("--profile", author, "channels")["channels"] if c["name"] == TRIBE
    )
    join_url = cli("--profile", author, "tribe", "publish", tribe)["join_url"]
    follower = str(tmp_path / "lea")
    joined = cli("--profile", follower, "join", join_url, "--name", "Léa")
    assert joined["follower_id"].startswith("f_")

    send(owner, POST)  # the browser verifies Léa's certificate and seals its key to her device

    def read() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = cli("--profile", follower, "read", tribe)["messages"]
        return messages

    wait_for(
        lambda: any(m.get("text") == POST and m["verified"] for m in read()), "the follower to read the post"
    )
    assert not problems, problems
