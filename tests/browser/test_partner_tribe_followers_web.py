"""A partner's member in a public tribe with followers, with the web app on both sides
(docs/protocol.md, 16.3 and 22.6), in Debian's Chromium over `bocage serve`: the town hall (A)
lets the firm's (B) members into its tribes; the firm's drafter uses the browser, a citizen
follows the tribe in another browser. The follower reads the post of an author added after the
drafter (its replay goes past the member it cannot verify); the drafter votes, and her browser
seals nothing to the follower, who could not verify her, and warns nothing about them. Her
reactions reach the follower, whose browser says "not certified" and does not reload its
directory per message of hers; followers react, and her browser flags none as forged."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.sqlite_store import SqliteStore
from tests.browser.conftest import watch_console
from tests.browser.test_partner_groups_web import sealed_to
from tests.browser.test_web_app import activate, message, open_channel
from tests.e2e.conftest import bocage, start_server
from tests.e2e.test_call_relay import owner_of

TOWN, FIRM, TRIBE = "Mairie de Plouha", "Cabinet Ardoise", "Vie du village"
POST = "Le marché est déplacé place de l'église"


def roster_devices(data: Path, channel_id: str) -> list[tuple[str, str]]:
    """(device id, member id) of every device on the tribe's roster, read beside the API."""
    store = SqliteStore(str(data / "bocage.sqlite3"), SystemClock())
    try:
        return [(d.device_id, d.member_id) for d in ChannelRecords(store).roster(channel_id)]
    finally:
        store.close()


def reopen(page: Any) -> None:
    """Reload the page and open the tribe, whose reactions are opened (and retried) meanwhile."""
    page.reload()
    open_channel(page, TRIBE)
    expect(message(page, POST)).to_be_visible(timeout=30_000)
    time.sleep(4)


def partner_reacts(drafter: Any, lea: Any) -> None:
    """The drafter reacts, three times: the follower's browser reloads no directory per reaction
    (it has no partners to ask) and calls her device not certified, not a forger's."""
    for name in ("pouce levé", "merci", "cœur"):
        message(drafter, POST).get_by_role("button", name="Réagir").click()
        drafter.get_by_role("button", name=f"Réagir : {name}").click()
    members_asked = requests(lea, r"/members(\?|$)")
    reopen(lea)
    assert len(members_asked) <= 2, members_asked  # a reload's own, none per reaction
    warnings = lea.locator(".trust-warning").all_inner_texts()
    assert any("n'est pas certifié" in w for w in warnings), warnings
    assert not any("ne vient pas d'un de ses appareils" in w for w in warnings), warnings


def followers_react(
    lea: Any, drafter: Any, followers: list[str], created: tuple[str, str], post: str
) -> None:
    """Followers react (``lea`` in the browser, ``followers`` with the CLI): the drafter's browser
    verifies them from the roster (though it seals them nothing) and flags none as forged."""
    tribe, join_url = created
    for i, follower in enumerate(followers):
        bocage("--profile", follower, "join", join_url, "--name", f"Abonné {i}")
        bocage("--profile", follower, "read", tribe)
    message(lea, POST).get_by_role("button", name="Réagir").click()
    lea.get_by_role("button", name="Réagir : pouce levé").click()
    for follower in followers:
        bocage("--profile", follower, "react", tribe, post, "👍")
    reopen(drafter)
    expect(drafter.locator(".trust-warning")).to_have_count(0)


def requests(page: Any, path: str) -> list[str]:
    """The URLs of the GET requests to ``path`` (a pattern) the page makes from now on."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.method == "GET" and re.search(path, r.url) else None)
    return seen


def test_a_follower_and_a_partners_member_share_a_tribe_without_reading_each_other(
    tmp_path: Path, new_context: Callable[..., Any]
) -> None:
    data = tmp_path / "data"
    orgs = {name: bocage("org", "create", name, "--data", str(data)) for name in (TOWN, FIRM)}
    server = start_server(data, tmp_path / "serve.log")
    try:
        mayor, architect = (
            owner_of(orgs[n], server, tmp_path / p) for n, p in ((TOWN, "mayor"), (FIRM, "arch"))
        )
        code = bocage("--profile", mayor, "partner", "invite", "--allow-tribes")["code"]
        bocage("--profile", architect, "partner", "accept", code)
        bocage("--profile", mayor, "partners")  # countersigns: active on both sides
        created = bocage("--profile", mayor, "tribe", "create", TRIBE, "--public")
        tribe, join_url = created["channel_id"], created["join_url"]

        problems: list[str] = []
        drafter_invite = bocage("--profile", architect, "invite", "--name", "Dessinatrice")
        drafter = new_context("drafter").pages[0]
        watch_console(drafter, problems)
        activate(drafter, drafter_invite["activation_url"], "Dessinatrice")
        bocage("--profile", mayor, "channel", "add", tribe, drafter_invite["member_id"])

        lea = new_context("lea").pages[0]
        watch_console(lea, problems)
        lea.goto(join_url)
        lea.get_by_label("Votre nom").fill("Léa du moulin")
        lea.get_by_role("button", name="S'abonner").click()
        expect(lea.get_by_role("heading", level=1, name=re.compile(TRIBE))).to_be_visible()

        # An author added after the drafter: the follower verifies that entry too.
        deputy_invite = bocage("--profile", mayor, "invite", "--name", "Adjointe")
        deputy = str(tmp_path / "deputy")
        bocage("--profile", deputy, "activate", deputy_invite["activation_url"], "--name", "Adjointe")
        bocage("--profile", mayor, "channel", "add", tribe, deputy_invite["member_id"], "--role", "author")
        post = bocage("--profile", deputy, "send", tribe, POST)["message_id"]
        bocage("--profile", deputy, "poll", "create", tribe, "Un marché le dimanche ?", "Oui", "Non")
        expect(message(lea, POST)).to_be_visible(timeout=30_000)
        expect(message(lea, POST)).to_contain_text("Adjointe")

        drafter.reload()
        open_channel(drafter, TRIBE)
        expect(message(drafter, POST)).to_be_visible(timeout=30_000)
        drafter.get_by_label("Oui").check()
        drafter.get_by_role("button", name="Voter").click()
        expect(drafter.get_by_role("button", name="Changer mon vote")).to_be_visible()

        roster = roster_devices(data, tribe)
        drafter_devices = {d for d, m in roster if m == drafter_invite["member_id"]}
        [follower_device] = [d for d, m in roster if m.startswith("f_")]
        senders = {k.sender_device for k in sealed_to(data, tribe, follower_device)}
        assert drafter_devices and senders and not senders & drafter_devices
        expect(drafter.locator(".trust-warning")).to_have_count(0)  # no uncertified_follower

        partner_reacts(drafter, lea)
        followers = [str(tmp_path / f"follower{i}") for i in range(2)]
        followers_react(lea, drafter, followers, (tribe, join_url), post)
        assert not problems, problems
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
