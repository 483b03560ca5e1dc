"""The server as an attacker (docs/protocol.md, section 12): whoever holds the database writes
straight into the real store, under the real API and the real Python client, and the client
must notice, say so, and never seal a sender key to a device the organisation's people did not
certify. Each case asserts on the stored sealed keys, not only on the warning.

(R adds relabelled kinds, retargeted poll closes and replayed envelopes; J runs the same cases
against the web client's code under node.)
"""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.membership import MembershipRefused
from bocage.client.profile import DeviceKeys
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.messages import MessageRecords
from chalicelib.adapters.records.sender_keys import SenderKeys
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.organisation import Device
from chalicelib.domain.statements import public_key_of, sign_statement
from tests.support import People, SignedApi, messenger_for, plant_addition

Setup = tuple[People, Any, str]


@pytest.fixture
def group(people: People, container: Any) -> Setup:
    """A group of the owner and Bob, where the owner has sent once: keys are distributed."""
    bob = people.join("bob")
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    people.owner.send_text(cid, "bonjour")
    assert [m["text"] for m in bob.read(cid)["messages"]] == ["bonjour"]
    people.owner.trust.take_warnings()
    return people, bob, cid


def sealed_to(container: Any, cid: str, device_id: str) -> list[Any]:
    """Every sender key stored for this device in the channel's current epoch."""
    epoch = ChannelRecords(container.store).epoch(cid).number
    return list(SenderKeys(container.store).sealed_to(cid, epoch, device_id))


def codes(messenger: Any) -> set[str]:
    return {w["code"] for w in messenger.trust.take_warnings()}


def plant_device(container: Any, cid: str, device: Device) -> None:
    """The attacker's device, written as activation would write it, and put on the roster."""
    MemberRecords(container.store).save_device(device)
    channels = ChannelRecords(container.store)
    channels.add_device(cid, device)
    channels.bump_roster(cid)


def test_a_ghost_device_under_a_real_member_gets_nothing(group: Setup, container: Any) -> None:
    people, _, cid = group
    bob_id, org_id = people.info["bob"]["member_id"], people.info["owner"]["org_id"]
    ghost, attacker_ik = DeviceKeys.generate(), bytes([0x66]) * 32
    cert = sign_statement(
        {
            "purpose": "bocage/device-cert/v2",
            "org_id": org_id,
            "member_id": bob_id,
            "device_id": ghost.device_id,
            "sign_public_key": ghost.sign_public_key,
            "box_public_key": ghost.box_public_key,
            "identity_key": public_key_of(attacker_ik),  # not Bob's: the server has no way to get his
            "ticket_key": None,
            "issued_at": 1,
        },
        attacker_ik,
    )
    plant_device(
        container,
        cid,
        Device(
            device_id=ghost.device_id,
            org_id=org_id,
            member_id=bob_id,
            name="ghost",
            sign_public_key=ghost.sign_public_key,
            box_public_key=ghost.box_public_key,
            created_at=1,
            device_cert=cert,
        ),
    )
    people.owner.send_text(cid, "après l'ajout du fantôme")
    assert sealed_to(container, cid, ghost.device_id) == []
    assert "uncertified_device" in codes(people.owner)


def test_a_swapped_box_key_gets_nothing(group: Setup, container: Any) -> None:
    people, _, cid = group
    bob_device = people.keys["bob"].device_id
    attacker = DeviceKeys.generate()
    members = MemberRecords(container.store)
    real = members.device(bob_device)
    assert real is not None
    swapped = real.model_copy(update={"box_public_key": attacker.box_public_key})
    members.save_device(swapped)
    ChannelRecords(container.store).add_device(cid, swapped)
    container.channels.rekey(cid)  # a new epoch: the sender must seal again
    people.owner.send_text(cid, "nouvelle époque")
    assert sealed_to(container, cid, bob_device) == []  # nothing sealed to the attacker's key
    assert "uncertified_device" in codes(people.owner)


def test_an_unsigned_member_addition_gets_nothing(group: Setup, container: Any) -> None:
    people, _, cid = group
    eve = people.join("eve")  # a real, certified member of the organisation, not of this channel
    eve_id, eve_device = people.info["eve"]["member_id"], people.keys["eve"].device_id
    channels = ChannelRecords(container.store)
    channels.save_membership(
        ChannelMember(channel_id=cid, member_id=eve_id, role=ChannelRole.MEMBER, added_at=1, added_by="x")
    )
    device = MemberRecords(container.store).device(eve_device)
    assert device is not None
    plant_device(container, cid, device)
    people.owner.send_text(cid, "sans Eve")
    assert sealed_to(container, cid, eve_device) == []
    assert "not_in_membership" in codes(people.owner)
    assert not any(m["verified"] for m in eve.read(cid)["messages"])  # nothing she can open


def test_a_log_entry_signed_by_someone_not_entitled_stops_the_replay(
    group: Setup, container: Any, api: SignedApi
) -> None:
    people, _, cid = group
    eve = people.join("eve")
    eve_id, eve_keys = people.info["eve"]["member_id"], people.keys["eve"]
    head = container.channels.membership_log(_principal(people, "owner"), cid, 0, 500)["entries"][-1]
    plant_addition(  # Eve's own device adds her: she manages nothing here
        container,
        eve_keys,
        org_id=people.info["owner"]["org_id"],
        channel_id=cid,
        previous=head,
        member_id=eve_id,
        now=api.clock.now(),
    )
    plant_device(container, cid, MemberRecords(container.store).device(eve_keys.device_id))  # type: ignore[arg-type]
    people.owner.send_text(cid, "toujours sans Eve")
    assert sealed_to(container, cid, eve_keys.device_id) == []
    assert {"membership_invalid", "not_in_membership"} <= codes(people.owner)
    assert eve is not None


def test_a_rolled_back_log_is_refused_and_nothing_is_sealed(group: Setup, container: Any) -> None:
    people, _, cid = group
    carol = people.join("carol")
    people.owner.add_member(cid, people.info["carol"]["member_id"])
    people.owner.remove_member(cid, people.info["carol"]["member_id"])  # entry 3: Carol removed
    container.store.delete(*keys.membership_entry(cid, 3))  # the server forgets the removal
    ChannelRecords(container.store).save_membership(
        ChannelMember(
            channel_id=cid,
            member_id=people.info["carol"]["member_id"],
            role=ChannelRole.MEMBER,
            added_at=1,
            added_by="x",
        )
    )
    plant_device(container, cid, MemberRecords(container.store).device(people.keys["carol"].device_id))  # type: ignore[arg-type]
    with pytest.raises(MembershipRefused) as refused:
        people.owner.send_text(cid, "Carol est partie")
    assert refused.value.warning.code == "membership_rollback"
    assert sealed_to(container, cid, people.keys["carol"].device_id) == []
    assert carol is not None


def test_a_forked_log_is_refused(group: Setup, container: Any) -> None:
    people, _, cid = group
    key = keys.membership_entry(cid, 1)
    item = container.store.get(*key)
    entry = dict(item["entry"])
    entry["role"] = "author"  # the server rewrites history: Bob an author all along
    container.store.put(keys.record(key, {"entry": entry}))
    with pytest.raises(MembershipRefused) as refused:
        people.owner.send_text(cid, "qui est auteur ?")
    assert refused.value.warning.code == "membership_fork"


def test_a_fresh_client_does_not_trust_a_rewritten_entry(
    group: Setup, container: Any, api: SignedApi
) -> None:
    people, _, cid = group
    key = keys.membership_entry(cid, 1)
    entry = dict(container.store.get(*key)["entry"])
    entry["member_id"] = people.info["owner"]["member_id"]
    container.store.put(keys.record(key, {"entry": entry}))
    fresh = messenger_for(api, people.keys["owner"], people.tmp / "owner-fresh", people.info["owner"])
    state = fresh.trust.membership(cid)
    assert state.seq == 0 and "membership_invalid" in codes(fresh)


def test_a_forged_sender_member_is_shown_as_the_certified_one(group: Setup, container: Any) -> None:
    people, bob, cid = group
    messages = MessageRecords(container.store)
    stored = messages.get(cid, 1)
    assert stored is not None
    messages.store(stored.model_copy(update={"sender_member": people.info["bob"]["member_id"]}))  # blames Bob
    shown = bob.read(cid)["messages"][0]
    assert shown["sender_member"] == people.info["owner"]["member_id"]
    assert shown["sender_name"] == "Maire" and shown["sender_verified"] is False
    assert "forged_sender" in codes(bob)


def test_a_certificate_replayed_from_another_organisation_gets_nothing(
    group: Setup, container: Any, api: SignedApi, operator: Any
) -> None:
    people, _, cid = group
    other = api.create_org(operator, name="Autre commune")
    stranger, activated = api.activate(other["activation_code"], "Intrus")
    assert activated.status == 201
    members = MemberRecords(container.store)
    their_member = members.get(activated.body["org_id"], activated.body["member_id"])
    their_device = members.device(stranger.device_id)
    assert their_member is not None and their_device is not None
    org_id = people.info["owner"]["org_id"]
    members.save(their_member.model_copy(update={"org_id": org_id}))  # same certificates, this org
    moved = their_device.model_copy(update={"org_id": org_id})
    ChannelRecords(container.store).save_membership(
        ChannelMember(
            channel_id=cid, member_id=moved.member_id, role=ChannelRole.MEMBER, added_at=1, added_by="x"
        )
    )
    plant_device(container, cid, moved)
    people.owner.send_text(cid, "entre nous")
    assert sealed_to(container, cid, stranger.device_id) == []
    assert codes(people.owner) & {"invalid_statement", "uncertified_member", "uncertified_device"}


def _principal(people: People, name: str) -> Any:
    from chalicelib.domain.organisation import Role
    from chalicelib.domain.principal import Principal

    info = people.info[name]
    return Principal(info["org_id"], info["member_id"], people.keys[name].device_id, Role(info["role"]))
