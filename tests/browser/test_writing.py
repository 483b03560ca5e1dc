"""Direct conversations and writing that never loses anything, in Chromium over `bocage serve`:
"Message direct" from the channel list, named after the other person on both sides; an edit
and a deletion seen on the other device ("modifié", "Message supprimé"); a draft kept across
navigation; a message written offline waits "en attente" and is stored exactly once when the
network returns."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import watch_console
from tests.browser.test_web_app import activate, invite, message, open_channel, send
from tests.e2e.conftest import Server


def stored_messages(server: Server, channel_id: str) -> list[dict[str, Any]]:
    return [
        item
        for item in server.stored_items()
        if item.get("channel_id") == channel_id and "sender_member" in item and "stored_at" in item
    ]


def test_direct_conversation_edit_delete_draft_and_outbox(
    web_server: Server, new_context: Callable[..., Any]
) -> None:
    problems: list[str] = []
    owner_context, agent_context = new_context("owner"), new_context("agent")
    owner, agent = owner_context.pages[0], agent_context.pages[0]
    for page in (owner, agent):
        watch_console(page, problems)
    activate(owner, web_server.owner_url(), "Maire Dupuis")
    activate(agent, invite(owner, "Agent Martin"), "Agent Martin")
    owner.get_by_role("link", name="Messages").click()

    # Direct: the agent opens it from the channel list; each side sees the other's name.
    agent.get_by_role("button", name="Message direct").click()
    agent.locator(".direct-list li", has_text="Maire Dupuis").get_by_role(
        "button", name="Message direct"
    ).click()
    expect(agent.get_by_role("heading", level=1, name=re.compile("Maire Dupuis"))).to_be_visible()
    expect(agent.locator(".channel-meta")).to_contain_text("Conversation directe")
    channel_id = agent.url.rsplit("/", 1)[1]
    expect(owner.get_by_role("link", name=re.compile("Agent Martin"))).to_be_visible()  # pushed
    open_channel(owner, "Agent Martin")
    expect(owner.get_by_role("button", name="Message direct")).to_be_visible()
    owner.get_by_role("button", name="Membres").click()
    expect(owner.get_by_label("Personne")).to_have_count(0)  # nobody can be added
    owner.get_by_role("button", name="Membres").click()

    edit_and_delete(owner, agent)
    draft_and_outbox(web_server, agent_context, owner, agent, channel_id)
    assert not problems, problems


def edit_and_delete(owner: Page, agent: Page) -> None:
    """An edit and a deletion, seen on the other device."""
    send(agent, "Réunion à 18h")
    expect(message(owner, "Réunion à 18h")).to_be_visible()
    message(agent, "Réunion à 18h").get_by_role("button", name="Modifier").click()
    agent.get_by_label("Modifier le message").fill("Réunion à 19h")
    agent.get_by_role("button", name="Enregistrer").click()
    expect(message(owner, "Réunion à 19h")).to_contain_text("modifié")
    expect(message(owner, "Réunion à 18h")).to_have_count(0)
    expect(message(owner, "Réunion à 19h").get_by_role("button", name="Modifier")).to_have_count(
        0
    )  # not hers
    send(agent, "Code du portail : 2231")
    expect(message(owner, "Code du portail")).to_be_visible()
    message(agent, "Code du portail").get_by_role("button", name="Supprimer pour tous").click()
    agent.get_by_role("button", name="Oui, supprimer").click()
    expect(message(owner, "Code du portail")).to_have_count(0)
    expect(owner.locator(".messages .msg .deleted")).to_have_text(["Message supprimé"])


def draft_and_outbox(server: Server, agent_context: Any, owner: Page, agent: Page, channel_id: str) -> None:
    """A draft survives leaving the channel; a message written offline waits "en attente", kept
    across navigation, and is stored once when the network returns."""
    agent.get_by_label("Votre message").fill("Un brouillon pas fini")
    agent.get_by_role("link", name="Messages").click()
    open_channel(agent, "Maire Dupuis")
    expect(agent.get_by_label("Votre message")).to_have_value("Un brouillon pas fini")
    agent.get_by_label("Votre message").fill("")

    before = len(stored_messages(server, channel_id))
    agent_context.set_offline(True)
    offline_text = "Écrit dans le tunnel"
    agent.get_by_label("Votre message").fill(offline_text)
    agent.get_by_role("button", name="Envoyer").click()
    pending = agent.locator(".messages .msg.pending", has_text=offline_text)
    expect(pending).to_contain_text("en attente")
    agent.get_by_role("link", name="Messages").click()
    open_channel(agent, "Maire Dupuis")
    expect(pending).to_be_visible()
    assert len(stored_messages(server, channel_id)) == before
    agent_context.set_offline(False)
    expect(message(owner, offline_text)).to_be_visible(timeout=30_000)
    expect(pending).to_have_count(0)
    expect(message(agent, offline_text)).to_have_count(1)
    time.sleep(2)  # a second flush (reconnect and the online event both start one) would land by now
    stored = stored_messages(server, channel_id)
    assert len(stored) == before + 1, stored
    expect(message(owner, offline_text)).to_have_count(1)
    # "Vu par N / M" from the read cursors: the owner leaving the channel records how far she read.
    owner.get_by_role("link", name="Messages").click()
    owner.wait_for_timeout(1500)
    agent.get_by_role("link", name="Messages").click()
    open_channel(agent, "Maire Dupuis")
    expect(message(agent, offline_text).locator(".seen-by")).to_contain_text("vu par 1 / 1")
