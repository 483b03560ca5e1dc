"""Each security check and recovery path, tested on its own (found by removing checks one by one)."""

from __future__ import annotations

from typing import Any

from bocage.client.profile import DeviceKeys, OperatorKey, sign_token
from chalicelib.adapters.records import keys
from chalicelib.domain.organisation import MemberStatus, Role
from chalicelib.errors import ConditionFailed
from tests.support import SignedApi

Owner = tuple[DeviceKeys, dict[str, Any]]


def test_a_removed_member_is_refused_even_with_a_live_device(
    api: SignedApi, owned_org: Owner, container: Any
) -> None:
    owner, _ = owned_org
    member_keys, member = api.join(owner, "M")
    stored = container.orgs.member(member["org_id"], member["member_id"])
    container.orgs.save_member(stored.model_copy(update={"status": MemberStatus.REMOVED}))  # device untouched
    reply = api.call("GET", "/me", signer=member_keys)
    assert reply.status == 401 and "removed" in reply.body["message"]


def test_a_device_without_its_member_is_refused(api: SignedApi, owned_org: Owner, container: Any) -> None:
    owner, _ = owned_org
    member_keys, member = api.join(owner, "M")
    container.store.delete(*keys.member(member["org_id"], member["member_id"]))
    reply = api.call("GET", "/me", signer=member_keys)
    assert reply.status == 401 and reply.body["message"] == "unknown member"


def test_operator_tokens_cannot_be_replayed(api: SignedApi, operator: OperatorKey) -> None:
    body = b'{"name": "Once"}'
    token = sign_token(operator.signing, operator.key_id, "POST", "/orgs", None, body, now=api.clock.now())
    assert api.call("POST", "/orgs", raw=body, token=token).status == 201
    replay = api.call("POST", "/orgs", raw=body, token=token)
    assert replay.status == 401 and "replayed" in replay.body["message"]


def test_tokens_issued_in_the_future_are_refused(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    token = sign_token(
        owner.signing, owner.device_id, "GET", "/me", None, b"", now=api.clock.now() + 120, lifetime=60
    )
    reply = api.call("GET", "/me", token=token)
    assert reply.status == 401 and "at most 300 seconds from now" in reply.body["message"]


def test_admins_cannot_remove_themselves_or_crown_themselves(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    admin_keys, admin = api.join(owner, "Adjoint", role="admin")
    remove_self = api.remove(admin_keys, admin["member_id"])
    assert remove_self.status == 403 and "yourself" in remove_self.body["message"]
    crown = api.set_role(admin_keys, admin["member_id"], "owner")
    assert crown.status == 403 and "owner" in crown.body["message"]


def test_a_removed_members_role_cannot_change(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    _, member = api.join(owner, "Gone")
    assert api.remove(owner, member["member_id"]).status == 200
    reply = api.set_role(owner, member["member_id"], "admin")
    assert reply.status == 409 and "removed" in reply.body["message"]


def test_an_invitation_to_a_removed_member_is_withdrawn(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    invite = api.invite(owner, "Never")
    assert api.remove(owner, invite["member_id"]).status == 200
    reply = api.activate(invite["activation_code"])[1]
    assert reply.status == 410 and "withdrawn" in reply.body["message"]


def test_keys_of_another_member_cannot_be_registered_again(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    code = api.invite(owner, "X")["activation_code"]
    reply = api.activate(code, keys=owner)[1]
    assert reply.status == 409 and "already registered" in reply.body["message"]
    assert api.activate(code)[1].status == 201  # the refused attempt did not spend the code


def test_a_revoked_phones_link_codes_die_with_it(api: SignedApi, owned_org: Owner) -> None:
    """A thief asks for a link code with a stolen phone; once it is revoked the code is worthless."""
    owner, _ = owned_org
    phone, _ = api.join(owner, "Victim")
    stolen_code = api.link(phone)["activation_code"]
    assert api.revoke(owner, phone.device_id).status == 200
    reply = api.activate(stolen_code)[1]
    assert reply.status == 410 and "withdrawn" in reply.body["message"]


def test_a_removed_admins_invitations_are_withdrawn(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    admin_keys, admin = api.join(owner, "Ex-adjoint", role="admin")
    code = api.invite(admin_keys, "Crony", "admin")["activation_code"]
    assert api.remove(owner, admin["member_id"]).status == 200
    assert api.activate(code)[1].status == 410


def test_a_demoted_admins_admin_invitations_are_withdrawn(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    admin_keys, admin = api.join(owner, "Adjoint", role="admin")
    code = api.invite(admin_keys, "A2", "admin")["activation_code"]
    assert api.set_role(owner, admin["member_id"], "member").status == 200
    assert api.activate(code)[1].status == 410


def test_a_role_change_loses_to_a_concurrent_removal(
    api: SignedApi, owned_org: Owner, container: Any
) -> None:
    owner, _ = owned_org
    _, member = api.join(owner, "Raced")
    stale = container.orgs.member(member["org_id"], member["member_id"])  # read before the removal
    assert api.remove(owner, member["member_id"]).status == 200
    promoted = stale.model_copy(update={"role": Role.ADMIN})
    try:
        container.orgs.save_member(promoted, expected=stale)
        raise AssertionError("a stale write resurrected a removed member")
    except Exception as exc:  # the service's Conflict
        assert getattr(exc, "status", None) == 409
    assert container.orgs.member(member["org_id"], member["member_id"]).status is MemberStatus.REMOVED


def test_removal_retried_after_a_crash_revokes_every_device(
    api: SignedApi, owned_org: Owner, container: Any, monkeypatch: Any
) -> None:
    owner, _ = owned_org
    member_keys, member = api.join(owner, "Half removed")
    original = container.orgs._revoke
    monkeypatch.setattr(
        container.orgs, "_revoke", lambda device: (_ for _ in ()).throw(ConditionFailed("crash"))
    )
    assert api.remove(owner, member["member_id"]).status == 409
    monkeypatch.setattr(container.orgs, "_revoke", original)
    assert api.remove(owner, member["member_id"]).status == 200
    device = container.orgs.get_device(member_keys.device_id)
    assert device is not None and device.is_revoked
    listing = api.call("GET", "/members", signer=owner).body
    assert next(d for d in listing["devices"] if d["device_id"] == member_keys.device_id)["revoked_at"]


def test_deeply_nested_json_is_a_400_not_a_crash(api: SignedApi) -> None:
    reply = api.call("POST", "/activate", raw=b"[" * 100_000)
    assert reply.status == 400 and reply.body["message"] == "malformed JSON body"


def test_odd_numbers_in_queries_are_400(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    for limit in ("²", "9" * 5000, "-1", "1.5"):
        reply = api.call("GET", "/members", signer=owner, query={"limit": limit})
        assert reply.status == 400, limit


def test_chalice_refusals_use_the_same_error_shape(api: SignedApi) -> None:
    reply = api.http.request("PATCH", "/me", headers={"Content-Type": "application/json"})
    assert reply.status_code == 405
    import json

    assert set(json.loads(reply.body)) == {"error", "message"}
    wrong_type = api.http.request("POST", "/activate", headers={"Content-Type": "text/plain"}, body=b"x")
    assert wrong_type.status_code == 415 and set(json.loads(wrong_type.body)) == {"error", "message"}


def test_the_web_app_may_call_from_another_origin(api: SignedApi) -> None:
    reply = api.http.request("GET", "/health")
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in reply.headers["Access-Control-Allow-Headers"]
    assert reply.headers["Access-Control-Expose-Headers"] == "Date"
