"""Public tribes and their followers (docs/protocol.md, section 16), through the real app on
SQLite and moto's DynamoDB, with the real Python client on both sides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bocage.client.api import ApiError
from bocage.client.api import join_body as api_join_body
from bocage.client.issuing import follower_cert, follower_ticket, membership_entry
from bocage.client.messenger import Messenger
from bocage.client.profile import DeviceKeys, Profile
from bocage.client.trust import join
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.membership_log import MembershipLogRecords
from chalicelib.domain.encoding import b64e
from chalicelib.domain.followers import parse_join_url
from chalicelib.domain.sources import SITE_SHARES
from chalicelib.errors import TooManyRequests
from chalicelib.services import followers
from chalicelib.services.followers import JoinRequest
from chalicelib.settings import Settings
from tests.support import InProcessClient, People, SignedApi, messenger_for, scan_all


def follow(api: SignedApi, url: str, directory: Path, name: str) -> Messenger:
    """A new follower's device, joined from the link as the CLI does."""
    keys, profile = DeviceKeys.generate(), Profile(directory)
    profile.save_keys(keys)
    client = InProcessClient(api, keys)
    result = join(
        client,
        profile,
        parse_join_url(url),
        keys,
        display_name=name,
        device_name="phone",
        now=api.clock.now(),
    )
    assert result.pop("warnings") == []
    profile.save_info({"server": "http://in-process.invalid", **result})
    return Messenger(profile, client=client, clock=api.clock.now)


def public_tribe(people: People) -> tuple[str, str]:
    cid = people.owner.create_channel("tribe", "La vie du village")["channel_id"]
    return cid, people.owner.publish(cid)["join_url"]


def join_body(
    url: str, keys: DeviceKeys, name: str = "Léa", now: int = 0, link: str | None = None, **changes: Any
) -> dict[str, Any]:
    """``POST /join`` as a client builds it (for ``link``, if given); ``changes`` spoil one part."""
    target = parse_join_url(url)
    keys_of = {"sign_public_key": keys.sign_public_key, "box_public_key": keys.box_public_key}
    cert = follower_cert(target, **keys_of, display_name=name, now=now)
    return {**api_join_body(link or target.link, keys, cert, device_name="phone"), **changes}


def test_a_follower_reads_from_joining_reacts_and_votes_but_never_posts(
    people: People, api: SignedApi, tmp_path: Path
) -> None:
    cid, url = public_tribe(people)
    people.owner.send_text(cid, "avant")
    lea = follow(api, url, tmp_path / "lea", "Léa")
    people.owner.send_text(cid, "Fête du village samedi")
    read = lea.read(cid)["messages"]
    assert [m.get("text") for m in read] == [None, "Fête du village samedi"]
    assert "no key" in read[0]["error"]  # sent before she joined: never readable
    assert read[1]["verified"] and read[1]["sender_name"] == "Maire"
    poll = people.owner.create_poll(cid, "Un marché le dimanche ?", ["Oui", "Non"])["poll_id"]
    lea.read(cid)
    lea.vote(cid, poll, [0])
    lea.react(cid, poll, "👍")
    results = people.owner.poll_results(cid, poll)
    assert results["counts"] == [1, 0] and results["voters"] == 1 and results["follower_voters"] == 1
    reactions = [m for m in people.owner.history(cid) if m["kind"] == "reaction"]
    assert reactions[0]["verified"] and reactions[0]["sender_name"] == "Léa"
    for attempt in (lambda: lea.send_text(cid, "moi aussi"), lambda: lea.create_poll(cid, "?", ["a", "b"])):
        with pytest.raises(ApiError) as refused:
            attempt()
        assert refused.value.status == 403
    assert lea.trust.take_warnings() == []


def test_a_follower_sees_no_directory_no_other_channel_and_no_member_route(
    people: People, api: SignedApi, tmp_path: Path
) -> None:
    cid, url = public_tribe(people)
    people.join("ana")  # a member in no public tribe: not for followers to see
    gid = people.owner.create_channel("group", "Conseil")["channel_id"]
    lea = follow(api, url, tmp_path / "lea", "Léa")
    follow(api, url, tmp_path / "max", "Max")
    assert [c["channel_id"] for c in lea.channels()] == [cid]
    listed = lea.client.request("GET", "/members")
    assert [m["member_id"] for m in listed["members"]] == [people.info["owner"]["member_id"]]
    keys = lea.keys
    for method, path in [
        ("POST", "/channels"),
        ("POST", "/invitations"),
        ("GET", "/audit"),
        ("GET", "/plan"),
        ("GET", f"/channels/{cid}/members"),
        ("GET", f"/channels/{cid}/seen"),
        ("GET", f"/channels/{cid}/public"),
        ("PUT", f"/channels/{cid}"),
        ("PUT", "/org"),
    ]:
        reply = api.call(method, path, {}, signer=keys)
        assert reply.status == 403, (method, path, reply.body)
        assert "follower" in reply.body["message"]
    assert api.call("GET", f"/channels/{gid}/messages", signer=keys).status == 403  # not theirs


def test_join_links_refuse_clearly_and_lose_nothing(people: People, api: SignedApi, tmp_path: Path) -> None:
    cid, url = public_tribe(people)
    stranger = DeviceKeys.generate()
    now = api.clock.now()
    assert (
        api.call("POST", "/join", join_body(url, stranger, now=now, link="j_aaaaaaaaaaaaaaaa")).status == 404
    )
    bad_proof = join_body(url, stranger, now=now, proof=b64e(bytes(64)))
    assert api.call("POST", "/join", bad_proof).status == 400
    other_key = join_body(url, DeviceKeys.generate(), now=now) | {"sign_public_key": stranger.sign_public_key}
    assert api.call("POST", "/join", other_key).status == 400  # the certificate names other keys
    first = api.call("POST", "/join", join_body(url, stranger, now=now))
    assert first.status == 201 and first.body["follower_id"].startswith("f_")
    again = api.call("POST", "/join", join_body(url, stranger, now=now))
    assert again.status == 201 and again.body["device_id"] == first.body["device_id"]  # a retry converges
    people.owner.client.revoke_join_link(cid)
    revoked = api.call("POST", "/join", join_body(url, DeviceKeys.generate(), now=now))
    assert revoked.status == 410 and "revoked" in revoked.body["message"]
    fresh = people.owner.publish(cid, cap=1, days=1)["join_url"]
    replaced = api.call("POST", "/join", join_body(url, DeviceKeys.generate(), now=now))
    assert replaced.status == 410 and "replaced" in replaced.body["message"]
    assert api.call("POST", "/join", join_body(fresh, DeviceKeys.generate(), now=now)).status == 201
    full = api.call("POST", "/join", join_body(fresh, DeviceKeys.generate(), now=now))
    assert full.status == 410 and "cap" in full.body["message"]
    status = people.owner.client.join_link(cid)
    assert (status["joined"], status["followers"], status["cap"]) == (1, 2, 1)
    newest = people.owner.publish(cid, days=1)["join_url"]
    api.clock.advance(86400)
    expired = api.call("POST", "/join", join_body(newest, DeviceKeys.generate(), now=api.clock.now()))
    assert expired.status == 410 and "expired" in expired.body["message"]


def test_only_managers_publish_and_only_tribes(people: People, api: SignedApi) -> None:
    cid = people.owner.create_channel("tribe", "Annonces")["channel_id"]
    ana = people.join("ana")
    people.owner.add_member(cid, people.info["ana"]["member_id"])
    with pytest.raises(ApiError) as refused:
        ana.publish(cid)
    assert refused.value.status == 403
    gid = people.owner.create_channel("group", "Conseil")["channel_id"]
    with pytest.raises(ApiError) as not_tribe:
        people.owner.publish(gid)
    assert not_tribe.value.status == 400
    owner = people.keys["owner"]
    ticket = follower_ticket(
        owner.signing, owner.device_id, people.info["owner"]["org_id"], gid, api.clock.now(), lifetime=60
    )
    wrong_channel = api.call("PUT", f"/channels/{cid}/public", {"ticket": ticket.statement}, signer=owner)
    assert wrong_channel.status == 400  # a ticket names its tribe
    assert api.call("GET", f"/channels/{cid}/public", signer=owner).status == 404  # not public yet


def test_another_organisations_ids_answer_404(
    people: People, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    cid, url = public_tribe(people)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    other = api.create_org(operator, "Autre mairie")
    other_keys, reply = api.activate(other["activation_code"], "Voisin")
    assert reply.status == 201
    theirs = api.call("POST", "/channels", {}, signer=other_keys)  # bodyless: only to show they are admins
    assert theirs.status == 400
    owner = people.keys["owner"]
    ticket = follower_ticket(
        owner.signing, owner.device_id, people.info["owner"]["org_id"], cid, api.clock.now(), lifetime=60
    )
    for method, body in [("GET", None), ("DELETE", None), ("PUT", {"ticket": ticket.statement})]:
        assert api.call(method, f"/channels/{cid}/public", body, signer=other_keys).status == 404
    voisin = messenger_for(api, other_keys, tmp_path / "voisin", dict(reply.body))
    their_tribe = voisin.create_channel("tribe", "Chez eux")["channel_id"]
    for path in (f"/channels/{their_tribe}/messages", f"/channels/{their_tribe}/roster"):
        assert api.call("GET", path, signer=lea.keys).status == 404


def test_another_organisations_device_keys_cannot_join_a_tribe_here(
    people: People, api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    """Device keys are registered once, in one organisation: a follower of A, or a member's device
    of A, scanning B's poster gets 409 and a way out, and B's tribe, roster and count are as before
    (a device must never be a follower of B under A's records, nor move there)."""
    cid_a, url_a = public_tribe(people)
    lea = follow(api, url_a, tmp_path / "lea", "Léa")
    created = api.create_org(operator, "Autre mairie")
    b_keys, reply = api.activate(created["activation_code"], "Voisin")
    voisin = messenger_for(api, b_keys, tmp_path / "voisin", dict(reply.body))
    cid_b = voisin.create_channel("tribe", "Chez eux")["channel_id"]
    url_b = voisin.publish(cid_b)["join_url"]
    roster_before = voisin.client.roster(cid_b)
    for registered in (lea.keys, people.keys["owner"]):  # A's follower, then A's owner's device
        refused = api.call("POST", "/join", join_body(url_b, registered, now=api.clock.now()))
        assert refused.status == 409, refused.body
        assert refused.body == {
            "error": "conflict",
            "message": "these device keys are already registered; create a new profile",
        }
    assert voisin.client.roster(cid_b) == roster_before
    status = voisin.client.join_link(cid_b)
    assert (status["joined"], status["followers"]) == (0, 0)
    assert voisin.client.request("GET", "/plan")["followers"] == 0
    assert [c["channel_id"] for c in lea.channels()] == [cid_a]  # still A's follower, of A's tribe only
    # A's link with a certificate from B's ticket: not signed by A's ticket key, 400; B's tribe
    # id is no join link: 404, as an unknown link.
    stranger = DeviceKeys.generate()
    crossed = join_body(url_b, stranger, now=api.clock.now(), link=parse_join_url(url_a).link)
    answer = api.call("POST", "/join", crossed)
    assert answer.status == 400 and "does not verify" in answer.body["message"], answer.body
    not_a_link = join_body(url_b, stranger, now=api.clock.now(), link=cid_b)
    assert api.call("POST", "/join", not_a_link).status == 404
    assert api.call("POST", "/join", join_body(url_b, stranger, now=api.clock.now())).status == 201


def test_leaving_deletes_the_follower_and_keeps_the_epoch(
    people: People, api: SignedApi, tmp_path: Path, container: Any
) -> None:
    cid, url = public_tribe(people)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    people.owner.send_text(cid, "bonjour")
    epoch = people.owner.client.roster(cid)["epoch"]
    device_id, follower_id = lea.device_id, lea.trust.member_id
    assert people.owner.client.request("GET", "/plan")["followers"] == 1
    assert (
        api.call("DELETE", "/follower", signer=people.keys["owner"]).status == 403
    )  # members do not leave so
    left = lea.client.leave_as_follower()
    assert left == {"follower_id": follower_id, "device_id": device_id, "left": True}
    assert api.call("GET", "/channels", signer=lea.keys).status == 401
    assert people.owner.client.roster(cid)["epoch"] == epoch  # no rotation: anyone may follow again
    assert people.owner.client.request("GET", "/plan")["followers"] == 0
    assert people.owner.client.join_link(cid)["followers"] == 0
    leftovers = [
        i
        for i in scan_all(container.store)
        if (
            device_id in str(i.get("sk")) + str(i.get("pk"))
            or follower_id in str(i.get("pk")) + str(i.get("sk"))
        )
        and not str(i["pk"]).startswith("NONCE#")  # spent token nonces expire within minutes
    ]
    assert leftovers == []  # device, copies, memberships, roster entry and sealed keys: all gone


def test_followers_are_never_billed_nor_listed_to_members(
    api: SignedApi, operator: Any, tmp_path: Path
) -> None:
    created = api.create_org(operator, "Mairie abonnée", plan="pro")
    keys, reply = api.activate(created["activation_code"], "Maire")
    owner = messenger_for(api, keys, tmp_path / "owner", dict(reply.body))
    cid = owner.create_channel("tribe", "La vie du village")["channel_id"]
    url = owner.publish(cid)["join_url"]
    for name in ("Léa", "Max", "Zoé"):
        follow(api, url, tmp_path / name, name)
    members = owner.client.request("GET", "/members")["members"]
    assert [m["member_id"] for m in members] == [reply.body["member_id"]]
    assert [m["member_id"] for m in owner.client.request("GET", f"/channels/{cid}/members")["members"]] == [
        reply.body["member_id"]
    ]
    plan = owner.client.request("GET", "/plan")
    assert plan["followers"] == 3
    assert plan["month_to_date"]["billable_users"] == 1  # the owner alone


def test_followers_do_not_see_each_other_in_the_roster(
    people: People, api: SignedApi, tmp_path: Path
) -> None:
    """docs/protocol.md 16.3: a follower's roster lists the tribe's members' devices and their own,
    never another follower's (whose name and keys are in their certificate); members see all."""
    cid, url = public_tribe(people)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    tom = follow(api, url, tmp_path / "tom", "Tom")
    owner_device = people.keys["owner"].device_id
    seen_by_lea = {d["device_id"] for d in lea.client.roster(cid)["devices"]}
    assert seen_by_lea == {owner_device, lea.device_id}
    seen_by_owner = {d["device_id"] for d in people.owner.client.roster(cid)["devices"]}
    assert seen_by_owner == {owner_device, lea.device_id, tom.device_id}


def test_a_follower_follows_a_second_public_tribe_of_the_organisation_and_reads_both(
    people: People, api: SignedApi, tmp_path: Path
) -> None:
    """The same device joins a second poster's tribe: it is added there (the answer is not a
    success for nothing), under that tribe's own ticket, and reads both; leaving leaves both."""
    first, url = public_tribe(people)
    second = people.owner.create_channel("tribe", "Le marché")["channel_id"]
    second_url = people.owner.publish(second)["join_url"]
    lea = follow(api, url, tmp_path / "lea", "Léa")
    joined = lea.follow(parse_join_url(second_url), "Léa")
    assert (joined["channel_id"], joined["device_id"]) == (second, lea.device_id)
    assert sorted(c["channel_id"] for c in lea.channels()) == sorted([first, second])
    again = lea.follow(parse_join_url(second_url), "Léa")  # a retry converges
    assert again["device_id"] == lea.device_id
    assert people.owner.client.join_link(second)["followers"] == 1
    assert people.owner.client.request("GET", "/plan")["followers"] == 1  # one follower, two tribes
    people.owner.send_text(first, "Fête samedi")
    people.owner.send_text(second, "Marché dimanche")
    assert [m.get("text") for m in lea.read(first)["messages"]] == ["Fête samedi"]
    assert [m.get("text") for m in lea.read(second)["messages"]] == ["Marché dimanche"]
    poll = people.owner.create_poll(second, "Des forains ?", ["Oui", "Non"])["poll_id"]
    lea.read(second)
    lea.vote(second, poll, [1])
    results = people.owner.poll_results(second, poll)
    assert (results["counts"], results["follower_voters"]) == ([0, 1], 1)
    assert lea.poll_results(second, poll)["counts"] == [0, 1]  # her own vote counts in her tally
    assert people.owner.trust.take_warnings() == [] and lea.trust.take_warnings() == []
    lea.client.leave_as_follower()
    for cid in (first, second):
        devices = {d["device_id"] for d in people.owner.client.roster(cid)["devices"]}
        assert lea.device_id not in devices
        assert people.owner.client.join_link(cid)["followers"] == 0


def test_a_followers_listing_names_who_signed_the_log_past_its_500th_entry(
    people: People, api: SignedApi, app_store: Any, tmp_path: Path
) -> None:
    """A trimmed listing (16.3, and a guest's, 21) names every signer of the tribe's log, however
    long: an admin outside the tribe who signed entry 512 is listed, so followers verify it."""
    cid, url = public_tribe(people)
    people.join("bob")
    zoe = people.join("zoe", role="admin")  # not in the tribe: reachable only as a log signer
    people.join("carl")
    owner, org_id = people.keys["owner"], people.info["owner"]["org_id"]
    log = MembershipLogRecords(app_store)
    previous, fillers = log.head(cid), []
    for n in range(510):  # the owner's device adds and removes Bob, as many times
        op, role = ("add", "member") if n % 2 == 0 else ("remove", None)
        previous = membership_entry(
            owner.signing, owner.device_id, org_id=org_id, channel_id=cid, previous=previous,
            op=op, member_id=people.info["bob"]["member_id"], role=role, now=api.clock.now(),
        )  # fmt: skip
        fillers.append(keys.record(keys.membership_entry(cid, previous["seq"]), {"entry": previous}))
    app_store.batch_write(fillers)
    bob_id, zoe_id = people.info["bob"]["member_id"], people.info["zoe"]["member_id"]
    log.note_member(cid, bob_id)  # as the service notes each member an entry names
    zoe.add_member(cid, people.info["carl"]["member_id"])
    head = log.head(cid) or {}
    assert head["seq"] == 511 and head["by_device"] == people.keys["zoe"].device_id

    def verified_by_a_new_follower(name: str) -> None:
        follower = follow(api, url, tmp_path / name, name)
        listed = [m["member_id"] for m in follower.client.request("GET", "/members")["members"]]
        assert {zoe_id, bob_id} <= set(listed)
        assert people.info["carl"]["member_id"] in follower.trust.membership(cid).members
        assert follower.trust.take_warnings() == []

    verified_by_a_new_follower("Léa")
    named = [
        item["sk"]
        for item in scan_all(app_store)
        if item["pk"] == f"CHAN#{cid}" and "LOGMEMBER" in item["sk"]
    ]
    assert len(named) == 5  # the owner, Bob, Zoé, Carl and the set's completion mark
    app_store.batch_write(deletes=[(f"CHAN#{cid}", sk) for sk in named])  # a tribe older than this record
    verified_by_a_new_follower("Max")  # gathered once from the whole log (two pages), then kept
    assert app_store.get(*keys.log_members_complete(cid)) is not None


def test_a_tribe_takes_at_most_its_hourly_cap_of_new_followers(
    people: People, api: SignedApi, container: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever their addresses (16.2): beyond the deployment's cap, 429 until the next hour;
    a retry of a join that went through is not a new follower."""
    assert Settings.from_env({}).joins_per_tribe_hour == 2000  # a poster's first day
    assert Settings.from_env({"BOCAGE_JOINS_PER_TRIBE_HOUR": "2"}).joins_per_tribe_hour == 2
    container.followers._joins_per_hour = 2  # as wiring.build passes that setting
    monkeypatch.setattr(followers, "ADDRESS_SHARE", 1)  # one address may take it all: the tribe's cap alone
    cid, url = public_tribe(people)
    first = DeviceKeys.generate()
    body = join_body(url, first, now=api.clock.now())
    assert api.call("POST", "/join", body).status == 201
    follow(api, url, tmp_path / "max", "Max")
    refused = api.call("POST", "/join", join_body(url, DeviceKeys.generate(), now=api.clock.now()))
    assert refused.status == 429 and "new followers this hour" in refused.body["message"]
    assert api.call("POST", "/join", body).status == 201  # the first one's retry converges
    assert people.owner.client.join_link(cid)["followers"] == 2
    api.clock.advance(3600)
    follow(api, url, tmp_path / "lea", "Léa")  # the next hour's count starts again


def test_one_address_takes_only_its_share_of_a_tribe_s_hour(
    people: People, api: SignedApi, container: Any, tmp_path: Path
) -> None:
    """Whoever holds the poster cannot lock real joiners out from one address (16.2): past a tenth
    of the tribe's hourly cap from the same address, 429, and those refusals leave the tribe's
    cap untouched, so people joining from elsewhere still get in."""
    container.followers._joins_per_hour = 20  # a share of 2 per address
    cid, url = public_tribe(people)
    for _ in range(2):  # through the API: the address is the request's (the test client's 127.0.0.1)
        assert (
            api.call("POST", "/join", join_body(url, DeviceKeys.generate(), now=api.clock.now())).status
            == 201
        )
    for _ in range(30):
        refused = api.call("POST", "/join", join_body(url, DeviceKeys.generate(), now=api.clock.now()))
        assert refused.status == 429 and "this address" in refused.body["message"], refused.body

    def join_from(address: str) -> Any:
        request = JoinRequest(**join_body(url, DeviceKeys.generate(), now=api.clock.now()))
        return container.followers.join(request, address)

    for n in range(18):  # the other 18 of the hour, two from each of nine other addresses
        assert join_from(f"203.0.113.{n // 2}")["channel_id"] == cid
    with pytest.raises(TooManyRequests, match="new followers this hour"):
        join_from("198.51.100.1")  # now the tribe's hour is full, whatever the address
    assert people.owner.client.join_link(cid)["followers"] == 20
    api.clock.advance(3600)
    assert api.call("POST", "/join", join_body(url, DeviceKeys.generate(), now=api.clock.now())).status == 201


def test_one_ipv6_host_does_not_fill_a_tribe_s_hour(people: People, api: SignedApi, container: Any) -> None:
    """An IPv6 host picks any address of its /64 (16.2): the share is the /64's, not each
    address's, so one person with the poster still takes only a tenth of the tribe's hour; the
    next /64 is someone else, and an IPv4-mapped address is its IPv4 address."""
    container.followers._joins_per_hour = 20  # a share of 2 per source
    cid, url = public_tribe(people)

    def join_from(address: str) -> Any:
        request = JoinRequest(**join_body(url, DeviceKeys.generate(), now=api.clock.now()))
        return container.followers.join(request, address)

    admitted = 0
    for n in range(20):  # one attacker, one /64: a fresh source address for every join
        try:
            join_from(f"2001:db8:1:2::{n + 1:x}")
            admitted += 1
        except TooManyRequests:
            pass
    assert admitted <= 2, f"one IPv6 /64 took {admitted} of the tribe's 20 joins this hour"
    assert join_from("2001:db8:1:3::1")["channel_id"] == cid  # the next /64: another source
    join_from("203.0.113.9")
    join_from("203.0.113.9")
    with pytest.raises(TooManyRequests, match="this address"):
        join_from("::ffff:203.0.113.9")  # the same IPv4 host, as a dual-stack socket names it


def test_one_ipv6_48_takes_a_few_shares_however_many_64s_it_holds(
    people: People, api: SignedApi, container: Any
) -> None:
    """A site's /48 holds 65,536 /64s (16.2): its /64s together take SITE_SHARES shares of the
    tribe's hour, a /64 refused on its own share spends none of them, and another /48 is not
    charged for it."""
    container.followers._joins_per_hour = 20  # a share of 2 per source, 8 per /48
    cid, url = public_tribe(people)

    def join_from(address: str) -> Any:
        request = JoinRequest(**join_body(url, DeviceKeys.generate(), now=api.clock.now()))
        return container.followers.join(request, address)

    def admitted(addresses: list[str]) -> int:
        taken = 0
        for address in addresses:
            try:
                join_from(address)
                taken += 1
            except TooManyRequests as refused:
                assert "this address" in str(refused)
        return taken

    assert admitted([f"2001:db8:1:0::{n + 1:x}" for n in range(5)]) == 2  # one /64: its own share
    fresh_64s = [f"2001:db8:1:{n + 1:x}::1" for n in range(30)]  # one host, a fresh /64 each time
    assert 2 + admitted(fresh_64s) == 2 * SITE_SHARES
    with pytest.raises(TooManyRequests, match=r"network \(2001:db8:1::/48\) brought 8"):
        join_from("2001:db8:1:ff::1")
    assert join_from("2001:db8:2:1::1")["channel_id"] == cid  # another /48: its own shares
    assert people.owner.client.join_link(cid)["followers"] == 2 * SITE_SHARES + 1
