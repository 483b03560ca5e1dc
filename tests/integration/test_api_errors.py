"""Every bad input gets a 4xx with a clear JSON error, and nothing is lost or changed."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.profile import DeviceKeys, sign_token
from chalicelib.domain.auth_token import decode_token, encode_token
from chalicelib.domain.encoding import b64e
from tests.support import SignedApi

Owner = tuple[DeviceKeys, dict[str, Any]]


def _member_count(api: SignedApi, owner: DeviceKeys) -> int:
    return len(api.call("GET", "/members", signer=owner).body["members"])


def test_malformed_json(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    reply = api.call("POST", "/invitations", raw=b'{"display_name": ', signer=owner)
    assert reply.status == 400 and reply.body == {"error": "bad_request", "message": "malformed JSON body"}
    assert _member_count(api, owner) == 1


def test_body_must_be_an_object(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    reply = api.call("POST", "/invitations", raw=b"[1, 2]", signer=owner)
    assert reply.status == 400 and "JSON object" in reply.body["message"]


def test_missing_and_unknown_fields(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    missing = api.call("POST", "/invitations", {}, signer=owner)
    assert missing.status == 400 and "display_name" in missing.body["message"]
    unknown = api.call("POST", "/invitations", {"display_name": "A", "phone": "+33"}, signer=owner)
    assert unknown.status == 400 and "phone" in unknown.body["message"]
    bad_mail = api.call(
        "POST", "/invitations", {"display_name": "A", "email": "not-an-address"}, signer=owner
    )
    assert bad_mail.status == 400 and "email" in bad_mail.body["message"]
    bad_role = api.call("PUT", f"/members/{owned_org[1]['member_id']}/role", {"role": "king"}, signer=owner)
    assert bad_role.status == 400 and "role must be one of" in bad_role.body["message"]
    assert _member_count(api, owner) == 1


def test_activation_with_bad_keys_or_proof(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    code = api.invite(owner, "K")["activation_code"]
    keys = DeviceKeys.generate()
    body = {
        "code": code,
        "sign_public_key": keys.sign_public_key,
        "box_public_key": keys.box_public_key,
        "proof": b64e(b"\x00" * 64),
    }
    reply = api.call("POST", "/activate", body)
    assert reply.status == 400 and "proof" in reply.body["message"]
    short_key = {**body, "box_public_key": b64e(b"\x01" * 31) + "AAAAAAAAAAAAAA"}
    assert api.call("POST", "/activate", short_key).status == 400
    # the failed attempts did not spend the code
    assert api.activate(code)[1].status == 201


def test_oversize_body(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    big = b'{"display_name": "' + b"x" * (200 * 1024) + b'"}'
    reply = api.call("POST", "/invitations", raw=big, signer=owner)
    assert reply.status == 413 and reply.body["error"] == "payload_too_large"


def test_missing_and_garbled_tokens(api: SignedApi, owned_org: Owner) -> None:
    assert api.call("GET", "/me").status == 401
    garbled = api.call("GET", "/me", token="not-a-token")
    assert garbled.status == 401 and garbled.body["error"] == "unauthorized"
    reply = api.http.request("GET", "/me", headers={"Authorization": "Bearer abc"})
    assert reply.status_code == 401


def test_bad_signature(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    impostor = DeviceKeys.generate()
    token = sign_token(impostor.signing, owner.device_id, "GET", "/me", None, b"", now=api.clock.now())
    reply = api.call("GET", "/me", token=token)
    assert reply.status == 401 and reply.body["message"] == "bad token signature"


def test_tampered_claims_fail_the_signature(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    token = sign_token(owner.signing, owner.device_id, "GET", "/me", None, b"", now=api.clock.now())
    claims, signed, signature = decode_token(token)
    longer = signed.replace(str(claims.expires_at).encode(), str(claims.expires_at + 60).encode())
    reply = api.call("GET", "/me", token=encode_token(longer, signature))
    assert reply.status == 401 and reply.body["message"] == "bad token signature"


def test_expired_token(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    token = sign_token(owner.signing, owner.device_id, "GET", "/me", None, b"", now=api.clock.now())
    api.clock.advance(121)
    reply = api.call("GET", "/me", token=token)
    assert reply.status == 401 and reply.body["message"] == "token expired"


def test_long_lived_token_refused(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    reply = api.call("GET", "/me", signer=owner, lifetime=301)
    assert reply.status == 401 and "at most 300 seconds" in reply.body["message"]


def test_replayed_nonce(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    token = sign_token(owner.signing, owner.device_id, "GET", "/me", None, b"", now=api.clock.now())
    assert api.call("GET", "/me", token=token).status == 200
    replay = api.call("GET", "/me", token=token)
    assert replay.status == 401 and "replayed" in replay.body["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/members", None), ("POST", "/invitations", {"display_name": "Other"})],
)
def test_token_bound_to_its_request(
    api: SignedApi, owned_org: Owner, method: str, path: str, body: Any
) -> None:
    owner, _ = owned_org
    token = sign_token(owner.signing, owner.device_id, "GET", "/me", None, b"", now=api.clock.now())
    reply = api.call(method, path, body, token=token)
    assert reply.status == 401 and "does not match this request" in reply.body["message"]


def test_body_swapped_under_a_token(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    signed_body = b'{"display_name": "Member"}'
    token = sign_token(
        owner.signing, owner.device_id, "POST", "/invitations", None, signed_body, now=api.clock.now()
    )
    reply = api.call("POST", "/invitations", raw=b'{"display_name": "Admin", "role": "admin"}', token=token)
    assert reply.status == 401 and "does not match" in reply.body["message"]


def test_unknown_device(api: SignedApi, owned_org: Owner) -> None:
    stranger = DeviceKeys.generate()
    reply = api.call("GET", "/me", signer=stranger)
    assert reply.status == 401 and reply.body["message"] == "unknown device"


def test_unknown_member_and_device_ids(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    assert api.call("DELETE", "/members/m_aaaaaaaaaaaaaaaa", signer=owner).status == 404
    assert api.call("POST", "/devices/d_aaaaaaaaaaaaaaaa/revoke", signer=owner).status == 404


def test_unknown_route_and_method(api: SignedApi) -> None:
    assert api.call("PATCH", "/me").status == 405
