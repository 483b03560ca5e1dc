"""The server as an attacker on calls (docs/protocol.md, 19.4): it can push any ``call`` frame to
any connection, plant a device on a roster, or name another member as a frame's sender. The
client acts on a signal only from a device its trust view certifies, of a member of the
channel's signed membership, and never seals an offer to a device that is not certified."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.calls import UntrustedSignal, new_call_id
from bocage.client.crypto import seal_call_signal
from bocage.client.profile import DeviceKeys
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.frames import CallFrame
from chalicelib.domain.organisation import Device, Plan
from tests.support import People


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
    real = frame(cid, people.owner.device_id, people.info["owner"]["member_id"])
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


def test_the_server_may_only_end_a_part_in_a_call_in_its_own_name(group: Any) -> None:
    people, bob, cid = group
    owner, owner_id = people.owner.device_id, people.info["owner"]["member_id"]
    assert bob.calls.open(frame(cid, owner, owner_id, "hangup", reason="removed")).by_server == "removed"
    for signal in ("ring", "accept", "offer"):
        with pytest.raises(UntrustedSignal):
            bob.calls.open(frame(cid, owner, owner_id, signal, reason="removed"))


def test_a_forged_answered_elsewhere_only_stops_a_ring(group: Any, container: Any) -> None:
    """The server may push an accept or a decline "from" another device of the receiver's own
    member: from a device it planted it is refused; from the receiver itself, or carrying a
    payload or a reason, refused too; a well-formed one is only an answered-elsewhere notice,
    with nothing opened (19.4)."""
    people, bob, cid = group
    bob_id, org_id = people.info["bob"]["member_id"], people.info["owner"]["org_id"]
    ghost = plant_ghost(container, cid, bob_id, org_id)
    for signal in ("accept", "decline"):
        with pytest.raises(UntrustedSignal):
            bob.calls.open(frame(cid, ghost.device_id, bob_id, signal))
        with pytest.raises(UntrustedSignal):
            bob.calls.open(frame(cid, bob.device_id, bob_id, signal, reason="removed"))
        assert bob.calls.open(frame(cid, bob.device_id, bob_id, signal)).elsewhere is False
    assert ghost.device_id not in bob.calls.devices(cid)  # never sealed to, never offered to
