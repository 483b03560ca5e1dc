"""What the web app keeps (IndexedDB) is judged like what it reads fresh, for followers and the
unread count too (docs/protocol.md 14.2 "Kept messages are judged again", 16.3; docs/web.md), in
Debian's Chromium over `bocage serve`. A follower's kept reaction counts only while the tribe's
roster still verifies them: once they left, it is refused as a fresh one is, and the roster is
not asked once per kept record. A record a follower's device cannot place is "not certified",
as a fresh one, never a forgery. A message refused on arrival is no unread message."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from bocage.client.profile import Profile
from tests.browser.conftest import shoot, watch_console
from tests.browser.test_cached_senders_web import KEPT, OLD_RECORD, back_to, clock_ahead
from tests.browser.test_not_a_member_web import GROUP, eve_in_town, let_in
from tests.browser.test_partner_tribe_followers_web import requests
from tests.browser.test_web_app import activate, message, open_channel, town_hall, wait_for
from tests.e2e.conftest import bocage

TRIBE = "Vie du village"
POST = "Le marché est déplacé place de l'église"
EMOJIS = ("👍", "❤️", "😂", "😮", "🎉", "👏")


def records(page: Page, channel_id: str) -> dict[str, Any]:
    """What the device keeps of a channel: its read cursor and every record's verdict."""
    found: dict[str, Any] = page.evaluate(KEPT, channel_id)
    return found


def member_in_tribe(
    tmp_path: Path, new_context: Callable[..., Any], problems: list[str], mayor: str
) -> tuple[Page, str, str]:
    """The mayor's public tribe (CLI) and the secretary, a plain member of it, in a browser: (her
    page, the tribe's id, its join URL)."""
    created = bocage("--profile", mayor, "tribe", "create", TRIBE, "--public")
    invited = bocage("--profile", mayor, "invite", "--name", "Secrétaire")
    secretary = new_context("secretary").pages[0]
    watch_console(secretary, problems)
    activate(secretary, invited["activation_url"], "Secrétaire")
    bocage("--profile", mayor, "channel", "add", created["channel_id"], invited["member_id"])
    return secretary, created["channel_id"], created["join_url"]


def test_a_kept_reaction_of_a_follower_who_left_counts_no_more(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Plouha") as (_data, _town, mayor):
        problems: list[str] = []
        secretary, tribe, join_url = member_in_tribe(tmp_path, new_context, problems, mayor)
        lea = str(tmp_path / "lea")
        bocage("--profile", lea, "join", join_url, "--name", "Léa")
        secretary.reload()
        open_channel(secretary, TRIBE)
        post = bocage("--profile", mayor, "send", tribe, POST)["message_id"]
        expect(message(secretary, POST)).to_be_visible(timeout=30_000)
        bocage("--profile", lea, "read", tribe)
        for emoji in EMOJIS:
            bocage("--profile", lea, "react", tribe, post, emoji)
        chips = message(secretary, POST).locator(".reactions .chip")
        expect(chips).to_have_count(len(EMOJIS), timeout=30_000)
        expect(chips.first).to_have_attribute("aria-label", re.compile(r"^👍 : 1, par Léa\."))
        app = secretary.url

        def kept() -> bool:  # her reactions opened, kept, and the cursor past them: not read again
            found = records(secretary, tribe)
            reactions = [r for r in found["records"] if r["kind"] == "reaction"]
            return len(reactions) == len(EMOJIS) and all(
                r["verified"] and r["seq"] <= found["cursor"] for r in reactions
            )

        back_to(secretary, app, TRIBE)
        wait_for(kept, "Léa's reactions kept and read")
        secretary.goto("about:blank")  # away: her leaving is not heard live

        bocage("--profile", lea, "follower", "leave")
        asked = requests(secretary, r"/channels/[^/]+/roster")
        back_to(secretary, app, TRIBE)
        expect(message(secretary, POST)).to_be_visible(timeout=30_000)
        expect(chips).to_have_count(0, timeout=30_000)
        wait_for(
            lambda: all(
                r["error"] == "uncertified_device" and not r["verified"]
                for r in records(secretary, tribe)["records"]
                if r["kind"] == "reaction"
            ),
            "her kept reactions no longer placed: she left",
        )
        # A departure, not a forgery: no security alert (a town's followers leave most days).
        expect(secretary.locator(".trust-warning")).to_have_count(0)
        # The tribe's roster asked for the page, not once per kept reaction (16.3, FOLLOWER_ROSTER_MS).
        assert len(asked) <= 3, asked
        shoot(secretary, artifacts, "cached-followers-01-left")

        back_to(secretary, app, TRIBE)  # the refusal is kept: the next start shows none at once
        expect(message(secretary, POST)).to_be_visible(timeout=30_000)
        expect(chips).to_have_count(0)
        assert not problems, problems


def test_a_kept_record_a_follower_cannot_place_is_not_certified_as_a_fresh_one(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Plouha") as (_data, _town, mayor):
        problems: list[str] = []
        created = bocage("--profile", mayor, "tribe", "create", TRIBE, "--public")
        tribe = created["channel_id"]
        lea = new_context("lea").pages[0]
        watch_console(lea, problems)
        lea.goto(created["join_url"])
        lea.get_by_label("Votre nom").fill("Léa du moulin")
        lea.get_by_role("button", name="S'abonner").click()
        expect(lea.get_by_role("heading", level=1, name=re.compile(TRIBE))).to_be_visible()
        bocage("--profile", mayor, "send", tribe, POST)
        expect(message(lea, POST)).to_be_visible(timeout=30_000)
        # A member of the town in no tribe: the follower's listing does not name her (16.3), as
        # it names no partner's member.
        eve = str(tmp_path / "eve")
        invited = bocage("--profile", mayor, "invite", "--name", "Ève")
        bocage("--profile", eve, "activate", invited["activation_url"], "--name", "Ève")
        app = lea.url
        back_to(lea, app, TRIBE)
        wait_for(lambda: any(r["text"] == POST for r in records(lea, tribe)["records"]), "the post kept")
        # As an older version of the app kept it: opened and in clear (OLD_RECORD).
        eve_device = Profile(eve).keys().device_id
        lea.evaluate(OLD_RECORD, [tribe, invited["member_id"], eve_device, POST, "Marché annulé"])

        back_to(lea, app, TRIBE)
        uncertified = lea.locator(".messages .msg").filter(
            has=lea.get_by_text("Envoyé d'un appareil non certifié")
        )
        expect(uncertified).to_have_count(1, timeout=30_000)
        expect(lea.locator(".messages .msg").filter(has=lea.get_by_text("Message signalé"))).to_have_count(0)
        expect(message(lea, "Marché annulé")).to_have_count(0)
        expect(message(lea, POST)).to_be_visible()
        [kept] = [r for r in records(lea, tribe)["records"] if r["error"]]
        assert (kept["error"], kept["member"]) == ("uncertified_device", None), kept
        shoot(lea, artifacts, "cached-followers-02-unplaced")
        assert not problems, problems


def unread_badge(page: Page, name: str) -> Any:
    return page.get_by_role("link", name=re.compile(re.escape(name))).locator(".badge.count")


def channel_list(page: Page) -> None:
    """The channel list alone (its title the page's heading): no channel open reads on arrival."""
    page.goto(page.url.split("#")[0] + "#/")
    expect(page.get_by_role("heading", level=1, name="Canaux")).to_be_visible()


def test_a_refused_message_is_no_unread_message(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Paimpol") as (data, town, mayor):
        problems: list[str] = []
        secretary, site, eve, eve_id = eve_in_town(tmp_path, mayor, new_context, problems, in_group=False)
        channel_list(secretary)
        expect(unread_badge(secretary, GROUP)).to_have_count(0)

        let_in(data, site, town["org_id"], eve_id)  # a complicit server: no signed entry
        bocage("--profile", eve, "send", site, "Séance annulée")
        wait_for(
            lambda: any(r["error"] == "not_a_member" for r in records(secretary, site)["records"]),
            "Eve's message received and refused",
        )
        expect(unread_badge(secretary, GROUP)).to_have_count(0)
        assert not secretary.title().startswith("(")

        bocage("--profile", mayor, "send", site, "La séance est maintenue")
        expect(unread_badge(secretary, GROUP)).to_have_text(re.compile(r"^1\b"), timeout=30_000)
        assert secretary.title().startswith("(1) "), secretary.title()
        shoot(secretary, artifacts, "cached-followers-03-unread")
        open_channel(secretary, GROUP)
        expect(message(secretary, "La séance est maintenue")).to_be_visible(timeout=30_000)
        assert not problems, problems


def test_a_kept_unread_message_refused_since_is_no_unread_message(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Tréguier") as (_data, _town, mayor):
        problems: list[str] = []
        secretary, site, eve, eve_id = eve_in_town(tmp_path, mayor, new_context, problems, in_group=True)
        channel_list(secretary)
        clock_ahead(eve).send_text(site, "Rendez-vous demain")  # dated 10 minutes ahead
        expect(unread_badge(secretary, GROUP)).to_have_text(re.compile(r"^1\b"), timeout=30_000)
        wait_for(
            lambda: any(r["verified"] for r in records(secretary, site)["records"] if r["member"] == eve_id),
            "kept",
        )
        secretary.goto("about:blank")  # away: the revocation is not heard live

        bocage("--profile", mayor, "revoke", Profile(eve).keys().device_id)
        secretary.go_back()  # the app again: the kept message, signed after the revocation, is refused
        expect(secretary.get_by_role("heading", level=1, name="Canaux")).to_be_visible()
        expect(unread_badge(secretary, GROUP)).to_have_count(0, timeout=30_000)
        assert not secretary.title().startswith("("), secretary.title()
        shoot(secretary, artifacts, "cached-followers-04-unread-revoked")
        assert not problems, problems
