"""The name an admin gives an invitee stands (issue 19: red-team finding; docs/protocol.md 13.5).

The invitation's link names the member (``name=`` in the fragment); the Python client puts that
name in the member certificate, and the server refuses (400) a certificate naming anyone else,
for ticket and e-mail invitations alike. Only the first owner, invited by the operator, names
themselves.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bocage.client.issuing import EnrolmentError, enrol
from bocage.client.profile import DeviceKeys
from chalicelib.domain.activation_link import parse_activation
from chalicelib.domain.invitation import normalise_code
from tests.support import SignedApi

Owner = tuple[DeviceKeys, dict[str, Any]]


def _invite(api: SignedApi, owner: DeviceKeys, name: str, *, email: bool) -> dict[str, Any]:
    if not email:
        return api.invite(owner, name)
    reply = api.call(
        "POST", "/invitations", {"display_name": name, "email": "agent@example.org"}, signer=owner
    )
    assert reply.status == 201, reply.body
    return dict(reply.body)


def _usurping_body(api: SignedApi, code: str, name: str) -> dict[str, Any]:
    """What a client that ignored the link's name would send: a certificate naming ``name``."""
    keys = DeviceKeys.generate()
    body = api.activation_body(code, api.targets[normalise_code(code)].name or "", keys)
    target = replace(api.targets[normalise_code(code)], code=code, name=None)
    enrolment = enrol(
        target,
        device_id=keys.device_id,
        sign_public_key=keys.sign_public_key,
        box_public_key=keys.box_public_key,
        display_name=name,
        now=api.clock.now(),
    )
    body.update(member_cert=enrolment.member_cert, device_cert=enrolment.device_cert, display_name=name)
    return body


@pytest.mark.parametrize("email", [False, True], ids=["ticket", "email"])
def test_the_admins_name_stands_over_the_invitees(api: SignedApi, owned_org: Owner, email: bool) -> None:
    owner, _ = owned_org
    invitation = _invite(api, owner, "Agent Martin", email=email)
    target = parse_activation(invitation["activation_url"])
    assert target.name == "Agent Martin"  # the link names the member as the admin chose

    refused = api.call("POST", "/activate", _usurping_body(api, invitation["activation_code"], "Le Maire"))
    assert refused.status == 400, refused.body
    assert "'Agent Martin'" in refused.body["message"] and "stands" in refused.body["message"]
    assert api.member_row(owner, invitation["member_id"])["status"] == "invited"  # nothing consumed

    with pytest.raises(EnrolmentError, match="named you 'Agent Martin'"):
        api.activate(invitation["activation_code"], "Le Maire")  # the client refuses to try

    _, accepted = api.activate(invitation["activation_code"], "")  # no name of its own: the link's
    assert accepted.status == 201, accepted.body
    assert accepted.body["display_name"] == "Agent Martin"
    assert api.member_row(owner, invitation["member_id"])["display_name"] == "Agent Martin"


def test_a_device_link_and_the_first_owner_carry_no_name(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    assert api.member_row(owner, owned_org[1]["member_id"])["display_name"] == "Maire"  # their own
    link = api.link(owner)
    assert parse_activation(link["activation_url"]).name is None
    _, linked = api.activate(link["activation_code"], "")
    assert linked.status == 201 and linked.body["display_name"] == "Maire"
