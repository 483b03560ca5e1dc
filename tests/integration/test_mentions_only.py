""" "@mention me only" (docs/protocol.md, section 17) through the app, on both stores, with the
push-service stand-in on loopback: a member's signed choice, the sender's ``notify`` on both send
paths, the push filter inline and through the queue, the route's authorisation, and what a
malicious server gains (nothing) by forging a choice or dropping ``notify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from nacl.signing import SigningKey

from bocage.client import issuing
from bocage.client.api import ApiError
from bocage.client.messenger import Messenger
from bocage.client.profile import DeviceKeys, OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records.mention_choices import MentionChoiceRecords
from chalicelib.domain.mentions_only import MAX_NOTIFY, MentionChoice
from chalicelib.domain.statements import NOTIFY
from chalicelib.services.notifications import COALESCE
from tests.integration import test_web_push as web_push
from tests.integration.test_followers import follow, public_tribe
from tests.integration.test_web_push import Subscribed, fan_out_through_a_queue, opened, register
from tests.integration.test_websocket_handlers import sqs_event
from tests.push_service import PushDevice
from tests.support import People, SignedApi, scan_all, ws_event

# The Web Push tests' fixtures: their settings (VAPID key, the stand-in allowed), their group of the
# owner and alice, and alice's device subscribed with no WebSocket open.
app_settings, group, alice = web_push.app_settings, web_push.group, web_push.alice


def choice(keys: DeviceKeys, info: dict[str, Any], cid: str, mentions_only: bool, now: int) -> dict[str, Any]:
    """A member's statement, signed by their device, as the SDK makes it."""
    return issuing.notify_choice(
        keys.signing,
        keys.device_id,
        org_id=info["org_id"],
        channel_id=cid,
        member_id=info["member_id"],
        mentions_only=mentions_only,
        now=now,
    )


def alice_id(s: Subscribed) -> str:
    return str(s.people.info["alice"]["member_id"])


def quiet_alice(s: Subscribed, group: tuple[str, Messenger]) -> Messenger:
    """Alice chooses "mentions only" in the group through her SDK; returns her messenger."""
    _, messenger = group
    kept = messenger.set_mentions_only(s.cid, True)
    assert kept["mentions_only"] is True and kept["member_id"] == alice_id(s)
    return messenger


def test_a_mentions_only_member_is_woken_only_when_mentioned(
    alice: Subscribed, group: tuple[str, Messenger]
) -> None:
    messenger = quiet_alice(alice, group)
    owner = alice.people.owner
    owner.send_text(alice.cid, "Réunion jeudi")
    assert alice.service.received == []  # stored, but alice is not woken
    owner.send_text(alice.cid, "@alice tu viens ?", mentions=[alice_id(alice)])
    [received] = alice.service.wait_for(1)
    assert opened(received, alice.device, f"https://localhost:{alice.service.port}") == {
        "channel_id": alice.cid
    }
    texts = [m.get("text") for m in messenger.read(alice.cid)["messages"]]
    assert "Réunion jeudi" in texts  # nothing is lost, only the push
    messenger.set_mentions_only(alice.cid, False)  # back to every message
    alice.clock.advance(COALESCE + 1)
    owner.send_text(alice.cid, "Compte rendu")
    assert len(alice.service.wait_for(2)) == 2


def test_other_members_are_woken_as_before(alice: Subscribed, group: tuple[str, Messenger]) -> None:
    messenger = quiet_alice(alice, group)
    owner_device = PushDevice()
    assert (
        register(alice.api, alice.people, "owner", alice.service.endpoint("owner"), owner_device).status
        == 200
    )
    messenger.send_text(alice.cid, "Bonjour")  # alice's choice is hers: the owner still gets everything
    assert [r.path for r in alice.service.wait_for(1)] == ["/push/owner"]


def test_the_websocket_send_carries_notify_too(alice: Subscribed, group: tuple[str, Messenger]) -> None:
    quiet_alice(alice, group)
    owner_keys = alice.people.keys["owner"]
    assert alice.api.ws_connect(owner_keys, "owner-conn")["statusCode"] == 200
    envelope = alice.people.owner.seal(alice.cid, "msg-ws-1", {"type": "text", "text": "x"}, "message", None)
    body = json.dumps({"action": "send", "ref": "r1", "envelope": envelope.model_dump(mode="json")})
    alice.api.ws("ws_message", ws_event("$default", "owner-conn", body=body))
    assert [f["type"] for f in alice.push.to("owner-conn")] == ["ack"]
    assert alice.service.received == []
    named = {"action": "send", "ref": "r2", "notify": [alice_id(alice)]}
    envelope = alice.people.owner.seal(
        alice.cid, "msg-ws-2", {"type": "text", "text": "@alice"}, "message", None
    )
    body = json.dumps({**named, "envelope": envelope.model_dump(mode="json")})
    alice.api.ws("ws_message", ws_event("$default", "owner-conn", body=body))
    assert [r.path for r in alice.service.wait_for(1)] == ["/push/alice"]
    bad = {"action": "send", "ref": "r3", "notify": "m_everyone"}
    envelope = alice.people.owner.seal(alice.cid, "msg-ws-3", {"type": "text", "text": "?"}, "message", None)
    alice.api.ws(
        "ws_message",
        ws_event(
            "$default", "owner-conn", body=json.dumps({**bad, "envelope": envelope.model_dump(mode="json")})
        ),
    )
    refused = alice.push.to("owner-conn")[-1]
    assert (refused["type"], refused["error"], refused["ref"]) == ("error", "bad_request", "r3")


def test_the_queue_path_carries_the_named_members_to_the_consumer(
    alice: Subscribed, group: tuple[str, Messenger]
) -> None:
    quiet_alice(alice, group)
    service = alice.service
    with mock_aws():
        sqs, url = fan_out_through_a_queue(alice)
        alice.people.owner.send_text(alice.cid, "sans mention")
        alice.people.owner.send_text(alice.cid, "@alice", mentions=[alice_id(alice)])
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        bodies = sorted((m["Body"] for m in got), key=len)
        owner_device = alice.people.keys["owner"].device_id
        assert [json.loads(b) for b in bodies] == [
            {"channel_id": alice.cid, "wake": [owner_device]},
            {"channel_id": alice.cid, "wake": [owner_device], "named": [alice_id(alice)]},
        ]
        alice.api.lambda_.invoke("fanout", sqs_event(bodies[:1]))
        assert service.received == []
        alice.api.lambda_.invoke("fanout", sqs_event(bodies[1:]))
    assert [r.path for r in service.wait_for(1)] == ["/push/alice"]


def test_notify_is_checked_on_rest_and_never_stored(alice: Subscribed, group: tuple[str, Messenger]) -> None:
    owner = alice.people.owner
    outsider = alice.people.join("bob")  # of the organisation, not of the group
    bob_id = alice.people.info["bob"]["member_id"]
    del outsider
    many = [f"m_{'a' * 15}{chr(97 + i % 26)}" for i in range(MAX_NOTIFY + 1)]
    for n, (notify, why) in enumerate(
        (
            ([bob_id], "non-member"),
            (many, "at most"),
            (["not-an-id"], "member ids only"),
            ([alice_id(alice), alice_id(alice)], "twice"),
        )
    ):
        envelope = owner.seal(alice.cid, f"msg-bad-{n}", {"type": "text", "text": "x"}, "message", None)
        with pytest.raises(ApiError) as refused:
            owner.client.send_message(envelope, notify)
        assert (refused.value.status, refused.value.code) == (400, "bad_request"), notify
        assert why in str(refused.value)
    envelope = owner.seal(alice.cid, "msg-good", {"type": "text", "text": "@alice"}, "message", None)
    receipt = owner.client.send_message(envelope, [alice_id(alice)])
    stored = [i for i in _items(alice.container) if i.get("message_id") == "msg-good"]
    assert stored and receipt["seq"] >= 1
    assert all(alice_id(alice) not in json.dumps(i, default=str) for i in stored)  # notify leaves no trace


def _items(container: wiring.Container) -> list[dict[str, Any]]:
    return scan_all(container.store)


def test_only_the_member_s_own_device_may_post_their_choice(
    api: SignedApi,
    people: People,
    group: tuple[str, Messenger],
    clock: ManualClock,
    container: wiring.Container,
    tmp_path: Path,
) -> None:
    cid, _ = group
    alice_keys, alice_info = people.keys["alice"], people.info["alice"]
    owner_keys = people.keys["owner"]
    now = clock.now()
    own = choice(alice_keys, alice_info, cid, True, now)

    def put(statement: Any, signer: DeviceKeys, channel: str = cid) -> Any:
        return api.call("PUT", f"/channels/{channel}/notify", {"statement": statement}, signer=signer)

    assert put(own, owner_keys).status == 400  # the owner cannot post alice's choice
    forged = {**own, "sig": choice(owner_keys, alice_info, cid, True, now)["sig"]}
    assert put(forged, alice_keys).status == 400  # not signed by alice's device
    unsigned = {k: v for k, v in own.items() if k != "sig"}
    assert put(unsigned, alice_keys).status == 400
    assert put({**own, "purpose": "bocage/notify/v1"}, alice_keys).status == 400
    assert put(choice(alice_keys, alice_info, cid, True, now + 3600), alice_keys).status == 400  # future
    assert put(own, alice_keys).status == 200
    older = choice(alice_keys, alice_info, cid, False, now - 60)
    assert put(older, alice_keys).body["mentions_only"] is True  # accepted; the answer: the latest, kept
    [kept] = MentionChoiceRecords(container.store).of_channel(cid)
    assert kept.mentions_only is True and kept.issued_at == now
    bob = people.join("bob")  # of the organisation, not of the group
    del bob
    bob_statement = choice(people.keys["bob"], people.info["bob"], cid, True, now)
    reply = put(bob_statement, people.keys["bob"])
    assert (reply.status, reply.body["error"]) == (403, "forbidden")
    tribe, url = public_tribe(people)
    follower = follow(api, url, tmp_path / "lea", "Léa")
    lea_keys = follower.profile.keys()
    reply = api.call("PUT", f"/channels/{tribe}/notify", {"statement": {}}, signer=lea_keys)
    assert reply.status == 403  # followers choose nothing here: they are woken by every post


def test_another_organisation_s_channel_is_not_found(
    api: SignedApi, people: People, group: tuple[str, Messenger], operator: OperatorKey, clock: ManualClock
) -> None:
    cid, _ = group
    other = api.create_org(operator, name="Mairie voisine")
    stranger, activated = api.activate(other["activation_code"], "Voisin")
    statement = choice(stranger, activated.body, cid, True, clock.now())
    for reply in (
        api.call("PUT", f"/channels/{cid}/notify", {"statement": statement}, signer=stranger),
        api.call("GET", f"/channels/{cid}/members", signer=stranger),
    ):
        assert (reply.status, reply.body["error"]) == (404, "not_found")


def test_the_members_view_serves_every_member_s_latest_statement(
    api: SignedApi, people: People, group: tuple[str, Messenger]
) -> None:
    cid, messenger = group
    messenger.set_mentions_only(cid, True)
    answer = api.call("GET", f"/channels/{cid}/members", signer=people.keys["owner"]).body
    [served] = answer["notify"]
    assert (served["purpose"], served["member_id"], served["mentions_only"]) == (
        NOTIFY,
        people.info["alice"]["member_id"],
        True,
    )


# -- a malicious server ------------------------------------------------------------------------------


def plant(container: wiring.Container, statement: dict[str, Any]) -> None:
    """What a compromised server would serve: written straight into its store."""
    MentionChoiceRecords(container.store).save(
        MentionChoice(
            channel_id=statement["channel_id"],
            member_id=statement["member_id"],
            mentions_only=True,
            issued_at=statement["issued_at"],
            statement=statement,
        )
    )


def test_a_forged_choice_teaches_the_server_nothing(
    alice: Subscribed, group: tuple[str, Messenger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice never chose "mentions only"; the server serves a statement saying she did (signed by
    a stranger's key, by the owner's device, or not at all). The owner's client names nobody in
    ``notify``, so the server does not learn that alice was mentioned."""
    info, keys = alice.people.info["alice"], alice.people.keys["alice"]
    now = alice.clock.now()
    genuine = choice(keys, info, alice.cid, True, now)
    stranger_sig = issuing.notify_choice(
        SigningKey.generate(),
        keys.device_id,
        org_id=info["org_id"],
        channel_id=alice.cid,
        member_id=info["member_id"],
        mentions_only=True,
        now=now,
    )["sig"]
    owner_sig = choice(alice.people.keys["owner"], info, alice.cid, True, now)["sig"]
    heard: list[Any] = []
    send = alice.container.messaging.send

    def spy(who: Any, envelope: Any, notify: object = None) -> Any:
        heard.append(notify)
        return send(who, envelope, notify)

    monkeypatch.setattr(alice.container.messaging, "send", spy)
    for forged in ({**genuine, "sig": stranger_sig}, {**genuine, "sig": owner_sig}, {**genuine, "sig": ""}):
        plant(alice.container, forged)
        alice.people.owner.send_text(alice.cid, "@alice", mentions=[alice_id(alice)])
        alice.clock.advance(COALESCE + 1)
    assert heard == [None, None, None]  # nobody named, over REST's query string too
    plant(
        alice.container,
        {**genuine, "issued_at": now + 1, "sig": choice(keys, info, alice.cid, True, now + 1)["sig"]},
    )
    alice.people.owner.send_text(alice.cid, "@alice", mentions=[alice_id(alice)])
    assert heard[-1] == [alice_id(alice)]  # her own signed choice is honoured


def test_a_server_dropping_notify_only_loses_a_notification(
    alice: Subscribed, group: tuple[str, Messenger], monkeypatch: pytest.MonkeyPatch
) -> None:
    messenger = quiet_alice(alice, group)
    send = alice.container.messaging.send
    monkeypatch.setattr(
        alice.container.messaging, "send", lambda who, envelope, notify=None: send(who, envelope)
    )
    alice.people.owner.send_text(alice.cid, "@alice important", mentions=[alice_id(alice)])
    assert alice.service.received == []  # no push...
    [shown] = [m for m in messenger.read(alice.cid)["messages"] if m.get("text") == "@alice important"]
    assert shown["mentions"] == [alice_id(alice)]  # ...but the message and its mention are intact


def test_revoking_the_signing_device_forgets_the_choice(
    alice: Subscribed, group: tuple[str, Messenger]
) -> None:
    """A choice signed by a revoked device verifies for no sender, who would never name alice:
    the server forgets it, and she is not left silenced by a choice nobody can check."""
    quiet_alice(alice, group)
    records = MentionChoiceRecords(alice.container.store)
    assert records.mentions_only(alice.cid) == {alice_id(alice)}
    assert alice.api.revoke(alice.people.keys["owner"], alice.people.keys["alice"].device_id).status == 200
    assert records.of_channel(alice.cid) == []


def test_leaving_the_channel_forgets_the_choice(alice: Subscribed, group: tuple[str, Messenger]) -> None:
    quiet_alice(alice, group)
    alice.people.owner.remove_member(alice.cid, alice_id(alice))
    assert MentionChoiceRecords(alice.container.store).of_channel(alice.cid) == []


def test_a_revocation_racing_the_choice_does_not_leave_it_stored(
    alice: Subscribed, group: tuple[str, Messenger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation lands after the route checked alice's device and before it wrote her
    choice: the revocation's own clean-up found nothing, so the route must notice, or alice stays
    silenced by a choice no sender can verify."""
    records = alice.container.mention_choices._records
    save = records.save

    def revoked_meanwhile(choice: MentionChoice, **kw: Any) -> bool:
        owner, device_id = alice.people.keys["owner"], alice.people.keys["alice"].device_id
        assert alice.api.revoke(owner, device_id).status == 200
        return save(choice, **kw)

    monkeypatch.setattr(records, "save", revoked_meanwhile)
    _, messenger = group
    messenger.set_mentions_only(alice.cid, True)
    assert MentionChoiceRecords(alice.container.store).of_channel(alice.cid) == []


def test_a_choice_dated_ahead_never_outlives_a_later_one(
    alice: Subscribed, group: tuple[str, Messenger]
) -> None:
    """A choice stored dated a year ahead (a server clock that was wrong, or a store written to
    directly) is newer than nothing: alice's real choice replaces it, as recent history's does (23)."""
    keys, info = alice.people.keys["alice"], alice.people.info["alice"]
    year_ahead = alice.api.clock.now() + 365 * 86400
    plant(alice.container, choice(keys, info, alice.cid, True, year_ahead))
    _, messenger = group
    kept = messenger.set_mentions_only(alice.cid, False)
    assert kept["mentions_only"] is False
    stored = MentionChoiceRecords(alice.container.store).get(alice.cid, alice_id(alice))
    assert stored is not None and stored.mentions_only is False
