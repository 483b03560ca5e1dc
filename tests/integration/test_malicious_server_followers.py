"""The server as an attacker against public tribes (docs/protocol.md, 16.5): it writes follower
devices straight into the store and rosters, and members' devices must seal their keys only to
followers a manager's join ticket certifies for that very tribe. Each case asserts on the sealed
keys stored, not only on the warning."""

from __future__ import annotations

from typing import Any

from bocage.client.issuing import follower_cert, follower_ticket
from bocage.client.profile import DeviceKeys
from chalicelib.domain.encoding import b64d
from chalicelib.domain.followers import JoinTarget, parse_join_url
from chalicelib.domain.ids import follower_id_for
from chalicelib.domain.organisation import Device
from tests.integration.test_malicious_server import codes, plant_device, sealed_to
from tests.support import People, SignedApi


def follower_device(
    keys: DeviceKeys, cert: dict[str, Any], ticket: dict[str, Any], org_id: str, **changes: Any
) -> Device:
    fields: dict[str, Any] = {
        "device_id": keys.device_id,
        "org_id": org_id,
        "member_id": follower_id_for(b64d(keys.sign_public_key)),
        "name": "planted",
        "sign_public_key": keys.sign_public_key,
        "box_public_key": keys.box_public_key,
        "created_at": 1,
        "device_cert": cert,
        "ticket": ticket,
    }
    return Device(**{**fields, **changes})


def certified(url: str, keys: DeviceKeys, now: int) -> dict[str, Any]:
    keys_of = {"sign_public_key": keys.sign_public_key, "box_public_key": keys.box_public_key}
    return follower_cert(parse_join_url(url), **keys_of, display_name="Intrus", now=now)


def web_refuses(people: People, cid: str, device_ids: list[str]) -> list[str]:
    """The web client's decision (web/js/followers.js, under node) for the owner's device: none of
    these devices gets the key and each is reported; returns who does get it."""
    from tests.integration.test_malicious_server_js import decide

    decided = decide(people.owner, cid, fresh=True)
    for device_id in device_ids:
        assert device_id not in decided["recipients"]
        assert "uncertified_follower" in [
            w["code"] for w in decided["warnings"] if w.get("device_id") == device_id
        ]
    recipients: list[str] = decided["recipients"]
    return recipients


def setup_tribes(people: People, container: Any) -> tuple[str, str, str, dict[str, Any]]:
    """A public tribe (with its poster's link, which anyone may hold) and a private one."""
    public = people.owner.create_channel("tribe", "Village")["channel_id"]
    url = people.owner.publish(public)["join_url"]
    private = people.owner.create_channel("tribe", "Élus")["channel_id"]
    ticket = container.followers._links.of_channel(public).ticket
    return public, private, url, ticket


def test_a_public_tribes_follower_planted_in_a_private_tribe_gets_nothing(
    people: People, container: Any
) -> None:
    _, private, url, ticket = setup_tribes(people, container)
    intruder = DeviceKeys.generate()
    org_id = people.info["owner"]["org_id"]
    plant_device(container, private, follower_device(intruder, certified(url, intruder, 1), ticket, org_id))
    people.owner.send_text(private, "séance à huis clos")
    assert sealed_to(container, private, intruder.device_id) == []
    assert "uncertified_follower" in codes(people.owner)


def test_a_follower_ticket_the_server_forged_or_a_plain_member_signed_is_refused(
    people: People, container: Any, api: Any
) -> None:
    public, _, _, genuine = setup_tribes(people, container)
    org_id = people.info["owner"]["org_id"]
    ana = people.join("ana")
    people.owner.add_member(public, people.info["ana"]["member_id"])
    ana_keys = people.keys["ana"]
    # A plain member's device signs a join ticket (the honest server refuses it; this one stores it).
    by_ana = follower_ticket(
        ana_keys.signing, ana_keys.device_id, org_id, public, api.clock.now(), lifetime=600
    )
    # The server signs one with its own key under the owner's device id.
    forged = follower_ticket(
        DeviceKeys.generate().signing, genuine["issuer_device"], org_id, public, api.clock.now(), lifetime=600
    )
    planted = []
    for ticket in (by_ana, forged):
        keys = DeviceKeys.generate()
        target = JoinTarget("https://x.invalid", "j_aaaaaaaaaaaaaaaa", org_id, public, ticket.seed, "root")
        keys_of = {"sign_public_key": keys.sign_public_key, "box_public_key": keys.box_public_key}
        cert = follower_cert(target, **keys_of, display_name="Faux", now=api.clock.now())
        plant_device(container, public, follower_device(keys, cert, ticket.statement, org_id))
        planted.append(keys.device_id)
    people.owner.send_text(public, "bonjour le village")
    ana.read(public)
    for device_id in planted:
        assert sealed_to(container, public, device_id) == []
    assert "uncertified_follower" in codes(people.owner)
    web_refuses(people, public, planted)


def test_a_genuine_followers_keys_swapped_by_the_server_get_nothing(people: People, container: Any) -> None:
    public, _, url, ticket = setup_tribes(people, container)
    org_id = people.info["owner"]["org_id"]
    follower, server_box = DeviceKeys.generate(), DeviceKeys.generate()
    cert = certified(url, follower, 1)
    # The certificate is the follower's; the roster carries the server's box key to open what is sealed.
    swapped = follower_device(follower, cert, ticket, org_id, box_public_key=server_box.box_public_key)
    plant_device(container, public, swapped)
    people.owner.send_text(public, "bonjour")
    assert sealed_to(container, public, follower.device_id) == []
    assert "uncertified_follower" in codes(people.owner)
    web_refuses(people, public, [follower.device_id])


def test_a_follower_certified_after_the_link_expired_gets_nothing(people: People, container: Any) -> None:
    public, _, url, ticket = setup_tribes(people, container)
    org_id = people.info["owner"]["org_id"]
    late = DeviceKeys.generate()
    cert = certified(url, late, int(ticket["expires_at"]) + 1)
    plant_device(container, public, follower_device(late, cert, ticket, org_id))
    people.owner.send_text(public, "bonjour")
    assert sealed_to(container, public, late.device_id) == []
    # ...while one certified in time, planted the same way, does get the key: the check is the
    # certificate, not the way the device arrived.
    timely = DeviceKeys.generate()
    plant_device(container, public, follower_device(timely, certified(url, timely, 1), ticket, org_id))
    people.owner.send_text(public, "et encore")
    assert len(sealed_to(container, public, timely.device_id)) == 1
    assert timely.device_id in web_refuses(people, public, [late.device_id])


def test_the_web_client_seals_to_the_followers_the_python_client_does(
    people: People, container: Any, api: Any, tmp_path: Any
) -> None:
    """web/js/followers.js applies bocage/client/followers.py's rules: in the public tribe it seals
    to the genuine follower and to one the server planted with a certificate the link signed (the
    certificate is what counts), and to a member; in the private tribe, a follower the server
    planted with the public link's ticket gets nothing and is reported."""
    from tests.integration.test_followers import follow
    from tests.integration.test_malicious_server_js import decide

    public, private, url, ticket = setup_tribes(people, container)
    genuine = follow(api, url, tmp_path / "lea", "Léa")
    planted = DeviceKeys.generate()
    org_id = people.info["owner"]["org_id"]
    plant_device(container, public, follower_device(planted, certified(url, planted, 1), ticket, org_id))
    ana = people.join("ana")
    people.owner.add_member(public, people.info["ana"]["member_id"])
    people.owner.send_text(public, "bonjour")  # the Python client's decision, in the store
    ana.read(public)
    decided = decide(people.owner, public, fresh=True)
    expected = sorted([people.keys["ana"].device_id, genuine.device_id, planted.device_id])
    assert decided["recipients"] == expected
    assert sorted(d for d in expected if sealed_to(container, public, d)) == expected  # as Python sealed

    intruder = DeviceKeys.generate()
    plant_device(container, private, follower_device(intruder, certified(url, intruder, 1), ticket, org_id))
    refused = decide(people.owner, private, fresh=True)
    assert intruder.device_id not in refused["recipients"]
    assert [w["code"] for w in refused["warnings"] if w.get("device_id") == intruder.device_id] == [
        "uncertified_follower"
    ]


def test_a_follower_verified_in_one_tribe_is_no_follower_in_another(
    people: People, container: Any, api: Any, tmp_path: Any
) -> None:
    """The server holds the poster like anyone: it follows the public tribe, then adds its
    follower to the private tribe. Verified once in the public tribe, that follower must not
    be taken for one in the private tribe: its reaction there is not shown as verified, and
    its sender key there is not opened (docs/protocol.md, 16.3: a ticket certifies one tribe)."""
    from tests.integration.test_followers import follow

    public, private, url, _ = setup_tribes(people, container)
    spy = follow(api, url, tmp_path / "spy", "Intrus")
    post = people.owner.send_text(public, "bonjour le village")["message_id"]
    spy.read(public)
    spy.react(public, post, "👍")
    shown = [m for m in people.owner.history(public) if m["kind"] == "reaction"]
    assert shown[0]["verified"] and shown[0]["sender_name"] == "Intrus"  # a genuine follower there
    secret = people.owner.send_text(private, "séance à huis clos")["message_id"]
    planted = container.orgs.get_device(spy.device_id)
    container.channels.add_follower(container.channels.find(private), planted, api.clock.now())
    spy.react(private, secret, "👀")
    reactions = [m for m in people.owner.history(private) if m["kind"] == "reaction"]
    assert len(reactions) == 1
    assert not reactions[0]["verified"] and reactions[0]["sender_name"] is None
    assert "uncertified_follower" in codes(people.owner)
    assert sealed_to(container, private, spy.device_id) == []


def test_a_post_or_deletion_stored_in_a_followers_name_is_not_applied(
    people: People, api: SignedApi, container: Any, tmp_path: Any
) -> None:
    """Followers react and vote, nothing more (16.3). A server that stores a follower's genuine
    signature on a post or a 'delete for everyone' (the API refuses both) gets neither shown nor
    applied: the mayor's post stays."""
    from chalicelib.adapters.records.messages import MessageRecords
    from chalicelib.domain.frames import StoredMessage
    from tests.integration.test_followers import follow, public_tribe

    cid, url = public_tribe(people)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    post = people.owner.send_text(cid, "Conseil municipal jeudi")
    lea.read(cid)
    records = MessageRecords(container.store)
    for seq, (kind, content, target) in enumerate(
        [
            ("delete", {"type": "delete", "target": post["message_id"]}, post["message_id"]),
            ("message", {"type": "text", "text": "Annulé !"}, None),
        ],
        start=post["seq"] + 1,
    ):
        envelope = lea.seal(cid, f"forged-{kind}-0001", content, kind, target)
        now = api.clock.now()
        stamps = {"seq": seq, "sender_member": lea.trust.member_id, "stored_at": now}
        stamps["expires_at"] = now + 86400
        records.add(StoredMessage.model_validate({**envelope.model_dump(), **stamps}))
    shown = people.owner.read(cid)["messages"]
    assert [m.get("text") for m in shown] == ["Conseil municipal jeudi", None, None]
    assert all("only react and vote" in m["error"] for m in shown[1:])
    assert "Conseil municipal jeudi" in [m.get("text") for m in people.owner.history(cid)]


def test_a_follower_ticket_dated_before_the_tribe_was_created_is_refused(
    people: People, container: Any, api: Any
) -> None:
    """A removed admin's old device and the server can date a ticket before the removal, when the
    device could still sign; the tribe's signed creation bounds that (16.3): a ticket dated more
    than ENTRY_ORDER_SKEW_SECONDS before it reaches no tribe made after the removal."""
    api.clock.advance(3600)  # the owner's device was certified an hour before the tribe
    public, _, _, _ = setup_tribes(people, container)
    org_id = people.info["owner"]["org_id"]
    owner = people.keys["owner"]
    planted = {}
    for back in (500, 700):  # clocks differ: 500 s before the creation is a real ticket, 700 is not
        at = api.clock.now() - back
        ticket = follower_ticket(owner.signing, owner.device_id, org_id, public, at, lifetime=3600)
        keys = DeviceKeys.generate()
        target = JoinTarget("https://x.invalid", "j_aaaaaaaaaaaaaaaa", org_id, public, ticket.seed, "root")
        keys_of = {"sign_public_key": keys.sign_public_key, "box_public_key": keys.box_public_key}
        cert = follower_cert(target, **keys_of, display_name=f"Lecteur {back}", now=at + 10)
        plant_device(container, public, follower_device(keys, cert, ticket.statement, org_id))
        planted[back] = keys.device_id
    people.owner.send_text(public, "bonjour le village")
    assert sealed_to(container, public, planted[500]) != []
    assert sealed_to(container, public, planted[700]) == []
    assert "uncertified_follower" in codes(people.owner)
    assert planted[500] in web_refuses(people, public, [planted[700]])


def test_a_follower_certified_over_a_members_keys_does_not_take_her_device_over(
    people: People, container: Any, api: Any
) -> None:
    """Anyone with the poster can certify a "follower" over a member's public keys (they are no
    secret). A server listing that follower in the tribe, under her device id, must not get her
    vote counted as that follower's: both clients refuse the follower and keep the device hers."""
    public, _, url, ticket = setup_tribes(people, container)
    org_id = people.info["owner"]["org_id"]
    ana = people.join("ana")
    people.owner.add_member(public, people.info["ana"]["member_id"])
    poll = people.owner.create_poll(public, "Un marché le dimanche ?", ["Oui", "Non"])["poll_id"]
    ana.read(public)
    ana.vote(public, poll, [1])
    taken = people.keys["ana"]
    plant_device(
        container, public, follower_device(taken, certified(url, taken, api.clock.now()), ticket, org_id)
    )
    results = people.owner.poll_results(public, poll)
    assert (results["counts"], results["voters"], results["follower_voters"]) == ([0, 1], 1, 0), results
    refused = [w for w in people.owner.trust.take_warnings() if w["code"] == "uncertified_follower"]
    assert any("a certified member device's" in w["message"] for w in refused), refused
    from tests.integration.test_malicious_server_js import decide

    decided = decide(people.owner, public, fresh=True)
    assert [w["code"] for w in decided["warnings"] if w.get("device_id") == taken.device_id] == [
        "uncertified_follower"
    ]
