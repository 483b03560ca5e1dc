"""New members' first messages in a page left open (Debian's Chromium over `bocage serve`).

Two members of our own organisation are added to a group while a web user has it open; each
sends their first message, the second a moment after the first. The browser fetches the group's
sealed keys for the first message; that fetch came before the second member's key existed, so
it must not stand for the second message: both read at once, without a retry or a reload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.test_web_app import arrives_readable, open_channel, secretary_in_group, send, town_hall
from tests.e2e.conftest import bocage

GROUP = "Voirie"


@contextmanager
def group_open(
    tmp_path: Path, new_context: Callable[..., Any], town: str
) -> Iterator[tuple[str, Any, str, list[str]]]:
    """A town hall whose secretary has the group open in a page and has said hello in it: the
    mayor's profile, the page, the group's id, and the page's console problems."""
    with town_hall(tmp_path, town) as (_, _, mayor):
        problems: list[str] = []
        secretary, site = secretary_in_group(mayor, new_context, problems, GROUP)
        secretary.reload()
        open_channel(secretary, GROUP)
        send(secretary, "Bonjour à tous")
        yield mayor, secretary, site, problems


def test_new_members_first_messages_read_at_once_in_an_open_page(
    tmp_path: Path, new_context: Callable[..., Any]
) -> None:
    with group_open(tmp_path, new_context, "Mairie de Binic") as (mayor, secretary, site, problems):
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
