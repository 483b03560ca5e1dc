"""Nothing a device signs after its revocation counts (docs/protocol.md 13.7, 14.2), in the web
app (Debian's Chromium over `bocage serve`), fresh or kept: Eve's phone, its clock or its thief
dating messages 10 minutes ahead, is revoked. What it signed dated after the revocation (+300 s)
is flagged in the page and not shown as hers, whether the page opens it now or had kept it
(IndexedDB) from before it saw the revocation; what it sent before stays hers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from bocage.client.profile import Profile
from tests.browser.conftest import shoot
from tests.browser.test_cached_senders_web import back_to, clock_ahead, kept_and_read, refused
from tests.browser.test_not_a_member_web import GROUP, eve_in_town
from tests.browser.test_web_app import message, town_hall
from tests.e2e.conftest import bocage


def test_messages_dated_after_a_revocation_are_refused_fresh_or_kept(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Tréguier") as (_data, _town, mayor):
        problems: list[str] = []
        secretary, site, eve, _eve_id = eve_in_town(tmp_path, mayor, new_context, problems, in_group=True)
        bocage("--profile", eve, "send", site, "Bonjour à tous")
        clock_ahead(eve).send_text(site, "Rendez-vous demain")
        expect(message(secretary, "Rendez-vous demain")).to_contain_text("Ève", timeout=30_000)
        app = secretary.url
        kept_and_read(secretary, GROUP, site, "Rendez-vous demain")  # kept while not yet revoked
        secretary.goto("about:blank")  # away: the revocation is not heard live

        clock_ahead(eve).send_text(site, "La réunion est annulée")  # stored, read fresh later
        bocage("--profile", mayor, "revoke", Profile(eve).keys().device_id)
        back_to(secretary, app, GROUP)
        expect(refused(secretary)).to_have_count(2, timeout=30_000)
        expect(message(secretary, "Rendez-vous demain")).to_have_count(0)
        expect(message(secretary, "La réunion est annulée")).to_have_count(0)
        expect(message(secretary, "Bonjour à tous")).to_contain_text("Ève")  # dated before: hers
        expect(secretary.locator(".trust-warning[data-code=not_a_member]")).to_be_visible()
        shoot(secretary, artifacts, "revoked-senders-01-after-revocation")
        assert not problems, problems
