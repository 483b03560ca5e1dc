"""A partner's member added from the web app with their contact card (docs/protocol.md, 22.6), in
Debian's Chromium over `bocage serve`: the town hall (A) and the firm (B) are partners (CLI); B's
web user opens "Ma carte pour les partenaires" and reads the link; A's web admin pastes it in a
group's members panel; the browser checks it against the server's listing of that one member,
adds them, and both exchange a message. A card whose fingerprint is not the member's key is
refused with the message, and nobody is added. Then the card's link opened in A's browser offers
"add to which group?"."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from chalicelib.domain.statements import fingerprint, public_key_of
from tests.browser.conftest import shoot, watch_console
from tests.browser.test_web_app import activate, arrives_readable, create_channel, open_channel, send
from tests.e2e.conftest import bocage
from tests.e2e.test_partner_cli import become_partners, town_and_firm

TOWN, FIRM = "Mairie de Plouha", "Cabinet Ardoise"  # as town_and_firm names them
MISMATCH = "La clé de cette carte ne correspond pas à ce que le serveur présente"


# The partners' members' identity keys the browser keeps (IndexedDB 'kv', record 'trust',
# `partner_seen`: org -> member -> key); `[org, id, key]` sets one.
SEEN_JS = """async (pin) => {
  const db = await new Promise((ok, ko) => {
    const r = indexedDB.open('bocage');
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
  const wait = (r) => new Promise((ok, ko) => { r.onsuccess = () => ok(r.result); r.onerror = ko; });
  const trust = await wait(db.transaction('kv').objectStore('kv').get('trust'));
  if (pin) {
    trust.partner_seen[pin[0]] = { ...trust.partner_seen[pin[0]], [pin[1]]: pin[2] };
    await wait(db.transaction('kv', 'readwrite').objectStore('kv').put(trust, 'trust'));
  }
  db.close();
  return trust.partner_seen;
}"""


def my_card(page: Page) -> str:
    page.get_by_role("link", name="Cet appareil").click()
    page.get_by_role("link", name="Ma carte pour les partenaires").click()
    expect(page.get_by_role("heading", level=1, name="Ma carte pour les partenaires")).to_be_visible()
    expect(page.locator(".qr-box svg.qr")).to_be_visible()
    url = page.locator("#card-url").input_value(timeout=30_000)
    assert "#/card?" in url
    return url


def paste_card(page: Page, url: str) -> None:
    page.get_by_label("Lien de sa carte").fill(url)
    page.get_by_role("button", name="Vérifier et ajouter").click()


def opened_card_offers_a_group(secretary: Page, card: str, forged: str) -> None:
    """The card's link opened in A's browser: checked, then "add to which group?"; a forged one
    is refused there too, with no group offered."""
    create_channel(secretary, "Voirie", "group")
    secretary.goto(card)
    verified = secretary.get_by_text(f"Carte vérifiée : Dessinatrice ({FIRM}).")
    expect(verified).to_be_visible(timeout=30_000)
    secretary.get_by_label("Dans quel groupe ?").select_option(label="Voirie")
    secretary.get_by_role("button", name="Valider").click()
    expect(secretary.get_by_role("heading", level=1, name=re.compile("Voirie"))).to_be_visible()
    secretary.goto(forged)
    expect(secretary.get_by_text(MISMATCH)).to_be_visible(timeout=30_000)
    expect(secretary.get_by_label("Dans quel groupe ?")).to_have_count(0)


def test_a_web_admin_adds_a_partners_web_member_with_their_card(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_and_firm(tmp_path) as (_town, firm, mayor, architect):
        become_partners(mayor, architect)

        problems: list[str] = []
        secretary = new_context("secretary").pages[0]
        watch_console(secretary, problems)
        invited = bocage("--profile", mayor, "invite", "--name", "Secrétaire", "--role", "admin")
        activate(secretary, invited["activation_url"], "Secrétaire")
        drafter = new_context("drafter").pages[0]
        watch_console(drafter, problems)
        invited = bocage("--profile", architect, "invite", "--name", "Dessinatrice")
        activate(drafter, invited["activation_url"], "Dessinatrice")

        card = my_card(drafter)
        assert f"member={invited['member_id']}" in card and f"org={firm['org_id']}" in card
        shoot(drafter, artifacts, "partner-card-01-my-card")
        fp = re.search(r"fp=([^&]+)", card)
        assert fp is not None
        forged = card.replace(fp.group(1), bocage("--profile", architect, "partner", "card")["fingerprint"])

        create_channel(secretary, "Chantier", "group")
        secretary.get_by_role("button", name="Membres").click()
        paste_card(secretary, forged)
        expect(secretary.locator(".partner-card-form .form-status")).to_contain_text(MISMATCH, timeout=30_000)
        expect(secretary.locator(".member-list")).not_to_contain_text("Dessinatrice")
        site = re.search(r"#/c/([^/?]+)", secretary.url)
        assert site is not None
        assert (
            invited["member_id"] not in bocage("--profile", mayor, "channel", "log", site.group(1))["names"]
        )
        secretary.locator(".partner-card-form .form-status").scroll_into_view_if_needed()
        shoot(secretary, artifacts, "partner-card-02-wrong-key-refused")

        # The secretary's browser kept another key for her (as if the firm had certified her anew
        # since): the card, whose fingerprint the listed key matches, pins that key (22.6).
        other = public_key_of(bytes([0x42]) * 32)
        secretary.evaluate(SEEN_JS, [firm["org_id"], invited["member_id"], other])
        secretary.reload()
        secretary.get_by_role("button", name="Membres").click()
        paste_card(secretary, card)
        expect(secretary.locator(".member-list")).to_contain_text(f"Dessinatrice ({FIRM})", timeout=30_000)
        pinned = secretary.evaluate(SEEN_JS, None)[firm["org_id"]][invited["member_id"]]
        assert pinned != other and fingerprint(pinned) == fp.group(1)
        secretary.get_by_role("button", name="Membres").click()
        send(secretary, "Bienvenue sur le chantier")
        drafter.goto(card.split("#")[0] + "#/")
        open_channel(drafter, "Chantier")
        expect(arrives_readable(drafter, "Bienvenue sur le chantier")).to_contain_text(f"Secrétaire ({TOWN})")
        send(drafter, "Merci, j'apporte les plans")
        answer = arrives_readable(secretary, "Merci, j'apporte les plans")
        expect(answer).to_contain_text(f"Dessinatrice ({FIRM})")
        expect(secretary.locator(".trust-warning")).to_have_count(0)
        expect(drafter.locator(".trust-warning")).to_have_count(0)
        shoot(secretary, artifacts, "partner-card-03-added-and-talking")

        opened_card_offers_a_group(secretary, card, forged)
        assert not problems, problems
