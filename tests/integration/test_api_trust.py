"""The server's side of protocol v2 (docs/protocol.md, sections 13 and 14): what it refuses, with
which status and message, and the membership log route's authorisation."""

from __future__ import annotations

from typing import Any

from bocage.client.issuing import member_ticket, membership_entry
from bocage.client.profile import DeviceKeys, OperatorKey
from chalicelib.domain.encoding import b64e
from chalicelib.domain.statements import fingerprint
from tests.support import People, SignedApi

Owner = tuple[DeviceKeys, dict[str, Any]]


def test_activation_names_the_root_and_the_first_owner_is_it(api: SignedApi, owned_org: Owner) -> None:
    owner, activated = owned_org
    identity = api.identities[activated["member_id"]]
    assert activated["root"] == fingerprint(b64e(bytes(identity.verify_key)))
    me = api.call("GET", "/members", signer=owner).body["members"][0]
    assert me["member_cert"]["root"] is True and me["ticket"] is None and me["role_statements"] == []


def test_a_v1_activation_without_certificates_is_refused(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    code = api.invite(owner, "Ancien client")["activation_code"]
    body = api.activation_body(code, "Ancien client", DeviceKeys.generate())
    del body["member_cert"], body["device_cert"]
    reply = api.call("POST", "/activate", body)
    assert reply.status == 400 and "protocol v1: update it" in reply.body["message"]
    assert api.activate(code, "Ancien client")[1].status == 201  # the refusal did not spend the code


def test_an_invitation_needs_a_ticket_unless_emailed(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    bare = api.call("POST", "/invitations", {"display_name": "Sans ticket"}, signer=owner)
    assert bare.status == 400 and "ticket is required" in bare.body["message"]
    info = api.devices[owner.device_id]
    ticket = member_ticket(owner.signing, owner.device_id, info["org_id"], "member", "Mél", api.clock.now())
    both = {"display_name": "Mél", "email": "m@example.org", "ticket": ticket.statement}
    reply = api.call("POST", "/invitations", both, signer=owner)
    assert reply.status == 400 and "e-mailed" in reply.body["message"]


def test_a_ticket_must_say_what_the_invitation_does(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    org_id = api.devices[owner.device_id]["org_id"]
    admin_ticket = member_ticket(owner.signing, owner.device_id, org_id, "admin", "Alice", api.clock.now())
    body = {"display_name": "Alice", "role": "member", "ticket": admin_ticket.statement}
    reply = api.call("POST", "/invitations", body, signer=owner)
    assert reply.status == 400 and "role and display_name" in reply.body["message"]
    forged = {**admin_ticket.statement, "role": "member"}
    reply = api.call("POST", "/invitations", {**body, "ticket": forged}, signer=owner)
    assert reply.status == 400 and "signature" in reply.body["message"]


def test_activation_certificates_must_match_the_device_and_the_ticket(
    api: SignedApi, owned_org: Owner
) -> None:
    owner, _ = owned_org
    code = api.invite(owner, "Bea")["activation_code"]
    keys = DeviceKeys.generate()
    body = api.activation_body(code, "Bea", keys)
    other = DeviceKeys.generate()
    swapped = {**body, "box_public_key": other.box_public_key}
    swapped["proof"] = api.activation_body(code, "Bea", DeviceKeys(keys.signing, other.box))["proof"]
    reply = api.call("POST", "/activate", swapped)
    assert reply.status == 400 and "box_public_key" in reply.body["message"]
    stolen = api.activation_body(code, "Bea", keys)
    stolen["member_cert"] = {**stolen["member_cert"], "display_name": "Mallory"}
    reply = api.call("POST", "/activate", stolen)
    assert reply.status == 400 and "signature" in reply.body["message"]


def test_a_low_order_box_key_is_refused_at_activation(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    code = api.invite(owner, "Zéro")["activation_code"]
    keys = DeviceKeys.generate()
    body = api.activation_body(code, "Zéro", keys)
    zero = b64e(bytes(32))
    proof = keys.signing.sign(f"bocage-activation\n{_hash(code)}\n{zero}".encode()).signature
    reply = api.call("POST", "/activate", {**body, "box_public_key": zero, "proof": b64e(proof)})
    assert reply.status == 400 and "small order" in reply.body["message"]


def test_role_statements_need_a_higher_serial_and_the_callers_device(
    api: SignedApi, owned_org: Owner
) -> None:
    owner, _ = owned_org
    _, member = api.join(owner, "Promue")
    assert api.set_role(owner, member["member_id"], "admin").status == 200
    replayed = api.set_role(owner, member["member_id"], "member", serial=1)
    assert replayed.status == 400 and "serial must be above 1" in replayed.body["message"]
    listed = api.call("GET", "/members", signer=owner).body["members"]
    promoted = next(m for m in listed if m["member_id"] == member["member_id"])
    assert [s["role"] for s in promoted["role_statements"]] == ["admin"]


def test_the_membership_log_is_for_members_and_admins_of_this_organisation(
    people: People, api: SignedApi, operator: OperatorKey
) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.join("bob")
    log = api.call("GET", f"/channels/{cid}/membership", signer=people.keys["owner"]).body
    assert [e["op"] for e in log["entries"]] == ["create"] and log["head"]["seq"] == 0
    assert api.call("GET", f"/channels/{cid}/membership", signer=people.keys["bob"]).status == 403
    other = api.create_org(operator, name="Ailleurs")
    stranger, _ = api.activate(other["activation_code"], "Autre")
    assert api.call("GET", f"/channels/{cid}/membership", signer=stranger).status == 404


def test_membership_entries_are_checked_and_appended_once(people: People, api: SignedApi) -> None:
    owner = people.keys["owner"]
    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.join("bob")
    bob_id = people.info["bob"]["member_id"]
    head = api.call("GET", f"/channels/{cid}/membership", signer=owner).body["entries"][0]
    org_id = people.info["owner"]["org_id"]

    def entry(seq_from: Any, **fields: Any) -> dict[str, Any]:
        base = {"op": "add", "member_id": bob_id, "role": "member"}
        return membership_entry(
            owner.signing,
            owner.device_id,
            org_id=org_id,
            channel_id=cid,
            previous=seq_from,
            now=api.clock.now(),
            **{**base, **fields},
        )

    unsigned = {**entry(head), "sig": b64e(bytes(64))}
    reply = api.call(
        "PUT", f"/channels/{cid}/members/{bob_id}", {"role": "member", "membership": unsigned}, signer=owner
    )
    assert reply.status == 400 and "signature" in reply.body["message"]
    wrong_role = entry(head, role="author")
    reply = api.call(
        "PUT", f"/channels/{cid}/members/{bob_id}", {"role": "member", "membership": wrong_role}, signer=owner
    )
    assert reply.status == 400
    other = people.owner.create_channel("group", "H")["channel_id"]  # an entry of another channel
    elsewhere = membership_entry(
        owner.signing,
        owner.device_id,
        org_id=org_id,
        channel_id=other,
        previous=head,
        now=api.clock.now(),
        op="add",
        member_id=bob_id,
        role="member",
    )
    reply = api.call(
        "PUT", f"/channels/{cid}/members/{bob_id}", {"role": "member", "membership": elsewhere}, signer=owner
    )
    assert reply.status == 400 and "another channel" in reply.body["message"]
    good = entry(head)
    path = f"/channels/{cid}/members/{bob_id}"
    assert api.call("PUT", path, {"role": "member", "membership": good}, signer=owner).status == 200
    stale = entry(head, op="role", role="author")  # signed against entry 0 again: the log moved
    reply = api.call("PUT", path, {"role": "author", "membership": stale}, signer=owner)
    assert reply.status == 409 and "fetch it and sign again" in reply.body["message"]
    v1 = api.call("PUT", path, {"role": "author"}, signer=owner)
    assert v1.status == 400


def _hash(code: str) -> str:
    from chalicelib.domain.invitation import code_hash

    return code_hash(code)


def test_an_entry_dated_away_from_the_server_s_clock_is_refused(people: People, api: SignedApi) -> None:
    """A removal dated hours back would hide the member's messages since then (14.2), one dated
    ahead would let no honest entry follow it (14, "Dates"): the server stores entries dated now,
    within the request tokens' window, and says what is wrong."""
    owner = people.keys["owner"]
    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.join("bob")
    bob_id = people.info["bob"]["member_id"]
    head = api.call("GET", f"/channels/{cid}/membership", signer=owner).body["entries"][0]

    def add_dated(off: int) -> Any:
        entry = membership_entry(
            owner.signing,
            owner.device_id,
            org_id=people.info["owner"]["org_id"],
            channel_id=cid,
            previous=head,
            now=api.clock.now() + off,
            op="add",
            member_id=bob_id,
            role="member",
        )
        body = {"role": "member", "membership": entry}
        return api.call("PUT", f"/channels/{cid}/members/{bob_id}", body, signer=owner)

    for off, way in ((-301, "behind"), (301, "ahead of")):
        reply = add_dated(off)
        assert reply.status == 400 and f"dated 301 s {way} this server's clock" in reply.body["message"]
    assert api.call("GET", f"/channels/{cid}/membership", signer=owner).body["head"]["seq"] == 0
    assert add_dated(-300).status == 200
