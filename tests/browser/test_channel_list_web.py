"""Typing in the channel list while messages arrive (Debian's Chromium over `bocage serve`).

The list of channels is drawn again whenever a message arrives or a preview changes. The new
channel form and the search box stay open through that, and the field being typed in must keep
the keyboard: before, each redraw took the form out of the page and put it back, which blurs the
field, so the next letters went nowhere (and a test filling the form at that moment created
nothing)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.test_web_app import secretary_in_group, town_hall
from tests.e2e.conftest import bocage

GROUP = "Voirie"


def arrives_in_the_list(page: Page, mayor: str, site: str, text: str) -> None:
    """The mayor sends ``text`` from the CLI; the secretary's list shows it in the group's preview."""
    bocage("--profile", mayor, "send", site, text)
    expect(page.locator(".channel-preview", has_text=text)).to_be_visible(timeout=30_000)


def test_typing_goes_on_in_the_open_forms_while_messages_arrive(
    tmp_path: Path, new_context: Callable[..., Any]
) -> None:
    with town_hall(tmp_path, "Mairie de Plouzané") as (_, _, mayor):
        problems: list[str] = []
        secretary, site = secretary_in_group(mayor, new_context, problems, GROUP)
        secretary.reload()
        expect(secretary.get_by_role("link", name=GROUP)).to_be_visible()

        secretary.get_by_role("button", name="Nouveau canal").click()
        name = secretary.get_by_label("Nom du canal")
        expect(name).to_be_focused()  # the form opened: typing starts in its first field
        secretary.keyboard.type("Travaux ")
        arrives_in_the_list(secretary, mayor, site, "La route est fermée")
        expect(name).to_be_focused()
        secretary.keyboard.type("du bourg")
        expect(name).to_have_value("Travaux du bourg")

        search = secretary.get_by_role("searchbox")
        search.click()
        secretary.keyboard.type("rou")
        arrives_in_the_list(secretary, mayor, site, "Elle rouvre demain")
        expect(search).to_be_focused()
        secretary.keyboard.type("te")
        expect(search).to_have_value("route")
        expect(secretary.locator(".search-results")).to_contain_text("La route est fermée")
        expect(name).to_have_value("Travaux du bourg")  # the form stayed open, its text kept

        secretary.get_by_role("button", name="Créer le canal").click()
        expect(secretary.get_by_role("heading", level=1, name="Travaux du bourg")).to_be_visible()
        assert not problems, problems
