"""A follower is nobody outside a tribe (docs/protocol.md, 16.3; attack review H2).

An organisation admin (or a group's author) signs a follower ticket naming a direct conversation
or a group, certifies a throwaway device with it, and a server puts that device on the roster:
in no signed log, so nobody would see a "joined" event. Clients seal to a follower only when the
channel's verified log is a ``tribe``; an honest server adds followers to tribes only."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.crypto import open_sender_key
from bocage.client.issuing import follower_cert, follower_ticket
from bocage.client.profile import DeviceKeys
from chalicelib.domain.channel import ChannelKind
from chalicelib.domain.followers import JoinTarget
from chalicelib.domain.organisation import Device
from chalicelib.errors import Forbidden
from tests.integration.test_malicious_server_js import decide
from tests.support import People


def spy_device(people: People, channel_id: str, now: int) -> tuple[DeviceKeys, Device]:
    """A device certified by a follower ticket the owner (an admin, not in the channel) signs."""
    org, owner = people.info["owner"]["org_id"], people.owner
    ticket = follower_ticket(owner.keys.signing, owner.device_id, org, channel_id, now, lifetime=86400)
    spy = DeviceKeys.generate()
    target = JoinTarget(
        server="", link="j_aaaaaaaaaaaaaaaa", org=org, channel=channel_id, ticket_seed=ticket.seed, root=""
    )
    cert = follower_cert(
        target,
        sign_public_key=spy.sign_public_key,
        box_public_key=spy.box_public_key,
        display_name="x",
        now=now,
    )
    device = Device(
        device_id=cert["device_id"],
        org_id=org,
        member_id=cert["follower_id"],
        name="spy",
        sign_public_key=spy.sign_public_key,
        box_public_key=spy.box_public_key,
        created_at=now,
        device_cert=cert,
        ticket=ticket.statement,
    )
    return spy, device


@pytest.mark.parametrize("kind", ["direct", "group"])
def test_no_follower_is_sealed_to_outside_a_tribe(people: People, container: Any, kind: str) -> None:
    alice, bob = people.join("alice"), people.join("bob")
    bob_id = people.info["bob"]["member_id"]
    if kind == "direct":
        cid = alice.open_direct(bob_id)["channel_id"]
    else:
        cid = alice.create_channel("group", "bureau")["channel_id"]
        alice.add_member(cid, bob_id, "author")
    bob.send_text(cid, "salut")
    spy, device = spy_device(people, cid, alice.trust.now())
    channel = container.channels.find(cid)
    with pytest.raises(Forbidden):  # an honest server: followers join tribes only
        container.channels.add_follower(channel, device, alice.trust.now())

    # A server that skips its own check: the device on the roster, as a follower's would be.
    container.channels.add_follower(
        channel.model_copy(update={"kind": ChannelKind.TRIBE}), device, alice.trust.now()
    )
    alice.rosters.forget(cid)
    alice.send_text(cid, "Bob, entre nous : je démissionne lundi")
    refused = [w for w in alice.trust.take_warnings() if w["device_id"] == device.device_id]
    assert [w["code"] for w in refused] == ["uncertified_follower"] and kind in refused[0]["message"]
    epoch = container.channels.epoch(cid).number
    to_spy = list(container.channels._sealed.sealed_to(cid, epoch, spy.device_id))
    opened = [
        open_sender_key(spy, k.model_dump(mode="json"), alice.keys.box_public_key, cid)
        for k in to_spy
        if k.sender_device == alice.device_id
    ]
    assert not opened, f"Alice's device sealed her chain of the {kind} to the admin's follower"

    # The web client (web/js/followers.js under node) decides the same for Alice's device.
    web = decide(alice, cid, fresh=True)
    assert web["recipients"] == [people.keys["bob"].device_id]
    assert [w["code"] for w in web["warnings"] if w.get("device_id") == device.device_id] == [
        "uncertified_follower"
    ]
