"""Partner organisations in the admin console (docs/protocol.md, section 22), in Debian's Chromium
over `bocage serve`: the town hall's owner invites from the console, the firm's owner opens the
link in the firm's console and accepts, the town hall's console countersigns when it lists its
partners, both see the partnership as active, and the firm ends it; a server that then hides the
end is caught by the town hall's browser, which keeps it ended."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from chalicelib.domain.activation_link import activation_url
from tests.browser.conftest import shoot, watch_console
from tests.browser.test_web_app import activate, invite
from tests.e2e.conftest import bocage, start_server

TOWN, FIRM = "Mairie de Plouha", "Cabinet Ardoise"


def partners_tab(page: Any) -> None:
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Partenaires").click()
    expect(page.get_by_role("heading", name="Partenaires", level=2)).to_be_visible()


def row(page: Any, name: str) -> Any:
    return page.locator("table.partners tbody tr", has_text=name)


def hide_the_end(data: Path) -> None:
    """What a server that rolls back the partnership's record would show (SQLite store)."""
    with sqlite3.connect(data / "bocage.sqlite3") as db:
        [(pk, sk, raw)] = db.execute(
            "select pk, sk, data from items where pk like 'PARTNERSHIP#%'"
        ).fetchall()
        item = {k: v for k, v in json.loads(raw).items() if k not in ("end", "ended_at")}
        db.execute("update items set data = ? where pk = ? and sk = ?", (json.dumps(item), pk, sk))


def whoever_opens_it(link: str, mayor: Any, clerk: Any, architect: Any, architect_url: str) -> None:
    """The link's secret leaves the address bar whoever opens it: an admin's console opens on the
    accept form with the link's content; a member who is not an admin, and a browser not activated
    yet, see their screen with the secret gone too, and the latter keeps it in memory for the
    accept form once activated (the architect, owner of the firm)."""
    mayor.goto(link)
    expect(mayor.locator("#partner-code")).to_have_value(link)
    assert "ticket=" not in mayor.url, "the link's secret must leave the address bar"
    activate(clerk, invite(mayor, "Paul Clerc"), "Paul Clerc")
    clerk.goto(link)
    expect(clerk.get_by_text("Cette page est réservée aux administrateurs")).to_be_visible()
    assert "ticket=" not in clerk.url and "#/partner?" not in clerk.url
    architect.goto(link)
    expect(architect.get_by_role("heading", name="Bienvenue sur Bocage")).to_be_visible()
    assert "ticket=" not in architect.url and "#/partner?" not in architect.url
    activate(architect, architect_url, "Anne Ardoise")
    partners_tab(architect)
    expect(architect.locator("#partner-code")).to_have_value(link)


def test_two_organisations_become_partners_in_the_console_and_one_ends_it(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    data = tmp_path / "data"
    town = bocage("org", "create", TOWN, "--data", str(data))
    firm = bocage("org", "create", FIRM, "--data", str(data))
    server = start_server(data, tmp_path / "serve.log")
    try:
        problems: list[str] = []
        mayor = new_context("mayor").pages[0]
        architect = new_context("architect").pages[0]
        for page in (mayor, architect):
            watch_console(page, problems)
        urls = {
            page: activation_url(
                f"{server.url}/app",
                server.url,
                created["activation_code"],
                org=created["org_id"],
                member=created["member_id"],
            )
            for page, created in ((mayor, town), (architect, firm))
        }
        activate(mayor, urls[mayor], "Maire Dupuis")

        partners_tab(mayor)
        expect(mayor.get_by_text("Aucune organisation partenaire pour l'instant.")).to_be_visible()
        mayor.get_by_role("button", name="Créer l'invitation").click()
        expect(mayor.get_by_role("heading", name="Invitation prête")).to_be_visible()
        code = mayor.locator("#partner-invite-code").input_value()
        link = mayor.locator("#partner-invite-url").input_value()
        assert code.startswith("bocage-partner:v2:") and "#/partner?" in link
        assert "&ticket=" in link and "&root=" in link  # the secret rides in the fragment only
        expect(mayor.locator(".partner-invitation .qr-box svg")).to_be_visible()
        shoot(mayor, artifacts, "partners-01-invitation")

        clerk = new_context("clerk").pages[0]
        watch_console(clerk, problems)
        whoever_opens_it(link, mayor, clerk, architect, urls[architect])
        architect.get_by_role("button", name="Accepter l'invitation").click()
        expect(row(architect, TOWN)).to_contain_text("En attente", timeout=30_000)

        partners_tab(mayor)  # listing countersigns the firm's acceptance after checking it
        expect(row(mayor, FIRM)).to_contain_text("Active", timeout=30_000)
        shoot(mayor, artifacts, "partners-02-active")
        partners_tab(architect)
        expect(row(architect, TOWN)).to_contain_text("Active", timeout=30_000)

        row(architect, TOWN).get_by_role("button", name=f"Mettre fin au partenariat avec {TOWN}").click()
        row(architect, TOWN).get_by_role("button", name="Oui, mettre fin").click()
        expect(row(architect, TOWN)).to_contain_text("Terminée", timeout=30_000)
        partners_tab(mayor)
        expect(row(mayor, FIRM)).to_contain_text("Terminée", timeout=30_000)
        expect(row(mayor, FIRM).get_by_role("button")).to_have_count(0)
        shoot(mayor, artifacts, "partners-03-ended")

        hide_the_end(data)  # a malicious server: the partnership as if nobody had ended it
        partners_tab(mayor)
        expect(row(mayor, FIRM)).to_contain_text("Terminée", timeout=30_000)
        expect(mayor.locator(".trust-warning[data-code=partnership_rollback]")).to_be_visible()
        assert not problems, problems
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
