"""New members' first messages in a page left open (Debian's Chromium over `bocage serve`).

Two members of our own organisation are added to a group while a web user has it open; each
sends their first message, the second a moment after the first. The browser fetches the group's
sealed keys for the first message; that fetch came before the second member's key existed, so
it must not stand for the second message: both read at once, without a retry or a reload."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import watch_console
from tests.browser.test_web_app import activate, arrives_readable, open_channel, send
from tests.e2e.conftest import bocage, start_server
from tests.e2e.test_call_relay import owner_of

GROUP = "Voirie"


def test_new_members_first_messages_read_at_once_in_an_open_page(
    tmp_path: Path, new_context: Callable[..., Any]
) -> None:
    data = tmp_path / "data"
    town = bocage("org", "create", "Mairie de Binic", "--data", str(data))
    server = start_server(data, tmp_path / "serve.log")
    try:
        mayor = owner_of(town, server, tmp_path / "mayor")
        invited = bocage("--profile", mayor, "invite", "--name", "Secrétaire")
        problems: list[str] = []
        secretary = new_context("secretary").pages[0]
        watch_console(secretary, problems)
        activate(secretary, invited["activation_url"], "Secrétaire")
        site = bocage("--profile", mayor, "group", "create", GROUP)["channel_id"]
        bocage("--profile", mayor, "channel", "add", site, invited["member_id"])
        secretary.reload()
        open_channel(secretary, GROUP)
        send(secretary, "Bonjour à tous")

        agents = []
        for name in ("Cantonnier", "Électricienne"):
            profile = str(tmp_path / name)
            invite = bocage("--profile", mayor, "invite", "--name", name)
            bocage("--profile", profile, "activate", invite["activation_url"], "--name", name)
            bocage("--profile", mayor, "channel", "add", site, invite["member_id"])
            agents.append(profile)
        bocage("--profile", agents[0], "send", site, "Le chemin est dégagé")
        bocage("--profile", agents[1], "send", site, "Les lampadaires aussi")

        expect(arrives_readable(secretary, "Le chemin est dégagé")).to_contain_text("Cantonnier")
        expect(arrives_readable(secretary, "Les lampadaires aussi")).to_contain_text("Électricienne")
        expect(secretary.locator(".trust-warning")).to_have_count(0)
        assert not problems, problems
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
