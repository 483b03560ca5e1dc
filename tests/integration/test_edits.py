"""Editing a sent message (docs/protocol.md, section 7: the ``edit`` kind), on both stores: the
author's edit replaces the text on the other device; nobody else may edit, and a client ignores
an edit by anyone else even when the server lets it through."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.api import ApiError
from tests.support import People


@pytest.fixture
def pair(people: People) -> tuple[Any, Any, str]:
    alice, bob = people.join("alice"), people.join("bob")
    cid = alice.create_channel("group", "Conseil")["channel_id"]
    alice.add_member(cid, people.info["bob"]["member_id"])
    return alice, bob, cid


def test_the_author_edits_and_every_device_shows_the_new_text(pair: tuple[Any, Any, str]) -> None:
    alice, bob, cid = pair
    sent = alice.send_text(cid, "Réunion à 18h", reply_to=None)["message_id"]
    alice.edit(cid, sent, "Réunion à 18h30")
    alice.edit(cid, sent, "Réunion à 19h")  # the latest edit wins
    for reader in (bob, alice):
        shown = {m["message_id"]: m for m in reader.read(cid)["messages"]}
        assert (shown[sent]["text"], shown[sent]["edited"]) == ("Réunion à 19h", True)
    history = bob.history(cid)
    assert [m["kind"] for m in history] == ["message", "edit", "edit"]
    assert history[0]["text"] == "Réunion à 19h"


def test_only_the_author_edits_their_own_text(people: People, pair: tuple[Any, Any, str]) -> None:
    alice, bob, cid = pair
    sent = alice.send_text(cid, "Texte d'Alice")["message_id"]
    alice.add_member(cid, people.info["owner"]["member_id"], "author")
    for editor in (bob, people.owner):  # a member, and an author who is the organisation's owner
        with pytest.raises(ApiError) as refused:
            editor.edit(cid, sent, "Texte changé")
        assert refused.value.status == 403 and "only its sender" in refused.value.message
    reaction = bob.react(cid, sent, "👍")["message_id"]
    with pytest.raises(ApiError) as not_text:
        bob.edit(cid, reaction, "?")
    assert not_text.value.status == 400
    with pytest.raises(ApiError) as unknown:
        alice.edit(cid, "nonexistent-id", "?")
    assert unknown.value.status == 404
    alice.delete(cid, sent)
    with pytest.raises(ApiError) as deleted:
        alice.edit(cid, sent, "trop tard")
    assert deleted.value.status == 409
    shown = {m["message_id"]: m for m in bob.read(cid)["messages"]}
    assert shown[sent]["deleted"] is True and "text" not in shown[sent]


def test_a_client_ignores_an_edit_the_server_let_through(
    people: People, pair: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that skips its check stores the owner's edit of Alice's message: Bob's client
    keeps Alice's words and flags the edit."""
    from chalicelib.services import messaging

    alice, bob, cid = pair
    sent = alice.send_text(cid, "Les mots d'Alice")["message_id"]
    people.owner.add_member(cid, people.info["owner"]["member_id"])  # an admin joins, signed
    monkeypatch.setattr(messaging, "_require_editable", lambda who, target: None)
    forged = people.owner.edit(cid, sent, "Des mots qu'Alice n'a pas dits")["message_id"]
    shown = {m["message_id"]: m for m in bob.read(cid)["messages"]}
    assert shown[sent]["text"] == "Les mots d'Alice" and "edited" not in shown[sent]
    assert shown[forged]["ignored"] is True and "ignored" in shown[forged]["error"]
