"""Recent history for new followers (docs/protocol.md, section 23), through the real app on
SQLite and moto's DynamoDB with the real Python client: a manager's signed "last N days"
choice, the authors' devices sealing their chain as it was at the start of the window, and a
server that forges, replays or plants the choice getting nothing older shared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bocage.client.api import ApiError
from bocage.client.issuing import history_choice
from bocage.client.profile import DeviceKeys
from chalicelib.adapters.records import keys
from chalicelib.domain.encoding import b64e
from chalicelib.domain.followers import DAY, HistoryChoice
from chalicelib.domain.statements import signing_bytes
from tests.browser.test_trust_compat import run_js
from tests.integration.test_followers import follow, public_tribe
from tests.support import People, SignedApi, js_trust_view, messenger_for

YEAR = 365 * DAY


def texts(messenger: Any, cid: str) -> list[str | None]:
    return [m.get("text") for m in messenger.history(cid) if m.get("kind", "message") == "message"]


def test_a_follower_joining_a_tribe_with_7_days_reads_3_days_back_not_10(
    people: People, api: SignedApi, tmp_path: Path
) -> None:
    cid, url = public_tribe(people)
    assert people.owner.set_recent_history(cid, 7)["days"] == 7
    genuine = people.owner.client.recent_history(cid)["statement"]
    assert web_verdict(people.owner, cid, genuine) == {
        "days": 7,
        "issued_at": genuine["issued_at"],
        "by_device": people.keys["owner"].device_id,
    }
    people.owner.send_text(cid, "il y a dix jours")
    api.clock.advance(7 * DAY)
    people.owner.send_text(cid, "il y a trois jours")
    people.owner.send_text(cid, "le même jour")
    api.clock.advance(3 * DAY)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    people.owner.share_keys(cid)  # what the author's device does on reading, or before its next post
    assert texts(lea, cid) == [None, "il y a trois jours", "le même jour"]
    people.owner.send_text(cid, "aujourd'hui")
    assert texts(lea, cid) == [None, "il y a trois jours", "le même jour", "aujourd'hui"]
    assert lea.trust.take_warnings() == []


def test_with_0_days_a_new_follower_reads_nothing_before_joining(
    people: People, api: SignedApi, tmp_path: Path
) -> None:
    cid, url = public_tribe(people)
    people.owner.set_recent_history(cid, 7)
    people.owner.send_text(cid, "avant")
    api.clock.advance(DAY)
    assert people.owner.set_recent_history(cid, 0)["days"] == 0
    assert people.owner.ring._snapshots == {}  # nothing older kept once the window closes
    people.owner.send_text(cid, "encore avant")
    lea = follow(api, url, tmp_path / "lea", "Léa")
    people.owner.send_text(cid, "après")
    assert texts(lea, cid) == [None, None, "après"]


def test_the_choice_is_for_managers_of_a_tribe_and_answers_404_elsewhere(
    people: People, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    cid, url = public_tribe(people)
    ana = people.join("ana")
    people.owner.add_member(cid, people.info["ana"]["member_id"])
    with pytest.raises(ApiError) as refused:
        ana.set_recent_history(cid, 7)
    assert refused.value.status == 403
    assert ana.client.recent_history(cid) == {"channel_id": cid, "days": 0, "statement": None}
    gus = people.join("gus", role="guest")  # a guest is in no tribe: neither reads nor sets it
    assert api.call("GET", f"/channels/{cid}/history", signer=people.keys["gus"]).status == 403
    with pytest.raises(ApiError) as guest:
        gus.set_recent_history(cid, 7)
    assert guest.value.status == 403
    lea = follow(api, url, tmp_path / "lea", "Léa")
    owner, org_id = people.keys["owner"], people.info["owner"]["org_id"]

    def choice(**changes: Any) -> dict[str, Any]:
        fields = {"org_id": org_id, "channel_id": cid, "days": 7, "now": api.clock.now(), **changes}
        return history_choice(owner.signing, owner.device_id, **fields)

    for method in ("GET", "PUT"):
        reply = api.call(method, f"/channels/{cid}/history", {"statement": choice()}, signer=lea.keys)
        assert reply.status == 403 and "follower" in reply.body["message"]

    def spoiled(days: object) -> dict[str, Any]:
        """Signed by the owner's device, but with days out of range (no client makes one)."""
        body = {k: v for k, v in choice().items() if k != "sig"} | {"days": days}
        return body | {"sig": b64e(owner.signing.sign(signing_bytes(body)).signature)}

    for bad in (
        spoiled(31),
        spoiled(-1),
        spoiled(True),
        choice(now=api.clock.now() - 3600),
        {"statement": 1},
    ):
        reply = api.call("PUT", f"/channels/{cid}/history", {"statement": bad}, signer=owner)
        assert reply.status == 400, bad
    gid = people.owner.create_channel("group", "Conseil")["channel_id"]
    wrong = api.call("PUT", f"/channels/{cid}/history", {"statement": choice(channel_id=gid)}, signer=owner)
    assert wrong.status == 400  # a choice names its tribe
    assert (
        api.call(
            "PUT", f"/channels/{gid}/history", {"statement": choice(channel_id=gid)}, signer=owner
        ).status
        == 400
    )
    stored = api.call("PUT", f"/channels/{cid}/history", {"statement": choice()}, signer=owner)
    assert stored.status == 200 and stored.body["days"] == 7
    older = api.call(
        "PUT",
        f"/channels/{cid}/history",
        {"statement": choice(days=3, now=api.clock.now() - 60)},
        signer=owner,
    )
    assert older.body["days"] == 7  # the newest choice stands, and the answer says so
    other = api.create_org(operator, "Autre mairie")
    other_keys, reply = api.activate(other["activation_code"], "Voisin")
    for method in ("GET", "PUT"):
        assert (
            api.call(method, f"/channels/{cid}/history", {"statement": choice()}, signer=other_keys).status
            == 404
        )
    voisin = messenger_for(api, other_keys, tmp_path / "voisin", dict(reply.body))
    theirs = voisin.create_channel("tribe", "Chez eux")["channel_id"]
    assert api.call("GET", f"/channels/{theirs}/history", signer=owner).status == 404


def web_verdict(
    messenger: Any, cid: str, statement: dict[str, Any], op: str = "history_choice", **more: Any
) -> Any:
    """What the web client (web/js/recent-history.js under node) makes of the statement, for the
    device behind ``messenger`` at its clock, from what the server answers it (GET /members, the
    log)."""
    verdict: Any = run_js(
        {
            "op": op,
            **more,
            **js_trust_view(messenger, cid),
            "channel_id": cid,
            "statement": statement,
            "now": int(messenger.clock()),
        }
    )[0]
    return verdict


def plant(container: Any, cid: str, statement: dict[str, Any], *, overwrite: bool = False) -> None:
    """The server's own store write, no check made (``overwrite``: even over a newer choice)."""
    choice = HistoryChoice(
        channel_id=cid,
        days=int(statement.get("days", 0)),
        issued_at=int(statement.get("issued_at", 0)),
        by_device=str(statement.get("by_device", "")),
        statement=statement,
    )
    records = container.followers._links
    if overwrite:
        key = keys.recent_history(cid)
        records._store.put(keys.record(key, choice.model_dump(mode="json")))
    else:  # no check made: to this server nothing is dated too far ahead
        records.save_history(choice, 2**62)


def forgeries(people: People, api: SignedApi, cid: str) -> list[dict[str, Any]]:
    """A 30-day choice the server makes: signed by a plain member's device, by a key of its own
    in the owner's device's name, unsigned, and for another tribe."""
    org_id, now = people.info["owner"]["org_id"], api.clock.now()
    ana = people.keys["ana"]
    owner = people.keys["owner"]
    by_member = history_choice(ana.signing, ana.device_id, org_id=org_id, channel_id=cid, days=30, now=now)
    impostor = DeviceKeys.generate()
    forged = history_choice(
        impostor.signing, owner.device_id, org_id=org_id, channel_id=cid, days=30, now=now
    )
    unsigned = {k: v for k, v in forged.items() if k != "sig"}
    other = people.owner.create_channel("tribe", "Autre")["channel_id"]
    elsewhere = history_choice(
        owner.signing, owner.device_id, org_id=org_id, channel_id=other, days=30, now=now
    )
    return [by_member, forged, unsigned, elsewhere]


@pytest.mark.parametrize("case", range(4))
def test_a_choice_the_server_forges_makes_no_author_share_older_state(
    people: People, api: SignedApi, container: Any, tmp_path: Path, case: int
) -> None:
    cid, url = public_tribe(people)
    people.join("ana")
    people.owner.add_member(cid, people.info["ana"]["member_id"])
    api.clock.advance(DAY)
    forged = forgeries(people, api, cid)[case]
    plant(container, cid, forged)
    assert (
        web_verdict(people.owner, cid, forged)["warning"]["code"] == "invalid_history"
    )  # the web client too
    people.owner.send_text(cid, "avant")
    api.clock.advance(DAY)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    people.owner.send_text(cid, "après")
    assert texts(lea, cid) == [None, "après"]
    assert "invalid_history" in [w["code"] for w in people.owner.trust.take_warnings()]
    assert people.owner.ring._snapshots == {}


def test_an_older_choice_the_server_replays_does_not_reopen_history(
    people: People, api: SignedApi, container: Any, tmp_path: Path
) -> None:
    cid, url = public_tribe(people)
    people.owner.set_recent_history(cid, 7)
    opened = container.followers._links.history(cid).statement
    api.clock.advance(60)
    people.owner.set_recent_history(cid, 0)
    plant(container, cid, opened, overwrite=True)
    people.owner.send_text(cid, "avant")
    api.clock.advance(DAY)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    people.owner.send_text(cid, "après")
    assert texts(lea, cid) == [None, "après"]


def test_a_choice_dated_ahead_is_refused_and_never_outlives_a_later_choice(
    people: People, api: SignedApi, container: Any
) -> None:
    """A manager's device with its clock a year ahead (or stolen before its revocation) signs a
    choice, and a server stores it without its 300 s check (23): neither client believes it, so
    it cannot outrank every real choice for a year, and the server's own store replaces it with
    the next real one instead of keeping it as "the newest"."""
    cid, _ = public_tribe(people)
    people.join("ana")
    people.owner.add_member(cid, people.info["ana"]["member_id"], "author")
    ana, org_id = people.keys["ana"], people.info["owner"]["org_id"]

    def choice(days: int, ahead: int) -> dict[str, Any]:
        now = api.clock.now() + ahead
        return history_choice(ana.signing, ana.device_id, org_id=org_id, channel_id=cid, days=days, now=now)

    near = choice(30, 290)  # within the clock skew: believed by both clients
    assert web_verdict(people.owner, cid, near)["days"] == 30
    ahead = choice(30, YEAR)
    plant(container, cid, ahead)
    assert people.owner.recent_history(cid, force=True) == 0  # not believed: read from joining
    warned = [w["message"] for w in people.owner.trust.take_warnings() if w["code"] == "invalid_history"]
    assert any("dated in the future" in m for m in warned), warned
    assert "dated in the future" in web_verdict(people.owner, cid, ahead)["warning"]["message"]
    api.clock.advance(60)
    answer = people.owner.set_recent_history(cid, 7)  # the owner's real, later choice
    assert answer["days"] == 7, "a choice dated a year ahead locks out every real choice for a year"
    assert people.owner.client.recent_history(cid)["days"] == 7  # the server kept the real one
    api.clock.advance(60)
    assert people.owner.set_recent_history(cid, 3)["days"] == 3  # and later ones after it


def test_a_choice_whose_signer_stopped_being_a_manager_falls_back_to_0_days(
    people: People, api: SignedApi, tmp_path: Path
) -> None:
    """Ana, an author of the tribe, opened 7 days; the owner's device believed it. Ana is then a
    plain member: the server still serves her choice, the newest, but neither client shares
    anything older with a new follower any more, and both say why."""
    cid, url = public_tribe(people)
    ana = people.join("ana")
    people.owner.add_member(cid, people.info["ana"]["member_id"], "author")
    assert ana.set_recent_history(cid, 7)["days"] == 7
    assert people.owner.recent_history(cid, force=True) == 7
    kept = people.owner.ring.window(cid)
    assert kept is not None and kept.by_device == people.keys["ana"].device_id
    people.owner.send_text(cid, "avant")
    signed = people.owner.client.recent_history(cid)["statement"]
    web_kept = {"days": 7, "issued_at": kept.issued_at, "by_device": kept.by_device}
    assert web_verdict(people.owner, cid, signed, "history_withdraws", kept=web_kept) is False
    api.clock.advance(60)
    people.owner.add_member(cid, people.info["ana"]["member_id"], "member")  # no longer a manager
    assert people.owner.client.recent_history(cid)["statement"] == signed  # still the newest served
    assert web_verdict(people.owner, cid, signed, "history_withdraws", kept=web_kept) is True
    assert web_verdict(people.owner, cid, signed, "history_withdraws", kept=None) is False
    people.owner.trust.take_warnings()
    lea = follow(api, url, tmp_path / "lea", "Léa")
    people.owner.send_text(cid, "après")  # asks again before sealing to Léa's device
    assert texts(lea, cid) == [None, "après"]
    assert people.owner.ring.window(cid).days == 0
    assert people.owner.ring._snapshots == {}
    warned = [w["message"] for w in people.owner.trust.take_warnings() if w["code"] == "invalid_history"]
    assert any("no longer a manager" in m for m in warned), warned
