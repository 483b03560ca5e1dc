"""Questions to the town hall (docs/protocol.md, section 20), through the real app on SQLite
and moto's DynamoDB, with the real Python client on both sides: a follower's question sealed
for the tribe's managers only, answered privately or published in the tribe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bocage.client.api import ApiError
from bocage.client.messenger import Messenger
from bocage.client.profile import DeviceKeys
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.ids import new_id
from chalicelib.domain.organisation import Device
from chalicelib.domain.questions import QUESTIONS_PER_HOUR
from chalicelib.domain.statements import public_key_of, sign_statement
from chalicelib.services import questions as questions_service
from tests.integration.test_followers import follow, public_tribe
from tests.integration.test_malicious_server import plant_device
from tests.support import People, SignedApi, messenger_for


def town(people: People, api: SignedApi, tmp_path: Path) -> tuple[str, Messenger, Messenger, Messenger]:
    """A public tribe with an author (Ana), a plain member (Bob) and a follower (Léa)."""
    cid, url = public_tribe(people)
    ana, bob = people.join("ana"), people.join("bob")
    people.owner.add_member(cid, people.info["ana"]["member_id"], "author")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    return cid, ana, bob, follow(api, url, tmp_path / "lea", "Léa")


def stored(container: Any, cid: str, question_id: str) -> Any:
    return container.questions._questions.get(cid, question_id)


def test_a_followers_question_reaches_the_managers_only_and_is_answered_privately_or_published(
    people: People, api: SignedApi, tmp_path: Path, container: Any
) -> None:
    cid, ana, bob, lea = town(people, api, tmp_path)
    asked = lea.ask(cid, "Quand passe la collecte des encombrants ?")
    assert asked["text"] == "Quand passe la collecte des encombrants ?" and asked["warnings"] == []
    sealed_to = set(stored(container, cid, asked["question_id"]).sealed)
    owner_device, ana_device = people.keys["owner"].device_id, people.keys["ana"].device_id
    assert sealed_to == {owner_device, ana_device, lea.device_id}  # managers and her own copy: not Bob
    assert "collecte" not in str(stored(container, cid, asked["question_id"]).model_dump())  # sealed

    for manager in (people.owner, ana):
        inbox = manager.questions(cid)
        assert [(q["text"], q["asker_name"], q["answered"]) for q in inbox] == [
            ("Quand passe la collecte des encombrants ?", "Léa", False)
        ]
    with pytest.raises(ApiError) as refused:
        bob.questions(cid)
    assert refused.value.status == 403  # a plain member of the tribe manages nothing

    people.owner.answer(cid, asked["question_id"], "Le premier mardi du mois.")
    mine = lea.questions(cid)
    assert (
        mine[0]["answer"]["text"] == "Le premier mardi du mois." and mine[0]["answer"]["by_name"] == "Maire"
    )
    assert mine[0]["published_message_id"] is None

    second = lea.ask(cid, "Et les déchets verts ?")
    ana.answer(cid, second["question_id"], "À la déchèterie, le samedi.", publish=True)
    answered = {q["question_id"]: q for q in lea.questions(cid)}[second["question_id"]]
    published = answered["published_message_id"]
    assert answered["answer"]["text"] == "À la déchèterie, le samedi." and published
    shown = {m["message_id"]: m for m in lea.read(cid)["messages"]}
    assert shown[published]["text"] == "« Et les déchets verts ? »\nÀ la déchèterie, le samedi."
    assert shown[published]["verified"] and lea.trust.take_warnings() == []


def test_questions_are_rate_limited_per_follower_device_and_checked(
    people: People, api: SignedApi, tmp_path: Path, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid, _, bob, lea = town(people, api, tmp_path)
    max_ = follow(api, public_tribe_url(people, cid), tmp_path / "max", "Max")
    for n in range(QUESTIONS_PER_HOUR):
        lea.ask(cid, f"Question {n}")
    with pytest.raises(ApiError) as limited:
        lea.ask(cid, "Encore une")
    assert limited.value.status == 429 and "an hour" in limited.value.message
    assert len(max_.questions(cid)) == 0  # a follower lists their own questions only
    max_.ask(cid, "La mienne")  # the limit is per device
    assert [q["text"] for q in max_.questions(cid)] == ["La mienne"]
    api.clock.advance(3600)
    lea.ask(cid, "Une heure après")

    with pytest.raises(ValueError):
        bob.ask(cid, "Moi aussi")  # a member's client refuses; the server too:
    owner = people.keys["owner"]
    body = {"question_id": new_id("q"), "sealed": {owner.device_id: "x"}}
    reply = api.call("POST", f"/channels/{cid}/questions", body, signer=people.keys["bob"])
    assert reply.status == 403 and "follower" in reply.body["message"]
    keys = lea.keys
    bad_id = api.call(
        "POST", f"/channels/{cid}/questions", {**body, "question_id": "q_" + "!" * 16}, signer=keys
    )
    assert bad_id.status == 400
    to_bob = {**body, "sealed": {people.keys["bob"].device_id: "x"}}
    refused = api.call("POST", f"/channels/{cid}/questions", to_bob, signer=keys)
    assert refused.status == 400 and "managers" in refused.body["message"]
    assert api.call("POST", f"/channels/{cid}/questions", {**body, "sealed": {}}, signer=keys).status == 400
    answer = api.call(
        "PUT", f"/channels/{cid}/questions/{body['question_id']}/answer", {"sealed": "x"}, signer=keys
    )
    assert answer.status == 403 and "follower" in answer.body["message"]  # followers never answer
    # All the copies together are bounded (one stored item), before the hour's count moves.
    monkeypatch.setattr(questions_service, "MAX_SEALED_TOTAL", 15)
    both = {owner.device_id: "x" * 10, max_.keys.device_id: "y" * 10}
    too_big = api.call("POST", f"/channels/{cid}/questions", {**body, "sealed": both}, signer=max_.keys)
    assert too_big.status == 413 and "in all" in too_big.body["message"]
    unknown = api.call(
        "PUT", f"/channels/{cid}/questions/{new_id('q')}/answer", {"sealed": "x"}, signer=owner
    )
    assert unknown.status == 404


def test_followers_joining_again_with_fresh_keys_cannot_flood_the_managers_inbox(
    people: People, api: SignedApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-device limit is bypassed by joining again from the poster with new keys: the
    tribe's own hourly count bounds what its managers receive, whoever asks."""
    monkeypatch.setattr(questions_service, "TRIBE_QUESTIONS_PER_HOUR", 3)
    cid, _, _, lea = town(people, api, tmp_path)
    url = public_tribe_url(people, cid)
    lea.ask(cid, "Première")
    for n in range(2):  # the same person, joining again under new keys each time
        follow(api, url, tmp_path / f"again-{n}", "Léa").ask(cid, f"Encore {n}")
    with pytest.raises(ApiError) as flooded:
        follow(api, url, tmp_path / "again-3", "Léa").ask(cid, "Et encore")
    assert flooded.value.status == 429 and "this tribe's managers" in flooded.value.message
    assert len(people.owner.questions(cid)) == 3  # the refused one was not kept
    api.clock.advance(3600)
    lea.ask(cid, "Une heure après")  # the next hour's count starts again


def public_tribe_url(people: People, cid: str) -> str:
    return str(people.owner.profile.join_links()[cid])


def test_another_organisations_ids_answer_404(
    people: People, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    cid, _, _, lea = town(people, api, tmp_path)
    question = lea.ask(cid, "Bonjour ?")["question_id"]
    other = api.create_org(operator, "Autre mairie")
    other_keys, reply = api.activate(other["activation_code"], "Voisin")
    body = {"question_id": new_id("q"), "sealed": {other_keys.device_id: "x"}}
    assert api.call("POST", f"/channels/{cid}/questions", body, signer=other_keys).status == 404
    assert api.call("GET", f"/channels/{cid}/questions", signer=other_keys).status == 404
    path = f"/channels/{cid}/questions/{question}/answer"
    assert api.call("PUT", path, {"sealed": "x"}, signer=other_keys).status == 404
    voisin = messenger_for(api, other_keys, tmp_path / "voisin", dict(reply.body))
    theirs = voisin.create_channel("tribe", "Chez eux")["channel_id"]
    assert api.call("POST", f"/channels/{theirs}/questions", body, signer=lea.keys).status == 404
    assert api.call("GET", f"/channels/{theirs}/questions", signer=lea.keys).status == 404


def test_a_device_the_server_adds_gets_no_question(
    people: People, api: SignedApi, tmp_path: Path, container: Any
) -> None:
    """The server plants a device under the mayor (its certificate signed by a key of its own),
    and makes Bob an author in its records (not in the signed log): the follower's device seals
    to neither, and says why; the server, which believes itself, would have taken both."""
    cid, _, _, lea = town(people, api, tmp_path)
    org_id, owner_id = people.info["owner"]["org_id"], people.info["owner"]["member_id"]
    ghost, attacker_ik = DeviceKeys.generate(), bytes([0x66]) * 32
    cert = sign_statement(
        {
            "purpose": "bocage/device-cert/v2",
            "org_id": org_id,
            "member_id": owner_id,
            "device_id": ghost.device_id,
            "sign_public_key": ghost.sign_public_key,
            "box_public_key": ghost.box_public_key,
            "identity_key": public_key_of(attacker_ik),
            "ticket_key": None,
            "issued_at": 1,
        },
        attacker_ik,
    )
    planted = Device(
        device_id=ghost.device_id,
        org_id=org_id,
        member_id=owner_id,
        name="ghost",
        sign_public_key=ghost.sign_public_key,
        box_public_key=ghost.box_public_key,
        created_at=1,
        device_cert=cert,
    )
    plant_device(container, cid, planted)
    bob_id = people.info["bob"]["member_id"]
    record = ChannelMember(
        channel_id=cid, member_id=bob_id, role=ChannelRole.AUTHOR, added_at=1, added_by=owner_id
    )
    ChannelRecords(container.store).save_membership(record)

    asked = lea.ask(cid, "Qui lit ceci ?")
    sealed_to = set(stored(container, cid, asked["question_id"]).sealed)
    assert ghost.device_id not in sealed_to and people.keys["bob"].device_id not in sealed_to
    assert people.keys["owner"].device_id in sealed_to
    # The server itself takes a box for either (it believes its own records): only the client stops it.
    for device_id in (ghost.device_id, people.keys["bob"].device_id):
        body = {"question_id": new_id("q"), "sealed": {device_id: "x"}}
        assert api.call("POST", f"/channels/{cid}/questions", body, signer=lea.keys).status == 201


def test_throwaway_joiners_cannot_starve_followers_who_joined_earlier(
    people: People, api: SignedApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Devices that joined in the last day share part of the tribe's hourly questions: a flood
    of fresh joins from the poster spends that part, never what earlier followers may ask."""
    monkeypatch.setattr(questions_service, "NEW_FOLLOWER_QUESTIONS_PER_HOUR", 2)
    cid, _, _, lea = town(people, api, tmp_path)
    url = public_tribe_url(people, cid)
    api.clock.advance(86400 + 1)  # Léa joined yesterday
    for n in range(2):
        follow(api, url, tmp_path / f"new-{n}", "Nouveau").ask(cid, f"Question {n}")
    with pytest.raises(ApiError) as limited:
        follow(api, url, tmp_path / "new-2", "Nouveau").ask(cid, "Encore une")
    assert limited.value.status == 429 and "joined in the last day" in limited.value.message
    lea.ask(cid, "Et moi ?")  # not spent by the newcomers
    assert len(people.owner.questions(cid)) == 3
