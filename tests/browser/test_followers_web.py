"""Public tribes in the browser (docs/protocol.md, 16): the mayor makes a tribe public from its
members panel (a join link, its QR code, the follower count), a citizen joins from that link
with the CLI and reads what the mayor writes in the browser (web/js/followers.js verifies the
follower and seals the tribe's key to them), and a revoked link takes nobody more."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import watch_console
from tests.browser.test_web_app import activate, create_channel, send, wait_for
from tests.e2e.conftest import Server, bocage_fails

TRIBE = "Vie du village"
POST = "Marché de Noël samedi sur la place"


def members_panel(owner: Page) -> None:
    owner.get_by_role("button", name="Membres").click()
    expect(owner.get_by_role("heading", name="Canal public")).to_be_visible()


def test_a_tribe_made_public_in_the_browser_reaches_its_followers(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    problems: list[str] = []
    owner = new_context("owner").pages[0]
    watch_console(owner, problems)
    activate(owner, web_server.owner_url(), "Maire Dupuis")
    create_channel(owner, TRIBE, "tribe")
    tribe = owner.url.rsplit("/", 1)[1]

    members_panel(owner)
    expect(owner.locator(".public-followers")).to_have_count(0)  # not public yet
    owner.get_by_role("button", name="Publier un lien d'abonnement").click()
    expect(owner.locator(".public-link svg.qr path")).to_have_count(1)
    join_url = owner.locator("#join-url").input_value()
    assert f"channel={tribe}" in join_url and "&ticket=" in join_url and "&root=" in join_url
    expect(owner.get_by_role("link", name="Télécharger le QR code (SVG)")).to_have_attribute(
        "download", re.compile(r"\.svg$")
    )
    expect(owner.locator(".public-followers")).to_have_text("0 abonné")

    follower = str(tmp_path / "lea")
    assert cli("--profile", follower, "join", join_url, "--name", "Léa")["follower_id"].startswith("f_")
    owner.get_by_role("button", name="Membres").click()
    members_panel(owner)
    expect(owner.locator(".public-followers")).to_have_text("1 abonné")
    owner.get_by_role("button", name="Membres").click()

    send(owner, POST)  # the browser verifies Léa's certificate and seals its key to her device

    def read() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = cli("--profile", follower, "read", tribe)["messages"]
        return messages

    wait_for(
        lambda: any(m.get("text") == POST and m["verified"] for m in read()), "the follower to read the post"
    )

    members_panel(owner)
    owner.get_by_role("button", name="Révoquer le lien").click()
    expect(owner.get_by_role("button", name="Publier un lien d'abonnement")).to_be_visible()
    expect(owner.locator("#join-url")).to_have_count(0)
    refused = bocage_fails("--profile", str(tmp_path / "late"), "join", join_url, "--name", "Tom")
    assert refused["status"] == 410
    assert not problems, problems
