"""Reading and finding, in Chromium over `bocage serve`: web addresses become links (and nothing
else does), "@" suggests the channel's members and the person mentioned sees it, the channel
list shows each channel's last message and its time, the search finds what this device keeps
(accents and case aside) and opens the message in its channel, and the theme follows the
device or the member's choice."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import watch_console
from tests.browser.test_web_app import (
    activate,
    add_to_channel,
    create_channel,
    invite,
    message,
    open_channel,
    send,
)
from tests.e2e.conftest import Server

GROUP = "Chantier école"
LINK = "https://example.org/plans/ecole.pdf?v=2"

# rich-text.js's segments for tricky texts: what becomes a link or a mention, and what does not.
SEGMENTS_JS = """async (cases) => {
  const { segments } = await import('/app/js/rich-text.js');
  const people = [{ memberId: 'm_1', name: 'Maire Dupuis' }, { memberId: 'm_2', name: 'Marc' }];
  return cases.map((text) => segments(text, people).filter((s) => s.type !== 'text'));
}"""


def background_luminance(page: Page) -> float:
    rgb = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    r, g, b = (int(x) for x in re.findall(r"\d+", rgb)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_links_and_mentions_are_recognised_and_nothing_else(
    web_server: Server, new_context: Callable[..., Any]
) -> None:
    page = new_context("reader").pages[0]
    page.goto(f"{web_server.url}/app/")
    found = page.evaluate(
        SEGMENTS_JS,
        [
            "voir https://a.fr/x). fin",
            "javascript:alert(1) et ftp://a.fr et data:text/html,x",
            "<https://b.fr/y>",
            "Merci @Maire Dupuis, et @marc!",
            "mail@Marc et @Marcel",
        ],
    )
    assert found[0] == [{"type": "link", "text": "https://a.fr/x", "href": "https://a.fr/x"}]
    assert found[1] == []
    assert found[2] == [{"type": "link", "text": "https://b.fr/y", "href": "https://b.fr/y"}]
    assert [(s["text"], s["memberId"]) for s in found[3]] == [("@Maire Dupuis", "m_1"), ("@marc", "m_2")]
    assert found[4] == []  # inside a word, or a longer name: nobody


def test_links_mentions_previews_search_and_theme(
    web_server: Server, new_context: Callable[..., Any]
) -> None:
    problems: list[str] = []
    owner = new_context("owner", color_scheme="dark").pages[0]
    agent = new_context("agent").pages[0]
    for page in (owner, agent):
        watch_console(page, problems)
    activate(owner, web_server.owner_url(), "Maire Dupuis")
    activate(agent, invite(owner, "Agent Martin"), "Agent Martin")
    create_channel(owner, GROUP, "group")
    add_to_channel(owner, "Agent Martin")

    send(owner, f"Les plans : {LINK}. Et javascript:alert(1)")
    send(owner, "Réunion à l'École demain")
    open_channel(agent, GROUP)
    link = message(agent, "Les plans").get_by_role("link")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", LINK)
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b.*\bnoreferrer\b"))

    named_poll(owner, agent)
    mention_from_the_agent(agent)
    expect(message(owner, "pour les plans").locator(".mention.me")).to_have_text("@Maire Dupuis")
    expect(message(owner, "pour les plans")).to_contain_text("vous mentionne")
    expect(message(owner, "pour les plans")).to_have_class(re.compile(r"\bmentions-me\b"))
    expect(message(agent, "pour les plans").locator(".mention")).to_have_text("@Maire Dupuis")
    expect(message(agent, "pour les plans")).not_to_have_class(re.compile(r"\bmentions-me\b"))

    previews(owner, agent)
    search(owner, agent)
    theme(owner)
    assert not problems, problems


def named_poll(owner: Page, agent: Page) -> None:
    """A poll created with "Montrer qui a voté quoi" names the voters under each option."""
    owner.get_by_role("button", name="Sondage", exact=True).click()
    owner.get_by_label("Question", exact=True).fill("Date de la visite ?")
    owner.get_by_label("Réponse 1", exact=True).fill("Lundi")
    owner.get_by_label("Réponse 2", exact=True).fill("Mardi")
    owner.get_by_label("Montrer qui a voté quoi").check()
    owner.get_by_role("button", name="Publier le sondage").click()
    poll_agent, poll_owner = message(agent, "Date de la visite"), message(owner, "Date de la visite")
    poll_agent.get_by_label("Mardi").check()
    poll_agent.get_by_role("button", name="Voter").click()
    expect(poll_owner.locator(".poll-option").nth(1).locator(".poll-voters")).to_have_text("Agent Martin")
    expect(poll_owner.locator(".poll-option").nth(0).locator(".poll-voters")).to_have_count(0)
    expect(poll_owner.locator(".poll-meta")).to_contain_text("votes nominatifs")
    expect(poll_agent.locator(".poll-option").nth(1).locator(".poll-voters")).to_have_text("vous")


def mention_from_the_agent(agent: Page) -> None:
    """ "@Mai" lists "@Maire Dupuis"; Enter picks it (it does not send); Enter then sends."""
    box = agent.get_by_label("Votre message")
    box.press_sequentially("Merci @mai")
    options = agent.get_by_role("listbox", name="Mentionner quelqu'un").get_by_role("option")
    expect(options).to_have_text(["@Maire Dupuis"])
    box.press("Enter")
    expect(box).to_have_value("Merci @Maire Dupuis ")
    expect(agent.get_by_role("listbox")).to_be_hidden()
    box.press_sequentially("pour les plans")
    box.press("Enter")
    expect(message(agent, "pour les plans")).to_be_visible()


def previews(owner: Page, agent: Page) -> None:
    """The channel list: the last message and who wrote it, under the channel's name; a live
    message replaces it (the list keeps previews until the device's cache changes)."""
    owner.get_by_role("link", name="Messages").click()
    channel = owner.get_by_role("link", name=re.compile(GROUP))
    expect(channel).to_have_count(1)  # the preview describes the link; it is not in its name
    expect(channel.locator(".channel-preview")).to_have_text(
        "Agent Martin : Merci @Maire Dupuis pour les plans"
    )
    expect(channel.locator("time.channel-when")).to_have_text(re.compile(r"^\d{2}:\d{2}$"))
    send(agent, "Le calendrier suit")
    expect(channel.locator(".channel-preview")).to_have_text("Agent Martin : Le calendrier suit")


def search(owner: Page, agent: Page) -> None:
    """Found on this device, accents and case aside, including what arrived while searching;
    the result opens the message."""
    box = owner.get_by_role("searchbox", name="Rechercher dans les messages")
    box.fill("ECOLE reunion")
    hits = owner.locator(".search-results a")
    expect(hits).to_have_count(1)
    expect(hits).to_contain_text("Réunion à l'École demain")
    expect(owner.get_by_role("status").filter(has_text="trouvé")).to_have_text(
        "1 message trouvé sur cet appareil"
    )
    box.fill("plans")
    expect(hits).to_have_count(2)  # newest first
    expect(hits.first).to_contain_text("Merci @Maire Dupuis pour les plans")
    send(agent, "Calendrier du chantier de l'école")  # arrives while the owner searches
    box.fill("calendrier chantier")
    expect(hits).to_have_count(1)
    expect(hits.first).to_contain_text("Calendrier du chantier")
    box.fill("introuvable")
    expect(owner.locator(".search-results")).to_contain_text("Aucun message ne contient")
    box.fill("école")  # the live message, the message, and the link's "ecole.pdf": newest first
    expect(hits).to_have_count(3)
    hits.nth(1).click()
    expect(owner.get_by_role("heading", level=1, name=re.compile(GROUP))).to_be_visible()
    found = owner.locator(".messages .msg.found")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("Réunion à l'École demain")
    box.press("Escape")
    expect(owner.get_by_role("link", name=re.compile(GROUP))).to_be_visible()  # the list is back


def theme(owner: Page) -> None:
    """Dark because the device is; "Clair" sticks across a reload; "Comme l'appareil" returns."""
    assert owner.evaluate("document.documentElement.dataset.theme") == "dark"
    assert background_luminance(owner) < 0.2
    owner.get_by_role("link", name="Cet appareil").click()
    owner.get_by_label("Thème").select_option(label="Clair")
    expect(owner.locator("html")).to_have_attribute("data-theme", "light")
    assert background_luminance(owner) > 0.8
    owner.reload()
    expect(owner.get_by_label("Thème")).to_have_value("light")
    expect(owner.locator("html")).to_have_attribute("data-theme", "light")
    owner.get_by_label("Thème").select_option(label="Comme l'appareil")
    expect(owner.locator("html")).to_have_attribute("data-theme", "dark")
