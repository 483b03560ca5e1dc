"""Protocol v2 as people use it through the Python client: invitations whose secret rides in the
URL fragment, device links, e-mail invitees vouched by the server only until verified or
endorsed, safety numbers, and an identity key that changes under a verified member."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bocage.client.trust import TrustError
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.sender_keys import SenderKeys
from chalicelib.domain.statements import public_key_of, sign_statement
from tests.support import People, SignedApi, messenger_for


def fragment(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment.split("?", 1)[1]).items()}


def sealed_to(container: Any, cid: str, device_id: str) -> list[Any]:
    epoch = ChannelRecords(container.store).epoch(cid).number
    return list(SenderKeys(container.store).sealed_to(cid, epoch, device_id))


def test_an_invitation_url_carries_the_ticket_secret_the_server_never_saw(
    people: People, api: SignedApi, container: Any
) -> None:
    invitation = people.owner.trust.invite("Lina", role="member")
    params = fragment(invitation["activation_url"])
    assert set(params) == {"server", "code", "org", "member", "name", "ticket", "root"}
    assert params["name"] == "Lina"  # the admin's choice, which stands (13.5)
    assert params["root"] == people.owner.trust.state.root
    from tests.support import scan_all

    stored = repr(scan_all(container.store))
    assert params["ticket"] not in stored and public_key_of(_seed(params["ticket"])) in stored
    api.targets.pop(invitation["activation_code"].replace("-", ""), None)
    api._remember_url(invitation)
    keys, reply = api.activate(invitation["activation_code"], "Lina")
    assert reply.status == 201 and reply.body["root"] == params["root"]
    lina = messenger_for(api, keys, people.tmp / "lina", reply.body)
    assert lina.trust.view().certified(reply.body["member_id"])


def test_a_linked_device_is_certified_by_its_members_other_device(people: People, api: SignedApi) -> None:
    link = people.owner.trust.link_device()
    assert set(fragment(link["activation_url"])) >= {"ticket", "root", "ik"}
    api._remember_url(link)
    tablet_keys, reply = api.activate(link["activation_code"], "Maire")
    assert reply.status == 201
    view = people.owner.trust.view(refresh=True)
    trusted = view.usable(tablet_keys.device_id)
    assert trusted is not None and trusted.member_id == people.info["owner"]["member_id"]
    row = next(
        d
        for d in api.call("GET", "/members", signer=tablet_keys).body["devices"]
        if d["device_id"] == tablet_keys.device_id
    )
    assert (
        row["ticket"]["grant"] == "device" and row["device_cert"]["ticket_key"] == row["ticket"]["ticket_key"]
    )


def test_an_email_invitee_gets_keys_once_verified_or_endorsed(
    people: People, api: SignedApi, container: Any
) -> None:
    invitation = people.owner.trust.invite("Mélanie", email="melanie@example.org")
    assert "ticket" not in fragment(invitation["activation_url"])
    keys, reply = api.activate(invitation["activation_code"], "Mélanie")
    assert reply.status == 201
    melanie = messenger_for(api, keys, people.tmp / "melanie", reply.body)
    melanie_id = reply.body["member_id"]
    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.owner.add_member(cid, melanie_id)
    people.owner.send_text(cid, "avant vérification")
    assert sealed_to(container, cid, keys.device_id) == []
    assert "server_vouched" in {w["code"] for w in people.owner.trust.take_warnings()}

    mine = people.owner.trust.safety(melanie_id)
    theirs = melanie.trust.safety(people.info["owner"]["member_id"])
    assert mine["safety_number"] == theirs["safety_number"] and mine["vouched_by_server_only"]
    with pytest.raises(TrustError, match="differ"):
        people.owner.trust.confirm(melanie_id, "0" * 60)
    assert people.owner.trust.confirm(melanie_id, theirs["qr_payload"])["verified"]
    people.owner.trust.endorse(melanie_id)  # an admin vouches for the whole organisation
    people.owner.send_text(cid, "après vérification")
    assert len(sealed_to(container, cid, keys.device_id)) == 1
    assert [m.get("text") for m in melanie.read(cid)["messages"]][-1] == "après vérification"
    bob = people.join("bob")  # another member sees her certified through the endorsement
    assert bob.trust.view(refresh=True).certified(melanie_id)


def test_a_verified_members_identity_key_changing_is_blocking(
    people: People, api: SignedApi, container: Any
) -> None:
    invitation = people.owner.trust.invite("Nora", email="nora@example.org")
    keys, reply = api.activate(invitation["activation_code"], "Nora")
    nora = messenger_for(api, keys, people.tmp / "nora", reply.body)
    nora_id = reply.body["member_id"]
    people.owner.trust.confirm(nora_id, nora.trust.safety(people.info["owner"]["member_id"])["safety_number"])
    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.owner.add_member(cid, nora_id)
    people.owner.send_text(cid, "vérifiée")
    assert len(sealed_to(container, cid, keys.device_id)) == 1

    # The server swaps in an identity key of its own, self-signed like an e-mail invitee's.
    members = MemberRecords(container.store)
    member = members.get(reply.body["org_id"], nora_id)
    device = members.device(keys.device_id)
    assert member is not None and device is not None and member.member_cert and device.device_cert
    fake = bytes([0x42]) * 32
    cert = {k: v for k, v in member.member_cert.items() if k != "sig"} | {"identity_key": public_key_of(fake)}
    dcert = {k: v for k, v in device.device_cert.items() if k != "sig"} | {
        "identity_key": public_key_of(fake)
    }
    members.save(member.model_copy(update={"member_cert": sign_statement(cert, fake)}))
    swapped = device.model_copy(update={"device_cert": sign_statement(dcert, fake)})
    members.save_device(swapped)
    ChannelRecords(container.store).add_device(cid, swapped)
    container.channels.rekey(cid)
    people.owner.send_text(cid, "clé changée")
    assert sealed_to(container, cid, keys.device_id) == []
    warnings = people.owner.trust.take_warnings()
    assert any(w["code"] == "identity_changed" and "verified" in w["message"] for w in warnings)
    assert not people.owner.trust.safety(nora_id)["verified"]


def _seed(text: str) -> bytes:
    from chalicelib.domain.encoding import b64d

    return b64d(text)


def test_an_admin_who_joins_a_group_shows_as_a_signed_event(people: People, api: SignedApi) -> None:
    bob = people.join("bob")
    cid = bob.create_channel("group", "Entre agents")["channel_id"]
    owner_id = people.info["owner"]["member_id"]
    people.owner.add_member(cid, owner_id)  # the org's owner adds herself: allowed, and signed
    seen_by_bob = bob.trust.events(cid)
    assert [(e["op"], e["member_id"], e["by_member"]) for e in seen_by_bob["events"]] == [
        ("create", people.info["bob"]["member_id"], people.info["bob"]["member_id"]),
        ("add", owner_id, owner_id),
    ]
    assert seen_by_bob["members"][owner_id] == "member"
    assert bob.trust.standing(owner_id) == {
        "certified": True,
        "verified": False,
        "vouched_by_server_only": False,
        "certified_role": "owner",
    }


def test_a_revocation_the_server_later_hides_stays(people: People, container: Any) -> None:
    """Bob's phone is stolen and revoked; once the owner's device verified the revocation, a
    server serving the old device record again (no revocation), and putting the phone back in the
    roster, gets it no key: the revocation is kept, and the rollback reported."""
    bob = people.join("bob")
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    people.owner.send_text(cid, "avant le vol")
    stolen = people.keys["bob"].device_id
    people.owner.trust.revoke(stolen)
    people.owner.trust.view(refresh=True)
    assert stolen in people.owner.trust.state.revoked[people.info["owner"]["org_id"]]
    members = MemberRecords(container.store)
    device = members.device(stolen)
    assert device is not None and device.revocation is not None
    restored = device.model_copy(update={"revocation": None, "revoked_at": None})
    members.save_device(restored)
    ChannelRecords(container.store).add_device(cid, restored)
    container.channels.rekey(cid)
    people.owner.send_text(cid, "après le vol")
    assert sealed_to(container, cid, stolen) == []
    [rollback] = [w for w in people.owner.trust.take_warnings() if w["code"] == "revocation_rollback"]
    assert rollback["device_id"] == stolen and "revocation" in rollback["message"]
    assert stolen not in bob.trust.state.revoked.get(people.info["owner"]["org_id"], {})  # per device
