"""Attack (review): an organisation admin and the server read any DIRECT conversation (or any
group) unseen, through a "follower" (docs/protocol.md, 14.1: "An org admin may sign an `add`
anywhere else; here it is refused all the same"; 16: followers are a *public tribe's*).

Neither client checks that a channel whose roster carries a follower device is a tribe:
``verified_follower`` (bocage/client/followers.py:27) and ``Trust.recipients`` /
``Trust._follower`` (bocage/client/trust.py:373-377, 405), and the web ``tribeFollower`` /
followers.js, accept a follower whose ticket names the channel and was signed by an admin (or an
author of that channel), whatever the channel's verified ``kind``. So an admin signs a follower
ticket naming Alice and Bob's direct conversation, certifies a throwaway device with it, and the
server puts that device on the conversation's roster: Alice's device seals her chain to it. The
follower is in no signed log, so nobody sees a "joined" event."""

from __future__ import annotations

from typing import Any

from bocage.client.crypto import open_sender_key
from bocage.client.issuing import follower_cert, follower_ticket
from bocage.client.profile import DeviceKeys
from chalicelib.domain.followers import JoinTarget
from chalicelib.domain.organisation import Device
from tests.support import People


def test_no_follower_is_sealed_to_in_a_direct_conversation(people: People, container: Any) -> None:
    alice, bob = people.join("alice"), people.join("bob")
    org = people.info["owner"]["org_id"]
    dm = alice.open_direct(people.info["bob"]["member_id"])["channel_id"]
    bob.send_text(dm, "salut")

    # The owner (an admin, in no way part of this conversation) signs a follower ticket for it.
    now = alice.trust.now()
    owner = people.owner
    ticket = follower_ticket(owner.keys.signing, owner.device_id, org, dm, now, lifetime=86400)
    spy = DeviceKeys.generate()
    target = JoinTarget(
        server="", link="j_aaaaaaaaaaaaaaaa", org=org, channel=dm, ticket_seed=ticket.seed, root=""
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
    # The server's part: the device on the direct conversation's roster, as a follower's would be.
    container.channels.add_follower(container.channels.find(dm), device, now)

    alice.rosters.forget(dm)
    alice.send_text(dm, "Bob, entre nous : je démissionne lundi")
    epoch = container.channels.epoch(dm).number
    to_spy = list(container.channels._sealed.sealed_to(dm, epoch, spy.device_id))
    opened = [
        open_sender_key(spy, k.model_dump(mode="json"), alice.keys.box_public_key, dm)
        for k in to_spy
        if k.sender_device == alice.device_id
    ]
    assert not opened, "Alice's device sealed her chain of the direct conversation to the admin's follower"
