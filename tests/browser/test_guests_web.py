"""A guest in the web app (docs/protocol.md, section 21), in Debian's Chromium over `bocage serve`:
the owner invites a contractor as a guest from the console, the guest activates in a second
browser, sees only the group they were added to, no directory, no new channel, no console."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import shoot, watch_console
from tests.browser.test_web_app import activate, add_to_channel, create_channel, message, open_channel, send
from tests.e2e.conftest import Server

SITE = "Chantier de l'école"
COUNCIL = "Conseil municipal"


def test_an_admin_invites_a_guest_who_sees_only_their_group(
    web_server: Server, new_context: Callable[..., Any], artifacts: Path
) -> None:
    problems: list[str] = []
    owner = new_context("owner").pages[0]
    guest = new_context("guest").pages[0]
    for page in (owner, guest):
        watch_console(page, problems)
    activate(owner, web_server.owner_url(), "Maire Dupuis")
    create_channel(owner, COUNCIL, "group")

    owner.get_by_role("link", name="Administration").click()
    owner.get_by_label("Nom de la personne").fill("Paul Charpentier")
    owner.get_by_label("Rôle").select_option("guest")
    owner.get_by_role("button", name="Créer l'invitation").click()
    expect(owner.get_by_role("heading", name="Invitation prête pour Paul Charpentier")).to_be_visible()
    url = owner.locator("#activation-url").input_value()
    assert "&ticket=" in url  # the role rides in the ticket the owner's device signed
    activate(guest, url, "Paul Charpentier")

    owner.get_by_role("link", name="Membres et appareils").click()
    row = owner.locator("table.members tr", has_text="Paul Charpentier")
    role = row.get_by_role("combobox")
    expect(role).to_have_value("guest")
    expect(role.locator("option:checked")).to_have_text("Invité(e)")
    expect(role).to_be_disabled()  # a guest stays a guest
    shoot(owner, artifacts, "guest-01-members")
    server_claims_the_guest_is_an_admin(owner)

    create_channel(owner, SITE, "group")
    add_to_channel(owner, "Paul Charpentier")
    send(owner, "Livraison du bois lundi à 8h")
    owner.get_by_role("button", name="Membres").click()
    panel = owner.locator("#members-panel")
    expect(panel.locator("li", has_text="Paul Charpentier").locator(".role-tag")).to_have_text("Invité(e)")
    expect(panel.locator("li", has_text="Maire Dupuis").locator(".role-tag")).to_have_count(0)

    expect(guest.get_by_role("link", name=re.compile(re.escape(SITE)))).to_be_visible(timeout=30_000)
    open_channel(guest, SITE)
    expect(message(guest, "Livraison du bois lundi à 8h")).to_be_visible(timeout=30_000)
    send(guest, "Je serai là à 7h45")
    expect(message(owner, "Je serai là à 7h45")).to_contain_text("Paul Charpentier")

    expect(guest.get_by_role("link", name=re.compile(re.escape(COUNCIL)))).to_have_count(0)
    expect(guest.get_by_role("button", name="Nouveau canal")).to_have_count(0)
    expect(guest.get_by_role("button", name="Message direct")).to_have_count(0)  # no directory
    expect(guest.get_by_role("link", name="Administration")).to_have_count(0)
    guest.goto(guest.url.split("#")[0] + "#/device")
    expect(guest.get_by_text("Invité(e)")).to_be_visible()
    shoot(guest, artifacts, "guest-02-device")
    assert not problems, problems


def server_claims_the_guest_is_an_admin(owner: Page) -> None:
    """The console shows the role the guest's signed ticket gives, as the CLI does, and names the
    server's claim beside it instead of showing it: a server cannot promote a guest on screen."""

    def lying(route: Route) -> None:
        answer = route.fetch()
        body = answer.json()
        for member in body["members"]:
            if member["display_name"] == "Paul Charpentier":
                member["role"] = "admin"
        route.fulfill(response=answer, json=body)

    owner.route(re.compile(r".*/members(\?.*)?$"), lying)
    owner.get_by_role("link", name="Inviter").click()
    owner.get_by_role("link", name="Membres et appareils").click()
    row = owner.locator("table.members tr", has_text="Paul Charpentier")
    expect(row.get_by_role("combobox")).to_have_value("guest")
    expect(row.locator(".server-role")).to_have_text(
        "Le serveur indique Administrateur : ce rôle n'est signé par personne."
    )
    owner.unroute(re.compile(r".*/members(\?.*)?$"))
