"""A new member's first message judged while the group's membership log cannot be fetched, in a
page left open (Debian's Chromium over `bocage serve`; review M-1). The kept log does not have
the member yet; the refetch fails (the server answers 503 for a moment). The page must neither
refuse the message for good nor warn that an honest member is not in the group: it shows the
message as being checked, and once the log answers again it reads, without a reload."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Route, expect

from tests.browser.test_first_message_web import group_open
from tests.browser.test_web_app import message
from tests.e2e.conftest import bocage

MEMBERSHIP = re.compile(r".*/channels/[^/]+/membership(\?.*)?$")


def answering(status: int, code: str) -> Callable[[Route], None]:
    """A route handler: the server answers every membership request with ``status``."""
    body = json.dumps({"code": code, "message": "not now"})
    return lambda route: route.fulfill(status=status, content_type="application/json", body=body)


def first_message_of_a_new_member(tmp_path: Path, mayor: str, site: str) -> None:
    """The mayor invites the Cantonnier and adds him to the group, where he writes at once."""
    agent = str(tmp_path / "cantonnier")
    invite = bocage("--profile", mayor, "invite", "--name", "Cantonnier")
    bocage("--profile", agent, "activate", invite["activation_url"], "--name", "Cantonnier")
    bocage("--profile", mayor, "channel", "add", site, invite["member_id"])
    bocage("--profile", agent, "send", site, "Le chemin est dégagé")


def test_a_first_message_judged_while_the_log_is_unreachable_reads_once_it_answers(
    tmp_path: Path, new_context: Callable[..., Any]
) -> None:
    with group_open(tmp_path, new_context, "Mairie d'Erquy") as (mayor, secretary, site, _):
        asked: list[str] = []  # membership requests from now on
        secretary.on("requestfinished", lambda r: asked.append(r.url) if MEMBERSHIP.match(r.url) else None)
        secretary.route(MEMBERSHIP, answering(503, "unavailable"))
        first_message_of_a_new_member(tmp_path, mayor, site)

        checking = secretary.locator(".messages .unreadable")
        expect(checking).to_have_count(1, timeout=20_000)
        expect(checking).to_contain_text("Vérification que son expéditeur est membre de ce canal")
        assert asked  # the page did ask the log, and was answered 503
        expect(secretary.locator(".trust-warning")).to_have_count(0)  # nobody blamed meanwhile

        secretary.unroute(MEMBERSHIP)
        expect(message(secretary, "Le chemin est dégagé")).to_contain_text("Cantonnier", timeout=30_000)
        expect(checking).to_have_count(0)
        expect(secretary.locator(".trust-warning")).to_have_count(0)


def test_a_refusal_is_judged_again_once_the_log_says_otherwise(
    tmp_path: Path, new_context: Callable[..., Any]
) -> None:
    """The server refuses the log for a moment (403: the kept log judges, and has not the new
    member): the message is refused. It is kept, and read a few seconds after the log answers
    again (the channel's retry schedule), without a reload."""
    with group_open(tmp_path, new_context, "Mairie de Plérin") as (mayor, secretary, site, _):
        secretary.route(MEMBERSHIP, answering(403, "forbidden"))
        first_message_of_a_new_member(tmp_path, mayor, site)
        refused = secretary.locator(".messages .unreadable")
        expect(refused).to_contain_text("n'est pas membre de ce canal", timeout=20_000)

        secretary.unroute(MEMBERSHIP)
        bocage("--profile", mayor, "send", site, "Merci")
        expect(message(secretary, "Merci")).to_be_visible(timeout=20_000)
        expect(message(secretary, "Le chemin est dégagé")).to_contain_text("Cantonnier", timeout=20_000)
        expect(refused).to_have_count(0)
