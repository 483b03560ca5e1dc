"""A poll's tally counts the verified membership cut at the partnership ends (docs/protocol.md,
sections 8 and 22.7), in Debian's Chromium over `bocage serve`, and in the CLI on the same
poll: the town hall (A) and the firm (B) are partners; A's group holds A's secretary (the
browser), A's mayor and B's architect; the mayor and the architect vote, and the browser counts
both. Once the mayor ends the partnership, the architect's vote, cast while partners, no longer
counts: not in the browser (the same one, reloaded), not in the CLI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import shoot, watch_console
from tests.browser.test_partner_end_web import GROUP, group_with_the_firm
from tests.browser.test_web_app import (
    activate,
    message,
    open_channel,
    secretary_in_group,
    town_hall,
    wait_for,
)
from tests.e2e.conftest import Server, bocage, bocage_fails

QUESTION = "Réunion de chantier ?"


def test_an_ended_partners_member_s_vote_leaves_the_tally_in_the_browser_and_the_cli(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with group_with_the_firm(tmp_path, new_context) as g:
        firm, mayor, architect, site, problems = g.firm, g.mayor, g.architect, g.site, g.problems
        poll = bocage("--profile", mayor, "poll", "create", site, QUESTION, "Lundi", "Mardi")["poll_id"]
        bocage("--profile", architect, "poll", "vote", site, poll, "0")
        bocage("--profile", mayor, "poll", "vote", site, poll, "1")
        assert bocage("--profile", mayor, "poll", "results", site, poll)["voters"] == 2  # while partners
        page = g.context.new_page()
        watch_console(page, problems)
        page.goto(g.app_url)
        open_channel(page, GROUP)
        card = message(page, QUESTION)
        expect(card.locator(".poll-meta")).to_contain_text("2 votants", timeout=30_000)

        bocage("--profile", mayor, "partner", "end", firm["org_id"])
        after = bocage("--profile", mayor, "poll", "results", site, poll)
        assert after["voters"] == 1 and after["counts"] == [0, 1]
        page.reload()  # the app asks the partnerships again on a full reload (22.6)
        open_channel(page, GROUP)
        expect(card).to_be_visible(timeout=30_000)
        expect(card.locator(".poll-meta")).to_contain_text("1 votant", timeout=30_000)
        expect(card.locator(".poll-option").nth(0)).to_contain_text("0 vote")
        expect(card.locator(".poll-option").nth(1)).to_contain_text("1 vote")
        shoot(page, artifacts, "poll-voters-01-after-the-end")
        assert not problems, problems


def roll_back_the_log(data: Path, channel_id: str) -> None:
    """What a server that rolls a channel's membership log back shows: its last entry gone."""
    with sqlite3.connect(data / "bocage.sqlite3") as db:
        [(sk,)] = db.execute(
            "select sk from items where pk = ? and sk like 'MLOG#%' order by sk desc limit 1",
            (f"CHAN#{channel_id}",),
        ).fetchall()
        db.execute("delete from items where pk = ? and sk = ?", (f"CHAN#{channel_id}", sk))


def test_a_tally_on_a_rolled_back_log_says_it_counts_the_last_verified_members(
    tmp_path: Path, new_context: Callable[..., Any]
) -> None:
    """The server rolls the group's membership log back: the CLI refuses to tally (exit 3), the
    browser still shows the tally on the members it verified last, and says so on the poll."""
    with town_hall(tmp_path, "Mairie de Plouzané") as (data, _, mayor):
        problems: list[str] = []
        secretary, site = secretary_in_group(mayor, new_context, problems, GROUP)
        poll = bocage("--profile", mayor, "poll", "create", site, QUESTION, "Lundi", "Mardi")["poll_id"]
        bocage("--profile", mayor, "poll", "vote", site, poll, "1")
        secretary.reload()
        open_channel(secretary, GROUP)
        card = message(secretary, QUESTION)
        expect(card.locator(".poll-meta")).to_contain_text("1 votant", timeout=30_000)
        expect(card.locator(".poll-warning")).to_have_count(0)

        roll_back_the_log(data, site)
        refused = bocage_fails("--profile", mayor, "poll", "results", site, poll, code=3)
        assert "membership" in json.dumps(refused)
        secretary.reload()
        open_channel(secretary, GROUP)
        expect(card.locator(".poll-warning")).to_contain_text("ne se vérifie pas", timeout=30_000)
        expect(card.locator(".poll-meta")).to_contain_text("1 votant")
        expect(secretary.locator('.trust-warning[data-code="membership_rollback"]')).to_have_count(1)


def test_a_member_offline_still_counts_the_followers_votes_it_verified(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """A public tribe's poll: the mayor (CLI) and a follower (CLI, changing her vote) vote; the
    secretary's browser counts both, the member's and the follower's apart, hers once, as last
    cast. Started again with no network, it counts the follower's vote it verified when it opened
    it (the tribe's followers cannot be asked), not the members alone."""
    problems: list[str] = []
    mayor = str(tmp_path / "mayor")
    cli("--profile", mayor, "activate", web_server.owner_url(), "--name", "Maire Dupuis")
    created = cli("--profile", mayor, "tribe", "create", "Vie du village", "--public")
    tribe, join_url = created["channel_id"], created["join_url"]
    invited = cli("--profile", mayor, "invite", "--name", "Secrétaire")
    page = new_context("secretary").pages[0]
    watch_console(page, problems)
    activate(page, invited["activation_url"], "Secrétaire")
    cli("--profile", mayor, "channel", "add", tribe, invited["member_id"])
    citizen = str(tmp_path / "citizen")
    cli("--profile", citizen, "join", join_url, "--name", "Léa")
    poll = cli("--profile", mayor, "poll", "create", tribe, QUESTION, "Lundi", "Mardi")["poll_id"]
    cli("--profile", mayor, "poll", "vote", tribe, poll, "0")
    cli("--profile", citizen, "poll", "vote", tribe, poll, "0")
    cli("--profile", citizen, "poll", "vote", tribe, poll, "1")  # changed her mind: her last vote counts

    open_channel(page, "Vie du village")
    card = message(page, QUESTION)
    # Members' and followers' votes apart (section 16.3): in all, and per option.
    meta = "2 votants : 1 membre, 1 abonné · un vote par membre, un par appareil d'abonné"
    expect(card.locator(".poll-meta")).to_contain_text(meta, timeout=30_000)
    expect(card.locator(".poll-option").nth(0)).to_contain_text("1 vote · 1 membre, 0 abonné · 50 %")
    expect(card.locator(".poll-option").nth(1)).to_contain_text("1 vote · 0 membre, 1 abonné · 50 %")
    wait_for(lambda: page.evaluate("Boolean(navigator.serviceWorker.controller)"), "the worker in control")

    page.context.set_offline(True)
    page.reload()
    expect(page.get_by_text("Hors ligne", exact=False).first).to_be_visible()
    expect(card.locator(".poll-meta")).to_contain_text(meta, timeout=30_000)
    expect(card.locator(".poll-option").nth(1)).to_contain_text("1 vote · 0 membre, 1 abonné")
    page.context.set_offline(False)
    assert not problems, problems


def test_a_vote_past_the_addresss_allowance_is_refused_with_a_clear_message(
    tmp_path: Path, new_context: Callable[..., Any]
) -> None:
    """`bocage serve` limits votes per source address (section 8): with an allowance of one, the
    browser's first vote counts, changing it at once is refused with a message that says why,
    and the first vote stands."""
    with town_hall(tmp_path, "Mairie de Plouzané", BOCAGE_VOTE_BURST="1") as (_, _, mayor):
        problems: list[str] = []
        secretary, site = secretary_in_group(mayor, new_context, problems, GROUP)
        poll = bocage("--profile", mayor, "poll", "create", site, QUESTION, "Lundi", "Mardi")["poll_id"]
        secretary.reload()
        open_channel(secretary, GROUP)
        card = message(secretary, QUESTION)
        card.get_by_label("Lundi").check()
        card.get_by_role("button", name="Voter").click()
        expect(card.get_by_role("button", name="Changer mon vote")).to_be_visible()
        card.get_by_label("Mardi").check()
        card.get_by_role("button", name="Changer mon vote").click()
        expect(secretary.locator("#toast")).to_contain_text("Trop de demandes à la suite")
        assert bocage("--profile", mayor, "poll", "results", site, poll)["counts"] == [1, 0]
