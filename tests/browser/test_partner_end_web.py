"""A partnership's end has a date (docs/protocol.md, 22.7), in Debian's Chromium over
`bocage serve`: the town hall (A) and the firm (B) are partners; A's group holds A's secretary
(the browser), B's architect and, added after the end, A's deputy. The secretary's browser
first opens the group after the end, so it replays the log from entry 0: the architect's `add`
verifies by its date (before, the replay stopped there and the deputy, added later, was
"not a member"), the architect's message from before the end shows as theirs, the deputy's
message from after it as the deputy's, and no warning is raised."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import shoot, watch_console
from tests.browser.test_web_app import activate, message, open_channel
from tests.e2e.conftest import bocage
from tests.e2e.test_partner_cli import become_partners, town_and_firm

FIRM, GROUP = "Cabinet Ardoise", "Chantier"  # the firm as town_and_firm names it


@dataclass
class SharedGroup:
    """A's group with the secretary (the browser, away since activating) and the firm's member."""

    firm: dict[str, Any]
    mayor: str
    architect: str
    context: Any  # the secretary's browser
    app_url: str
    site: str  # the group's id
    problems: list[str] = field(default_factory=list)  # the console's


@contextmanager
def group_with_the_firm(tmp_path: Path, new_context: Callable[..., Any]) -> Iterator[SharedGroup]:
    """The town and the firm partnered; the secretary activates her browser, then closes the app
    (before the group exists: until she opens it again, her browser has never seen its log).
    The mayor creates the group with her and the firm's member in it."""
    with town_and_firm(tmp_path) as (_, firm, mayor, architect):
        become_partners(mayor, architect)
        problems: list[str] = []
        invited = bocage("--profile", mayor, "invite", "--name", "Secrétaire")
        context = new_context("secretary")
        page = context.pages[0]
        watch_console(page, problems)
        activate(page, invited["activation_url"], "Secrétaire")
        app_url = page.url
        page.close()
        site = str(bocage("--profile", mayor, "group", "create", GROUP)["channel_id"])
        bocage("--profile", mayor, "channel", "add", site, invited["member_id"])
        bocage("--profile", mayor, "channel", "add", site, firm["member_id"])
        yield SharedGroup(firm, mayor, architect, context, app_url, site, problems)


def test_a_browser_first_opening_a_group_after_the_end_shows_each_message_as_its_sender_s(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with group_with_the_firm(tmp_path, new_context) as g:  # her browser is away until after the end
        firm, mayor, architect, site, problems = g.firm, g.mayor, g.architect, g.site, g.problems
        deputy = str(tmp_path / "deputy")
        deputy_invited = bocage("--profile", mayor, "invite", "--name", "Adjoint")
        bocage("--profile", deputy, "activate", deputy_invited["activation_url"])
        bocage("--profile", architect, "send", site, "Les plans sont prêts")
        bocage("--profile", mayor, "partner", "end", firm["org_id"])
        bocage("--profile", mayor, "channel", "add", site, deputy_invited["member_id"])
        bocage("--profile", deputy, "send", site, "Je prends le relais")

        page = g.context.new_page()
        watch_console(page, problems)
        page.goto(g.app_url)
        open_channel(page, GROUP)
        before = message(page, "Les plans sont prêts")
        expect(before).to_be_visible(timeout=30_000)
        expect(before).to_contain_text(f"Maire ({FIRM})")
        after = message(page, "Je prends le relais")
        expect(after).to_be_visible(timeout=30_000)
        expect(after).to_contain_text("Adjoint")
        expect(page.locator(".trust-warning")).to_have_count(0)
        shoot(page, artifacts, "partner-end-01-history-after-the-end")
        assert not problems, problems
