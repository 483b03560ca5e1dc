"""Polls, reactions, replies and delete-for-everyone: sealed on devices, relayed by the server."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bocage.client.api import ApiError
from tests.support import People, SignedApi, scan_all, sealed_envelope


def _tribe_with(people: People, names: list[str]) -> tuple[str, dict[str, Any]]:
    cid = people.owner.create_channel("tribe", "Consultation")["channel_id"]
    citizens = {}
    for name in names:
        citizens[name] = people.join(name)
        people.owner.add_member(cid, people.info[name]["member_id"])
    return cid, citizens


def test_tribe_members_vote_and_react_but_do_not_post(people: People) -> None:
    cid, citizens = _tribe_with(people, ["ana"])
    poll = people.owner.create_poll(cid, "Nouvelle aire de jeux ?", ["Oui", "Non"])
    ana = citizens["ana"]
    ana.vote(cid, poll["poll_id"], [0])
    ana.react(cid, poll["poll_id"], "👍")
    with pytest.raises(ApiError) as refused:
        ana.create_poll(cid, "Mine?", ["a", "b"])
    assert refused.value.status == 403
    with pytest.raises(ApiError):
        ana.send_text(cid, "not allowed")
    results = people.owner.poll_results(cid, poll["poll_id"])
    assert results["counts"] == [1, 0] and results["voters"] == 1 and results["closed"] is False
    reactions = [m["content"] for m in people.owner.history(cid) if m["kind"] == "reaction"]
    assert reactions == [{"type": "reaction", "target": poll["poll_id"], "emoji": "👍", "remove": False}]


def test_late_forged_and_non_member_votes_do_not_count(people: People, api: SignedApi) -> None:
    cid, citizens = _tribe_with(people, ["ana", "bea", "cid", "dan"])
    poll = people.owner.create_poll(cid, "Horaires de la mairie ?", ["Matin", "Après-midi"])["poll_id"]
    citizens["ana"].vote(cid, poll, [0])
    citizens["bea"].vote(cid, poll, [1])
    # A forged vote: bea's envelope tampered after signing (the server cannot tell; clients can).
    bea = citizens["bea"]
    forged = sealed_envelope(bea, cid, {"type": "vote", "poll_id": poll, "choices": [0]}, kind="vote")
    forged["sent_at"] = 2
    assert api.call("POST", f"/channels/{cid}/messages", forged, signer=people.keys["bea"]).status == 201
    # A member who votes then leaves: no longer a member, the vote drops out.
    citizens["dan"].vote(cid, poll, [1])
    people.owner.remove_member(cid, people.info["dan"]["member_id"])
    # An outsider cannot even send a vote.
    outsider = people.join("outsider")
    with pytest.raises(ApiError) as refused:
        outsider.vote(cid, poll, [0])
    assert refused.value.status == 403
    people.owner.close_poll(cid, poll)
    citizens["cid"].vote(cid, poll, [0])  # after the close: stored, but late
    results = people.owner.poll_results(cid, poll)
    assert results["counts"] == [1, 1] and results["voter_ids"] == sorted(
        [people.info["ana"]["member_id"], people.info["bea"]["member_id"]]
    )
    assert results["closed"] is True


def test_only_the_author_or_a_manager_closes_a_poll(people: People) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    bob = people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    poll = people.owner.create_poll(cid, "Pizza ?", ["Oui", "Non"])["poll_id"]
    with pytest.raises(ApiError) as refused:
        bob.close_poll(cid, poll)
    assert refused.value.status == 403
    text = bob.send_text(cid, "pas un sondage")["message_id"]
    with pytest.raises(ApiError) as not_poll:
        people.owner.close_poll(cid, text)
    assert not_poll.value.status == 400


def test_closing_time_bounds_the_votes(people: People, api: SignedApi) -> None:
    cid, citizens = _tribe_with(people, ["ana", "bea"])
    poll = people.owner.create_poll(cid, "Q ?", ["A", "B"], closes_at=api.clock.now() + 3600)["poll_id"]
    citizens["ana"].vote(cid, poll, [1])
    api.clock.advance(3601)
    citizens["bea"].vote(cid, poll, [0])
    results = people.owner.poll_results(cid, poll)
    assert results["counts"] == [0, 1] and results["closed"] is True


def test_invalid_choices_are_ignored(people: People) -> None:
    cid, citizens = _tribe_with(people, ["ana", "bea", "cid"])
    poll = people.owner.create_poll(cid, "Une seule réponse", ["A", "B", "C"])["poll_id"]
    citizens["ana"].vote(cid, poll, [0, 1])  # two choices in a single-choice poll
    citizens["bea"].vote(cid, poll, [7])  # no such option
    citizens["cid"].vote(cid, poll, [2])
    assert people.owner.poll_results(cid, poll)["counts"] == [0, 0, 1]


def test_replies_and_reactions_round_trip(people: People) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    bob = people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    question = people.owner.send_text(cid, "Qui vient jeudi ?")["message_id"]
    bob.send_text(cid, "Moi", reply_to=question)
    bob.react(cid, question, "🎉")
    bob.react(cid, question, "🎉", remove=True)
    history = people.owner.history(cid)
    assert [m.get("reply_to") for m in history if m["kind"] == "message"] == [None, question]
    assert [m["content"]["remove"] for m in history if m["kind"] == "reaction"] == [False, True]


def test_delete_for_everyone_removes_the_ciphertext(people: People, container: Any) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    bob = people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    oops = bob.send_text(cid, "message envoyé par erreur")["message_id"]
    kept = people.owner.send_text(cid, "reste")["message_id"]
    with pytest.raises(ApiError) as refused:  # a plain member cannot delete someone else's message
        bob.delete(cid, kept)
    assert refused.value.status == 403
    bob.delete(cid, oops)
    shown = {m["message_id"]: m for m in people.owner.history(cid)}
    assert shown[oops]["deleted"] is True and "text" not in shown[oops]
    assert shown[kept]["text"] == "reste"
    stored = next(
        r for r in scan_all(container.store) if r.get("message_id") == oops and r["sk"].startswith("MSG#")
    )
    assert "ciphertext" not in stored and "nonce" not in stored and stored["deleted"] is True
    people.owner.delete(cid, kept)  # a manager (the group's author) may delete anyone's


def test_envelope_targets_are_checked(people: People, api: SignedApi) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    with pytest.raises(ApiError) as missing:
        people.owner.delete(cid, "no-such-message-id")
    assert missing.value.status == 404
    untargeted = sealed_envelope(people.owner, cid, {"type": "text", "text": "x"}, kind="message")
    untargeted["kind"] = "delete"
    reply = api.call("POST", f"/channels/{cid}/messages", untargeted, signer=people.keys["owner"])
    assert reply.status == 400 and "target" in reply.body["message"]


def test_poll_content_is_validated_on_the_device(people: People) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    for options in (["only one"], [str(i) for i in range(21)], ["same", "same"]):
        with pytest.raises(ValueError):
            people.owner.create_poll(cid, "Q", options)


def test_twenty_members_vote_and_change_their_minds(people: People) -> None:
    # Twenty, not fifty: the same tally under changed minds, and each vote's sealed keys grow with
    # the square of the tribe (fifty took a quarter of CI on the DynamoDB-API store).
    names = [f"c{i:02d}" for i in range(20)]
    cid, citizens = _tribe_with(people, names)
    poll = people.owner.create_poll(
        cid, "Quels jours pour le marché ?", ["Lundi", "Mercredi", "Samedi"], multiple=True
    )["poll_id"]
    rng = random.Random(2026)
    expected: dict[str, list[int]] = {}
    for name in names:
        first = sorted(rng.sample(range(3), rng.randint(1, 3)))
        citizens[name].vote(cid, poll, first)
        expected[name] = first
    for name in rng.sample(names, 8):  # eight change their minds
        second = sorted(rng.sample(range(3), rng.randint(1, 3)))
        citizens[name].vote(cid, poll, second)
        expected[name] = second
    counts = [sum(1 for c in expected.values() if i in c) for i in range(3)]
    results = people.owner.poll_results(cid, poll)
    assert results["counts"] == counts and results["voters"] == 20
    assert citizens["c07"].poll_results(cid, poll)["counts"] == counts  # any member tallies the same


def test_a_closed_polls_result_stays_when_a_voter_leaves_afterwards(people: People, api: SignedApi) -> None:
    """Dan votes, the poll closes, a minute later Dan is removed: the closed poll still counts him
    (he was in when it closed). Ana is removed while another poll is open: hers drops out of it."""
    cid, citizens = _tribe_with(people, ["ana", "dan"])
    closed = people.owner.create_poll(cid, "Fête du village ?", ["Juin", "Juillet"])["poll_id"]
    still_open = people.owner.create_poll(cid, "Marché le dimanche ?", ["Oui", "Non"])["poll_id"]
    citizens["dan"].vote(cid, closed, [1])
    citizens["ana"].vote(cid, still_open, [0])
    people.owner.close_poll(cid, closed)
    api.clock.advance(60)
    people.owner.remove_member(cid, people.info["dan"]["member_id"])
    people.owner.remove_member(cid, people.info["ana"]["member_id"])

    kept = people.owner.poll_results(cid, closed)
    assert kept["closed"] is True
    assert kept["voter_ids"] == [people.info["dan"]["member_id"]] and kept["counts"] == [0, 1]
    dropped = people.owner.poll_results(cid, still_open)
    assert dropped["closed"] is False and dropped["voters"] == 0
