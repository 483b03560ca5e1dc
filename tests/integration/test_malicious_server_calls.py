"""The server as an attacker on calls (docs/protocol.md, 19.3 and 19.4): it can push any ``call``
frame to any connection, plant a device on a roster, name another member as a frame's sender,
replay what a device sealed, or make a signal up. The client acts on a signal only when it is
sealed to this device by a device its trust view certifies, of a member of the channel's signed
membership, for this channel, call and signal, and (without media parameters) made within
minutes; it never seals anything to a device that is not certified."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.calls import FRESH_SECONDS, UntrustedSignal, new_call_id
from bocage.client.crypto import seal_call_signal
from bocage.client.profile import DeviceKeys
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.frames import CallFrame
from chalicelib.domain.organisation import Device, Plan
from tests.browser.test_trust_compat import run_js
from tests.support import People, SignedApi, js_trust_view


@pytest.fixture
def group(people: People, container: Any) -> tuple[People, Any, str]:
    container.orgs.set_plan(people.info["owner"]["org_id"], Plan.PRO)
    bob = people.join("bob")
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    return people, bob, cid


def frame(cid: str, device: str, member: str, signal: str = "ring", **extra: Any) -> CallFrame:
    return CallFrame(
        channel_id=cid,
        call_id=new_call_id(),
        signal=signal,
        from_device=device,
        from_member=member,
        at=1,
        **extra,
    )


def sealed_by(sender: Any, cid: str, to: Any, signal: str = "ring", call_id: str | None = None) -> CallFrame:
    """The frame the server relays for a real signal of ``sender``'s client to device ``to``."""
    action = sender.calls.action(cid, call_id or new_call_id(), signal, [to.device_id])
    (target,) = [t for t in action.to if t.device_id == to.device_id]
    return CallFrame(
        channel_id=cid,
        call_id=action.call_id,
        signal=signal,
        from_device=sender.device_id,
        from_member=sender.info["member_id"],
        sealed=target.sealed,
        at=1,
    )


def plant_ghost(container: Any, cid: str, member_id: str, org_id: str) -> DeviceKeys:
    """A device the server made up, under a real member, on the channel's roster."""
    ghost = DeviceKeys.generate()
    device = Device(
        device_id=ghost.device_id,
        org_id=org_id,
        member_id=member_id,
        name="ghost",
        sign_public_key=ghost.sign_public_key,
        box_public_key=ghost.box_public_key,
        created_at=1,
    )
    MemberRecords(container.store).save_device(device)
    ChannelRecords(container.store).add_device(cid, device)
    ChannelRecords(container.store).bump_roster(cid)
    return ghost


def test_a_ring_or_an_offer_from_an_uncertified_device_is_refused(group: Any, container: Any) -> None:
    people, bob, cid = group
    owner_id, org_id = people.info["owner"]["member_id"], people.info["owner"]["org_id"]
    ghost = plant_ghost(container, cid, owner_id, org_id)
    with pytest.raises(UntrustedSignal):
        bob.calls.open(frame(cid, ghost.device_id, owner_id))
    sealed = seal_call_signal(
        ghost, bob.device_id, bob.keys.box_public_key, cid, "k_" + "a" * 16, "offer", {"sdp": "x"}
    )
    offer = frame(cid, ghost.device_id, owner_id, "offer", sealed=sealed).model_copy(
        update={"call_id": "k_" + "a" * 16}
    )
    with pytest.raises(UntrustedSignal):
        bob.calls.open(offer)
    # ...and the owner's client never seals an offer to it, though the roster lists it.
    with pytest.raises(UntrustedSignal):
        people.owner.calls.action(cid, new_call_id(), "offer", {ghost.device_id: {"sdp": "v=0"}})
    assert ghost.device_id not in people.owner.calls.devices(cid)
    assert bob.device_id in people.owner.calls.devices(cid)


def test_a_signal_said_to_come_from_another_member_is_refused(group: Any) -> None:
    people, bob, cid = group
    real = sealed_by(people.owner, cid, bob)
    assert bob.calls.open(real).from_member == people.info["owner"]["member_id"]
    with pytest.raises(UntrustedSignal):
        bob.calls.open(real.model_copy(update={"from_member": people.info["bob"]["member_id"]}))


def test_a_certified_device_of_someone_outside_the_signed_membership_is_refused(
    group: Any, container: Any
) -> None:
    people, bob, cid = group
    carol = people.join("carol")
    carol_id = people.info["carol"]["member_id"]
    # The server puts Carol in the channel without any signed entry in its membership log.
    records = ChannelRecords(container.store)
    records.save_membership(
        ChannelMember(
            channel_id=cid, member_id=carol_id, role=ChannelRole.MEMBER, added_at=1, added_by=carol_id
        )
    )
    device = MemberRecords(container.store).device(carol.device_id)
    assert device is not None
    records.add_device(cid, device)
    records.bump_roster(cid)
    with pytest.raises(UntrustedSignal):
        bob.calls.open(frame(cid, carol.device_id, carol_id))
    assert carol.device_id not in people.owner.calls.devices(cid)


def test_a_signal_sealed_by_a_revoked_device_is_refused(group: Any, api: SignedApi) -> None:
    """A stolen phone the admin revoked: its thief holds its keys and the server keeps relaying
    for it, but a revoked device certifies nothing any more (19.4), whatever it seals."""
    people, bob, cid = group
    people.join("carol")
    carol_id = people.info["carol"]["member_id"]
    people.owner.add_member(cid, carol_id)
    stolen = people.keys["carol"]
    call_id = new_call_id()

    def relayed(signal: str, data: dict[str, Any]) -> CallFrame:
        sealed = seal_call_signal(stolen, bob.device_id, bob.keys.box_public_key, cid, call_id, signal, data)
        return frame(cid, stolen.device_id, carol_id, signal, sealed=sealed).model_copy(
            update={"call_id": call_id}
        )

    ring = ("ring", {"at": people.owner.trust.now()})
    assert bob.calls.open(relayed(*ring)).from_member == carol_id  # before the revocation: Carol's
    assert api.revoke(people.keys["owner"], stolen.device_id).status == 200  # the admin signed it
    assert bob.trust.view(refresh=True).usable(stolen.device_id) is None  # Bob sees the revocation
    for signal, data in (ring, ("offer", {"type": "offer", "sdp": "v=0"})):
        with pytest.raises(UntrustedSignal):
            bob.calls.open(relayed(signal, data))


def test_the_server_may_only_end_a_part_in_a_call_in_its_own_name(group: Any) -> None:
    people, bob, cid = group
    owner, owner_id = people.owner.device_id, people.info["owner"]["member_id"]
    for signal in ("ring", "accept", "offer"):
        with pytest.raises(UntrustedSignal):
            bob.calls.open(frame(cid, owner, owner_id, signal, reason="removed"))


def test_a_removal_or_revocation_the_server_claims_is_believed_only_when_seen(
    group: Any, api: SignedApi
) -> None:
    """19.4: the server's own leave or hang-up ends a device's part only when the receiving device
    sees the reason itself, in its trust view or in the channel's signed membership: never for a
    member still in the channel with a device still certified, nor for a reason it does not know."""
    people, bob, cid = group
    carol = people.join("carol")
    carol_id = people.info["carol"]["member_id"]
    people.owner.add_member(cid, carol_id)
    owner, owner_id = people.owner.device_id, people.info["owner"]["member_id"]
    for reason in ("removed", "revoked", "tired"):
        for signal in ("leave", "hangup"):
            with pytest.raises(UntrustedSignal):
                bob.calls.open(frame(cid, owner, owner_id, signal, reason=reason))
            with pytest.raises(UntrustedSignal):  # a real device, named for another member
                bob.calls.open(frame(cid, carol.device_id, owner_id, signal, reason=reason))
        assert web_notice(bob, cid, frame(cid, owner, owner_id, "leave", reason=reason)) is None
    carols = frame(cid, carol.device_id, carol_id, "leave", reason="removed")
    assert web_notice(bob, cid, carols) is None
    people.owner.remove_member(cid, carol_id)  # signed in the channel's log
    assert bob.calls.open(carols).by_server == "removed"
    assert web_notice(bob, cid, carols) == {"by_server": True}
    assert web_notice(bob, cid, carols.model_copy(update={"from_member": owner_id})) is None
    people.join("dan")
    dan_id = people.info["dan"]["member_id"]
    people.owner.add_member(cid, dan_id)
    dan = people.keys["dan"].device_id
    with pytest.raises(UntrustedSignal):
        bob.calls.open(frame(cid, dan, dan_id, "leave", reason="revoked"))
    assert api.revoke(people.keys["owner"], dan).status == 200  # a revocation the owner signed
    assert bob.calls.open(frame(cid, dan, dan_id, "leave", reason="revoked")).by_server == "revoked"
    assert web_notice(bob, cid, frame(cid, dan, dan_id, "leave", reason="revoked")) == {"by_server": True}


def web_notice(messenger: Any, cid: str, notice: CallFrame) -> Any:
    """What the web client (web/js/call/call-session.js under node) makes of the server's notice,
    with the trust view and the channel's log from what the server answers ``messenger``'s device."""
    return run_js(
        {
            "op": "call_notice",
            **js_trust_view(messenger, cid),
            "frame": notice.model_dump(mode="json", exclude_none=True),
        }
    )[0]


def test_a_signal_the_server_makes_up_or_moves_is_refused(group: Any) -> None:
    """Every signal is sealed (19.3): a ring, an accept, a decline, a join, a leave or a hang-up
    the server invents "from" a real certified device carries nothing that opens; one the owner
    sealed to bob does not open for carol, nor as another signal, nor in another call."""
    people, bob, cid = group
    carol = people.join("carol")
    people.owner.add_member(cid, people.info["carol"]["member_id"])
    owner, owner_id = people.owner.device_id, people.info["owner"]["member_id"]
    for signal in ("ring", "accept", "decline", "join", "leave", "hangup"):
        with pytest.raises(UntrustedSignal):
            bob.calls.open(frame(cid, owner, owner_id, signal))  # the server's word only
    real = sealed_by(people.owner, cid, bob)
    assert bob.calls.open(real).signal == "ring"
    for moved in (
        real.model_copy(update={"signal": "hangup"}),
        real.model_copy(update={"call_id": new_call_id()}),
    ):
        with pytest.raises(UntrustedSignal):
            bob.calls.open(moved)
    with pytest.raises(UntrustedSignal):
        carol.calls.open(real)


def test_a_replayed_ring_is_refused_minutes_later(group: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server keeping a sealed ring and pushing it again later rings nobody: what is sealed
    carries the time it was made (19.3)."""
    people, bob, cid = group
    real = sealed_by(people.owner, cid, bob)
    assert bob.calls.open(real).signal == "ring"
    now = bob.trust.now()
    monkeypatch.setattr(bob.trust, "now", lambda: now + FRESH_SECONDS + 1)
    with pytest.raises(UntrustedSignal):
        bob.calls.open(real)


def test_a_forged_answered_elsewhere_is_refused(group: Any, container: Any) -> None:
    """The server may push an accept or a decline "from" another device of the receiver's own
    member, to make a ring stop: from a device it planted, from the receiver itself, unsealed or
    with a reason, it is refused (19.4); and no client seals anything to the planted device."""
    people, bob, cid = group
    bob_id, org_id = people.info["bob"]["member_id"], people.info["owner"]["org_id"]
    ghost = plant_ghost(container, cid, bob_id, org_id)
    for signal in ("accept", "decline"):
        with pytest.raises(UntrustedSignal):
            bob.calls.open(frame(cid, ghost.device_id, bob_id, signal))
        with pytest.raises(UntrustedSignal):
            bob.calls.open(frame(cid, bob.device_id, bob_id, signal, reason="removed"))
        with pytest.raises(UntrustedSignal):
            bob.calls.open(frame(cid, bob.device_id, bob_id, signal))
        action = bob.calls.action(cid, new_call_id(), signal, [people.owner.device_id])
        assert ghost.device_id not in [t.device_id for t in action.to]  # never told, never sealed to
    assert ghost.device_id not in bob.calls.devices(cid)


def test_a_leave_still_reaches_the_certified_participants_when_one_is_not(group: Any, container: Any) -> None:
    """A participant's device revoked during the call (or one the server's ack names) gets no
    sealed leave, and does not keep the others from hearing it."""
    people, bob, cid = group
    owner_id, org_id = people.info["owner"]["member_id"], people.info["owner"]["org_id"]
    ghost = plant_ghost(container, cid, owner_id, org_id)
    action = bob.calls.action(cid, new_call_id(), "leave", [ghost.device_id, people.owner.device_id])
    assert [t.device_id for t in action.to] == [people.owner.device_id]
