"""Call signalling over the WebSocket (docs/protocol.md, 19) on the Lambda path, both stores:
the ``call`` action reaches only the named devices of the channel's members, sealed offers,
answers and candidates open only on their device, and the server refuses (relaying nothing)
whoever may not signal: a non-member, an admin outside the channel, another organisation, the
free plan, a device outside the roster, an ended call, the seventh participant. A member
removed from the channel is dropped from the call. Nothing of the media parameters or of a TURN
credential is stored or logged."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from bocage.client.calls import new_call_id
from chalicelib.adapters.records.calls import CallRecords
from chalicelib.domain.calls import MAX_PARTICIPANTS
from chalicelib.domain.organisation import Plan
from chalicelib.request_logging import logger
from tests.support import People, RecordingPush, SignedApi, messenger_for, scan_all, ws_event

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AB:CD"
CANDIDATE = "candidate:842163049 1 udp 1677729535 198.51.100.27 46154 typ srflx raddr 10.0.0.5 rport 46154"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    level = logger.log_level
    logger.setLevel("DEBUG")
    logging.getLogger(logger.name).addHandler(handler)
    yield buffer
    logging.getLogger(logger.name).removeHandler(handler)
    logger.setLevel(level)


class Room:
    """A pro organisation's group of the owner, Alice and Bob, each device connected."""

    def __init__(self, api: SignedApi, people: People, container: Any, push: RecordingPush) -> None:
        self.api, self.people, self.push = api, people, push
        container.orgs.set_plan(people.info["owner"]["org_id"], Plan.PRO)
        self.alice, self.bob = people.join("alice"), people.join("bob")
        self.cid = people.owner.create_channel("group", "Chantier")["channel_id"]
        for name in ("alice", "bob"):
            people.owner.add_member(self.cid, people.info[name]["member_id"])
        self.by_name = {"owner": people.owner, "alice": self.alice, "bob": self.bob}
        for name in self.by_name:
            self.connect(name)

    def connect(self, name: str) -> None:
        assert self.api.ws_connect(self.people.keys[name], f"c-{name}")["statusCode"] == 200

    def device(self, name: str) -> str:
        return str(self.people.keys[name].device_id)

    def send(self, name: str, action: dict[str, Any]) -> dict[str, Any]:
        """Send an action from this person's connection; the answer the server pushed back."""
        before = len(self.push.to(f"c-{name}"))
        self.api.ws("ws_message", ws_event("$default", f"c-{name}", body=json.dumps(action)))
        answers = [f for f in self.push.to(f"c-{name}")[before:] if f["type"] in ("call_ack", "error")]
        assert len(answers) == 1, answers
        return answers[0]

    def signal(self, name: str, call_id: str, signal: str, to: Any, cid: str | None = None) -> dict[str, Any]:
        action = self.by_name[name].calls.action(cid or self.cid, call_id, signal, to)
        return self.send(name, action.wire())

    def raw(
        self, name: str, signal: str, to: list[str], call_id: str, cid: str | None = None
    ) -> dict[str, Any]:
        """What the server answers a device that seals to whom it likes (its client would not):
        the server cannot open what is sealed, so random bytes stand for it."""
        sealed = base64.urlsafe_b64encode(os.urandom(64)).decode().rstrip("=")
        action = {
            "action": "call",
            "channel_id": cid or self.cid,
            "call_id": call_id,
            "signal": signal,
            "to": [{"device_id": d, "sealed": sealed} for d in to],
        }
        return self.send(name, action)

    def calls_to(self, name: str) -> list[dict[str, Any]]:
        return self.push.to(f"c-{name}", "call")


@pytest.fixture
def room(api: SignedApi, people: People, container: Any, push: RecordingPush) -> Room:
    return Room(api, people, container, push)


def test_a_two_party_call_goes_sealed_from_device_to_device_and_leaves_no_trace(
    room: Room, container: Any, log_output: io.StringIO
) -> None:
    owner, alice = room.device("owner"), room.device("alice")
    call_id = new_call_id()
    ack = room.signal("owner", call_id, "ring", [alice])
    assert (ack["type"], ack["participants"], ack["delivered"]) == ("call_ack", [owner], 1)
    (ring,) = room.calls_to("alice")
    assert (ring["signal"], ring["from_device"], ring["call_id"]) == ("ring", owner, call_id)
    assert room.calls_to("bob") == []  # only the named devices hear of it
    rang = room.alice.calls.open(ring)
    assert rang.from_member == room.people.info["owner"]["member_id"] and rang.display_name != "?"

    assert room.signal("alice", call_id, "accept", [owner])["participants"] == sorted([owner, alice])
    room.signal("owner", call_id, "offer", {alice: {"type": "offer", "sdp": SDP}})
    offer = room.calls_to("alice")[-1]
    assert SDP not in json.dumps(offer) and offer["sealed"]
    assert room.alice.calls.open(offer).data == {"type": "offer", "sdp": SDP}
    room.signal("alice", call_id, "answer", {owner: {"type": "answer", "sdp": SDP}})
    room.signal("alice", call_id, "candidate", {owner: {"candidate": CANDIDATE, "sdpMid": "0"}})
    answer, candidate = room.calls_to("owner")[-2:]
    assert room.people.owner.calls.open(answer).data["type"] == "answer"
    assert room.people.owner.calls.open(candidate).data["candidate"] == CANDIDATE

    # A sealed signal opens only for its own call and signal: relabelled by the server, it is refused.
    from bocage.client.calls import UntrustedSignal

    for change in ({"call_id": new_call_id()}, {"signal": "answer"}):
        with pytest.raises(UntrustedSignal):
            room.alice.calls.open({**offer, **change})

    hung = room.signal("owner", call_id, "hangup", [alice])
    assert hung["ended"] is True
    assert room.calls_to("alice")[-1]["signal"] == "hangup"
    late = room.signal("alice", call_id, "candidate", {owner: {"candidate": CANDIDATE}})
    assert (late["type"], late["status"], late["error"]) == ("error", 409, "call_ended")
    assert len(room.calls_to("owner")) == 3  # nothing relayed after the end

    (record,) = [r for r in scan_all(container.store) if r["sk"].startswith("CALL#")]
    assert (record["started_at"], record["ended_at"], sorted(record["joined"])) == (
        record["started_at"],
        record["ended_at"],
        sorted([owner, alice]),
    )
    assert record["ended_at"] >= record["started_at"] and record["expires_at"] > record["ended_at"]
    stored = json.dumps(scan_all(container.store))
    logged = log_output.getvalue()
    assert "call" in logged  # the actions were logged, and nothing of what they carried:
    for secret in (SDP[:20], "198.51.100.27", "10.0.0.5", "fingerprint", offer["sealed"][:40]):
        assert secret not in stored and secret not in logged


def test_who_may_not_signal_is_refused_and_nothing_is_relayed(
    room: Room, api: SignedApi, container: Any, operator: Any, push: RecordingPush
) -> None:
    people = room.people
    owner, alice, bob = room.device("owner"), room.device("alice"), room.device("bob")
    carol = people.join("carol")
    room.by_name["carol"] = carol
    room.connect("carol")
    before = list(push.frames)

    def refused(name: str, signal: str, to: list[str], cid: str | None = None) -> tuple[int, str]:
        answer = room.raw(name, signal, to, new_call_id(), cid)
        assert answer["type"] == "error", answer
        return answer["status"], answer["error"]

    assert refused("carol", "ring", [owner]) == (403, "forbidden")  # not in the channel
    assert refused("owner", "ring", [alice, room.device("carol")]) == (403, "forbidden")  # a target outside
    assert refused("owner", "join", [alice]) == (404, "not_found")  # no such call
    other = api.create_org(operator, name="Autre")
    stranger_keys, info = api.activate(other["activation_code"], "Stranger")
    container.orgs.set_plan(info.body["org_id"], Plan.PRO)
    stranger = messenger_for(api, stranger_keys, people.tmp / "stranger", info.body)
    mine = stranger.create_channel("group", "Ailleurs")["channel_id"]
    assert refused("owner", "ring", [alice], cid=mine) == (404, "not_found")  # another organisation's
    api.ws_connect(stranger_keys, "c-stranger")
    room.by_name["stranger"], people.keys["stranger"] = stranger, stranger_keys
    assert refused("stranger", "ring", [owner], cid=mine) == (403, "forbidden")  # not in their channel

    container.orgs.set_plan(people.info["owner"]["org_id"], Plan.FREE)
    assert refused("owner", "ring", [alice]) == (403, "calls_not_in_plan")
    assert [f for f in push.frames if f not in before and f[1]["type"] == "call"] == []

    container.orgs.set_plan(people.info["owner"]["org_id"], Plan.PRO)
    call_id = new_call_id()
    room.signal("owner", call_id, "ring", [alice, bob])
    # A sealed signal goes between participants only: Bob was rung but has not answered.
    not_yet = room.signal("owner", call_id, "offer", {bob: {"sdp": SDP}})
    assert (not_yet["status"], not_yet["error"]) == (403, "not_in_call")
    assert room.signal("bob", call_id, "decline", [owner])["participants"] == [owner]
    bad = room.send(
        "owner",
        {
            "action": "call",
            "channel_id": room.cid,
            "call_id": call_id,
            "signal": "offer",
            "to": [{"device_id": alice}],
        },
    )
    assert (bad["status"], bad["error"]) == (400, "bad_request")  # an offer without its sealed payload


def test_the_seventh_participant_is_told_the_call_is_full(room: Room) -> None:
    people = room.people
    names = ["alice", "bob"]
    for i in range(MAX_PARTICIPANTS - 2):
        name = f"p{i}"
        room.by_name[name] = people.join(name)
        people.owner.add_member(room.cid, people.info[name]["member_id"])
        room.connect(name)
        names.append(name)
    call_id = new_call_id()
    owner = room.device("owner")
    room.signal("owner", call_id, "ring", [room.device(n) for n in names])
    for name in names[:-1]:
        assert room.signal(name, call_id, "accept", [owner])["type"] == "call_ack"
    assert len(room.signal(names[-2], call_id, "accept", [owner])["participants"]) == MAX_PARTICIPANTS
    full = room.signal(names[-1], call_id, "accept", [owner])
    assert (full["status"], full["error"]) == (409, "call_full")
    assert room.signal("alice", call_id, "leave", [owner])["participants"].count(room.device("alice")) == 0
    assert room.signal(names[-1], call_id, "join", [owner])["type"] == "call_ack"  # a place is free again


def test_a_member_removed_from_the_channel_is_dropped_from_the_call(room: Room, container: Any) -> None:
    owner, alice, bob = room.device("owner"), room.device("alice"), room.device("bob")
    call_id = new_call_id()
    room.signal("owner", call_id, "ring", [alice, bob])
    room.signal("alice", call_id, "accept", [owner])
    room.signal("bob", call_id, "accept", [owner, alice])
    room.people.owner.remove_member(room.cid, room.people.info["bob"]["member_id"])
    hangup = room.calls_to("bob")[-1]
    assert (hangup["signal"], hangup["reason"], hangup["call_id"]) == ("hangup", "removed", call_id)
    for name in ("owner", "alice"):
        leave = room.calls_to(name)[-1]
        assert (leave["signal"], leave["from_device"], leave["reason"]) == ("leave", bob, "removed")
        assert room.by_name[name].calls.open(leave).by_server == "removed"
    ack = room.signal("owner", call_id, "offer", {alice: {"sdp": SDP}})
    assert ack["participants"] == sorted([owner, alice])
    back = room.raw("bob", "join", [owner], call_id)
    assert (back["status"], back["error"]) == (403, "forbidden")  # no longer a member


def test_a_revoked_device_is_dropped_from_the_call(room: Room, api: SignedApi) -> None:
    owner, alice, bob = room.device("owner"), room.device("alice"), room.device("bob")
    call_id = new_call_id()
    room.signal("owner", call_id, "ring", [alice, bob])
    room.signal("alice", call_id, "accept", [owner])
    assert api.revoke(room.people.keys["owner"], alice).status == 200
    leave = room.calls_to("owner")[-1]
    assert (leave["signal"], leave["from_device"], leave["reason"]) == ("leave", alice, "revoked")
    ack = room.signal("owner", call_id, "ring", [bob])
    assert ack["participants"] == [owner]  # Alice's device is out; the call goes on
    room.signal("owner", call_id, "leave", [])
    ended = room.signal("bob", call_id, "join", [owner])
    assert (ended["status"], ended["error"]) == (409, "call_ended")  # the last one left: it ended


def linked_device(room: Room, name: str) -> Any:
    """A second device of this person, linked and certified by the first, connected as
    ``c-<name>-2``; its Messenger."""
    link = room.by_name[name].trust.link_device()
    room.api._remember_url(link)
    keys, reply = room.api.activate(link["activation_code"], "Tablette")
    assert reply.status == 201, reply.body
    assert room.api.ws_connect(keys, f"c-{name}-2")["statusCode"] == 200
    return messenger_for(room.api, keys, room.people.tmp / f"{name}-2", reply.body)


def test_an_answer_or_a_decline_stops_the_members_other_devices_ringing(room: Room) -> None:
    owner, alice = room.device("owner"), room.device("alice")
    tablet = linked_device(room, "alice")
    call_id = new_call_id()
    room.signal("owner", call_id, "ring", [alice, tablet.device_id])
    assert [f["signal"] for f in room.push.to("c-alice-2", "call")] == ["ring"]

    ack = room.signal("alice", call_id, "accept", [owner])
    assert ack["delivered"] == 2  # the caller, and Alice's tablet
    answered = room.push.to("c-alice-2", "call")[-1]
    assert (answered["signal"], answered["from_device"], answered["call_id"]) == ("accept", alice, call_id)
    assert answered["sealed"] and "reason" not in answered  # sealed by Alice's phone to her tablet
    opened = tablet.calls.open(answered)
    assert opened.elsewhere and opened.data is None  # it stops ringing there, nothing more
    assert room.people.owner.calls.open(room.calls_to("owner")[-1]).elsewhere is False
    assert room.calls_to("bob") == []  # nobody else hears of it
    assert ack["participants"] == sorted([owner, alice])  # the tablet is not in the call

    # A decline on the tablet reaches the caller and stops Alice's phone ringing.
    other_call = new_call_id()
    room.signal("owner", other_call, "ring", [alice, tablet.device_id])
    before = len(room.calls_to("alice"))
    declined = room.send("alice-2", tablet.calls.action(room.cid, other_call, "decline", [owner]).wire())
    assert declined["delivered"] == 2 and declined["participants"] == [owner]
    (told,) = room.calls_to("alice")[before:]
    assert (told["signal"], told["from_device"]) == ("decline", tablet.device_id)
    assert room.alice.calls.open(told).elsewhere
    assert room.calls_to("owner")[-1]["signal"] == "decline"
    room.signal("owner", other_call, "leave", [])

    # The one device that answered, named also as a target, hears it once.
    third = new_call_id()
    room.signal("owner", third, "ring", [alice, tablet.device_id])
    count = len(room.push.to("c-alice-2", "call"))
    room.signal("alice", third, "accept", [owner, tablet.device_id])
    assert len(room.push.to("c-alice-2", "call")) == count + 1

    # Refused, an accept reaches none of the sender's devices either: another organisation's
    # channel (404), or once out of the channel (403).
    fourth = new_call_id()
    room.signal("owner", fourth, "ring", [alice, tablet.device_id])
    count = len(room.push.to("c-alice-2", "call"))
    foreign = room.send(
        "alice",
        {"action": "call", "channel_id": "c_" + "z" * 16, "call_id": fourth, "signal": "accept", "to": []},
    )
    assert (foreign["status"], foreign["error"]) == (404, "not_found")
    assert len(room.push.to("c-alice-2", "call")) == count
    room.people.owner.remove_member(room.cid, room.people.info["alice"]["member_id"])
    count = len(room.push.to("c-alice-2", "call"))  # (the removal's hang-ups)
    out = room.send(
        "alice", {"action": "call", "channel_id": room.cid, "call_id": fourth, "signal": "accept", "to": []}
    )
    assert (out["status"], out["error"]) == (403, "forbidden")
    assert len(room.push.to("c-alice-2", "call")) == count


def test_an_ended_call_counts_its_participant_minutes_once_for_its_organisation(
    room: Room, api: SignedApi, container: Any, operator: Any, clock: Any
) -> None:
    owner, alice, bob = room.device("owner"), room.device("alice"), room.device("bob")
    owner_keys = room.people.keys["owner"]
    call_id = new_call_id()
    room.signal("owner", call_id, "ring", [alice, bob])
    clock.advance(20)  # ringing alone: nobody to talk to, not counted
    room.signal("alice", call_id, "accept", [owner])
    clock.advance(125)  # two devices: 250 participant-seconds
    room.signal("bob", call_id, "accept", [owner, alice])
    clock.advance(60)  # three: 180
    room.signal("owner", call_id, "leave", [alice, bob])
    clock.advance(30)  # two: 60
    assert room.signal("alice", call_id, "hangup", [bob])["ended"] is True
    clock.advance(600)
    late = room.signal("bob", call_id, "leave", [alice])
    assert (late["status"], late["error"]) == (409, "call_ended")  # nothing more to count

    # An unanswered call counts nothing; a call in another organisation counts there only.
    unanswered = new_call_id()
    room.signal("owner", unanswered, "ring", [alice])
    clock.advance(45)
    room.signal("owner", unanswered, "leave", [])
    other = api.create_org(operator, name="Autre")
    stranger_keys, info = api.activate(other["activation_code"], "Stranger")
    container.orgs.set_plan(info.body["org_id"], Plan.PRO)
    zoe_keys, zoe = api.join(stranger_keys, "Zoé", "member")
    stranger = messenger_for(api, stranger_keys, room.people.tmp / "stranger", info.body)
    theirs = stranger.create_channel("group", "Ailleurs")["channel_id"]
    stranger.add_member(theirs, zoe["member_id"])
    for name, keys in (("stranger", stranger_keys), ("zoe", zoe_keys)):
        assert api.ws_connect(keys, f"c-{name}")["statusCode"] == 200
    room.by_name["stranger"] = stranger
    room.by_name["zoe"] = messenger_for(api, zoe_keys, room.people.tmp / "zoe", zoe)
    elsewhere = new_call_id()
    room.signal("stranger", elsewhere, "ring", [zoe_keys.device_id], cid=theirs)
    room.signal("zoe", elsewhere, "accept", [stranger_keys.device_id], cid=theirs)
    clock.advance(90)
    room.signal("zoe", elsewhere, "hangup", [stranger_keys.device_id], cid=theirs)

    mine = api.call("GET", "/impact/org", signer=owner_keys)
    assert mine.status == 200, mine.body
    totals = mine.body["totals"]
    assert (totals["call_minutes"], totals["call_co2e_mg"]) == (8, 490 * 2_620_000 // 60_000)  # 490 s
    assert [m["call_minutes"] for m in mine.body["months"]] == [8]
    assert "doi.org/10.1016/j.resconrec.2020.105389" in mine.body["assumptions"]["sources"]["call_minute"]
    (counter,) = [
        i
        for i in scan_all(container.store)
        if "call_seconds" in i and info.body["org_id"] not in str(i["pk"])
    ]
    assert counter["call_seconds"] == 490  # one counter, one increment
    theirs_impact = api.call("GET", "/impact/org", signer=stranger_keys).body["totals"]
    assert theirs_impact["call_minutes"] == 3  # 2 x 90 s, in their organisation only
    report = api.call("GET", "/report", signer=owner_keys)
    assert report.status == 200 and report.body["totals"]["call_minutes"] == 8, report.body


def test_new_calls_are_capped_per_device_per_channel_and_per_six_hours(
    room: Room, container: Any, clock: Any
) -> None:
    """Finding 10: any member could make call records without limit (a ring with a new id each
    time), and removing a member or revoking a device reads them all. A device rings one call at
    a time, a channel has 3 open calls at most and starts 60 calls per 6 hours at most."""
    owner, alice, bob = room.device("owner"), room.device("alice"), room.device("bob")
    first = new_call_id()
    room.signal("owner", first, "ring", [alice])
    busy = room.signal("owner", new_call_id(), "ring", [bob])
    assert (busy["status"], busy["error"]) == (409, "call_in_progress")
    assert room.calls_to("bob") == []  # nothing relayed
    room.signal("alice", first, "accept", [owner])  # answered: the owner may start another
    room.signal("owner", new_call_id(), "ring", [bob])
    room.signal("bob", new_call_id(), "ring", [alice])
    full = room.signal("alice", new_call_id(), "ring", [bob])
    assert (full["status"], full["error"]) == (409, "calls_busy")
    assert "join one of them" in full["message"]
    clock.advance(61)  # the two unanswered rings have run out: they no longer hold a place
    room.signal("alice", new_call_id(), "ring", [bob])

    def stored_calls() -> int:
        """The channel's call records, by one query of its partition (not a table scan)."""
        return len(list(CallRecords(container.store).of_channel(room.cid)))

    # The spammer's own code seals to whom it likes (room.raw): no trust view fetched per call.
    for _ in range(60 - stored_calls()):
        clock.advance(1)
        spam = new_call_id()
        assert room.raw("bob", "ring", [owner], spam)["type"] == "call_ack"
        assert room.raw("bob", "leave", [], spam)["type"] == "call_ack"
    refused = room.signal("bob", new_call_id(), "ring", [owner])
    assert (refused.get("status"), refused.get("error")) == (429, "too_many_calls"), refused
    assert stored_calls() == 60  # what a member's removal or a revocation reads, at most
    room.people.owner.remove_member(room.cid, room.people.info["alice"]["member_id"])
    dropped = {f["call_id"] for f in room.calls_to("alice") if f.get("reason") == "removed"}
    assert first in dropped  # the removal still reaches her calls
    clock.advance(6 * 3600)  # the records expire: calls may start again
    room.connect("bob")  # (a connection lasts less: the device reconnects)
    again = room.signal("bob", new_call_id(), "ring", [owner])
    assert again["type"] == "call_ack", again
