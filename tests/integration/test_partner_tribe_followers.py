"""A partner's member in a public tribe that has followers (docs/protocol.md, 16.3 and 22.6),
through the real app on SQLite and moto's DynamoDB, with the real Python client on every side.

A follower pins its organisation's root only and holds no partnership statement: it cannot
verify a partner's member. What it must still get is the tribe: every post of its authors,
those added after the partner's member included, and an explicit warning for the one person
it cannot place, never a log that stops there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bocage.client.messenger import Messenger
from bocage.client.profile import DeviceKeys
from chalicelib.adapters.records.sender_keys import SenderKeys
from chalicelib.domain.encoding import b64e
from chalicelib.domain.statements import statement_hash
from tests.integration.test_followers import follow
from tests.integration.test_partners import Pair, pair
from tests.support import SignedApi

__all__ = ["pair"]  # the fixture, shared with tests/integration/test_partners.py


def open_tribe(pair: Pair) -> str:
    """A lets partners' members into its tribes (22.6), and adds B's member to a public one."""
    invitation = pair.a.partners.invite(allow_tribes=True)
    pair.b_owner.partners.accept(invitation["code"])
    pair.a.partners.listing()
    pair.b_owner.partners.listing()
    tribe = str(pair.a.create_channel("tribe", "Annonces")["channel_id"])
    pair.a.add_member(tribe, str(pair.b_member.info["member_id"]))
    return tribe


def shown(messenger: Messenger, tribe: str, kind: str) -> list[dict[str, Any]]:
    return [m for m in messenger.read(tribe)["messages"] if m.get("kind") == kind]


def codes(messenger: Messenger) -> list[str]:
    return [w["code"] for w in messenger.trust.take_warnings()]


def test_a_follower_reads_every_post_of_a_tribe_holding_a_partners_member(
    pair: Pair, api: SignedApi, tmp_path: Path
) -> None:
    tribe = open_tribe(pair)
    lea = follow(api, pair.a.publish(tribe)["join_url"], tmp_path / "lea", "Léa")
    ana = pair.people.join("ana")
    pair.a.add_member(tribe, str(ana.info["member_id"]), role="author")  # an entry after B's member's
    ana.send_text(tribe, "Le marché est déplacé")
    posts = shown(lea, tribe, "message")
    assert [(m["text"], m["verified"], m["sender_name"]) for m in posts] == [
        ("Le marché est déplacé", True, "ana")
    ]
    assert "membership_invalid" not in codes(lea)
    # B's member leaves with an entry signed by a device the follower cannot place: the log goes on.
    pair.b_member.remove_member(tribe, str(pair.b_member.info["member_id"]))
    carla = pair.people.join("carla")
    pair.a.add_member(tribe, str(carla.info["member_id"]), role="author")
    carla.send_text(tribe, "Fête samedi")
    assert [m["text"] for m in shown(lea, tribe, "message")] == ["Le marché est déplacé", "Fête samedi"]
    state = lea.trust.membership(tribe)
    assert (
        str(pair.b_member.info["member_id"]) in state.former and str(carla.info["member_id"]) in state.members
    )
    assert "membership_invalid" not in codes(lea)


def test_a_partners_member_and_the_followers_do_not_read_each_other_and_say_why(
    pair: Pair, api: SignedApi, container: Any, tmp_path: Path
) -> None:
    tribe = open_tribe(pair)
    lea = follow(api, pair.a.publish(tribe)["join_url"], tmp_path / "lea", "Léa")
    poll = pair.a.create_poll(tribe, "Un marché le dimanche ?", ["Oui", "Non"])["poll_id"]
    pair.b_member.read(tribe)
    pair.b_member.vote(tribe, poll, [0])
    pair.b_member.react(tribe, poll, "👍")
    # B's device seals nothing to the host's followers, who could not verify it, and warns nothing.
    epoch = int(next(c for c in pair.a.client.channels()["channels"] if c["channel_id"] == tribe)["epoch"])
    sealed = SenderKeys(container.store).sealed_to(tribe, epoch, lea.keys.device_id)
    assert pair.b_member.keys.device_id not in {k.sender_device for k in sealed}
    assert codes(pair.b_member) == []
    # The follower shows B's member's vote and reaction as no one's, and says why.
    for kind in ("vote", "reaction"):
        [refused] = shown(lea, tribe, kind)
        assert (
            not refused["verified"] and refused["sender_name"] is None and "not certified" in refused["error"]
        )
    [warning] = lea.trust.take_warnings()
    assert warning["code"] == "uncertified_device" and warning["device_id"] == pair.b_member.keys.device_id
    assert "a follower verifies the organisation's own members only" in warning["message"]
    assert lea.poll_results(tribe, poll)["counts"] == [0, 0]  # a follower's tally counts what it can read
    # The host's managers count everyone: B's member among the members, the follower apart.
    lea.vote(tribe, poll, [1])
    results = pair.a.poll_results(tribe, poll)
    assert results["counts"] == [1, 1] and results["follower_voters"] == 1
    # B's device verifies the follower (the host's ticket, signed by a manager of the host it
    # lists) but reads nothing of theirs: a follower seals to the members it can verify.
    [vote] = [
        m for m in pair.b_member.history(tribe) if m["kind"] == "vote" and m.get("sender_name") == "Léa"
    ]
    assert not vote["verified"] and "no key" in vote["error"]
    assert codes(pair.b_member) == []


def test_a_partners_member_verifies_followers_of_a_link_an_admin_outside_the_tribe_made(
    pair: Pair, api: SignedApi, tmp_path: Path
) -> None:
    """The join ticket's signer is an admin of the host in no entry of the tribe's log: the
    host's listing for the partner's member names them (22.6), so its device checks the ticket
    with the host's roles (16.3) and names the follower; without them, ``uncertified_follower``."""
    tribe = open_tribe(pair)
    clerk = pair.people.join("clerk", role="admin")
    lea = follow(api, clerk.publish(tribe)["join_url"], tmp_path / "lea", "Léa")
    poll = pair.a.create_poll(tribe, "Un marché le dimanche ?", ["Oui", "Non"])["poll_id"]
    lea.read(tribe)
    lea.vote(tribe, poll, [0])
    [vote] = [m for m in pair.b_member.history(tribe) if m["kind"] == "vote"]
    assert vote["sender_name"] == "Léa" and not vote["verified"]  # named, but sealed no key (16.3)
    assert codes(pair.b_member) == []
    listed = pair.b_member.client.request("GET", f"/partners/{pair.a_org}/members")
    assert str(clerk.info["member_id"]) in {m["member_id"] for m in listed["members"]}


def test_a_server_cannot_take_a_verified_author_out_of_a_followers_tribe(
    pair: Pair, api: SignedApi, tmp_path: Path
) -> None:
    """The attack on the unsigned ``leave`` a follower takes from a partner's member (16.3): the
    server leaves a verified author out of the follower's listing once and serves a ``leave`` of
    them signed by a made-up device with a zero signature. The follower refuses it, keeps the
    author and their posts, and goes on with the honest log when the server serves it again."""
    tribe = open_tribe(pair)
    ana = pair.people.join("ana")
    ana_id = str(ana.info["member_id"])
    pair.a.add_member(tribe, ana_id, role="author")
    lea = follow(api, pair.a.publish(tribe)["join_url"], tmp_path / "lea", "Léa")
    ana.send_text(tribe, "un")
    assert [(m["text"], m["verified"]) for m in shown(lea, tribe, "message")] == [("un", True)]
    entries, _ = pair.a.client.membership_log(tribe, 0)
    last = entries[-1]
    forged = {
        **{k: last[k] for k in ("purpose", "org_id", "channel_id", "kind")},
        "seq": last["seq"] + 1,
        "prev": statement_hash(last),
        "op": "leave",
        "member_id": ana_id,
        "role": None,
        "by_device": DeviceKeys.generate().device_id,
        "issued_at": last["issued_at"] + 1,
        "sig": b64e(bytes(64)),
    }
    honest = lea.client.request

    def hiding(method: str, path: str, body: Any = None, query: Any = None) -> Any:
        reply = honest(method, path, body, query)
        if method == "GET" and path == "/members":
            reply = {
                **reply,
                "members": [m for m in reply["members"] if m["member_id"] != ana_id],
                "devices": [d for d in reply["devices"] if d["member_id"] != ana_id],
            }
        if method == "GET" and path == f"/channels/{tribe}/membership":
            start = int((query or {}).get("from", 0))
            page = [e for e in entries if e["seq"] >= start] + [forged]
            head = {"seq": forged["seq"], "hash": statement_hash(forged)}
            reply = {**reply, "entries": page, "more": False, "head": head}
        return reply

    lea.client.request = hiding  # type: ignore[method-assign]
    lea.trust.view(refresh=True)
    state = lea.trust.membership(tribe)
    assert state.members.get(ana_id) == "author" and ana_id not in state.former
    assert "membership_invalid" in codes(lea)
    lea.client.request = honest  # type: ignore[method-assign]
    lea.trust.view(refresh=True)
    ana.send_text(tribe, "deux")
    assert [(m["text"], m["verified"]) for m in shown(lea, tribe, "message")] == [
        ("un", True),
        ("deux", True),
    ]
    assert lea.trust.membership(tribe).members.get(ana_id) == "author"
    assert not {"membership_fork", "membership_invalid"} & set(codes(lea))
