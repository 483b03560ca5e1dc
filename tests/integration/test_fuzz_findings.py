"""What the schemathesis fuzzer found (tests/e2e/test_fuzz.py, bench/fuzz.py): each a 500 before
its fix, now a clear 4xx with ``{"error", "message"}``."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.profile import DeviceKeys, OperatorKey
from tests.support import SignedApi

Owner = tuple[DeviceKeys, dict[str, Any]]
# Python's str.strip() takes these ASCII separators; pydantic's Unicode stripping does not.
BLANKS = ["\x1c", "\x1f\x1e", " \x1d "]


@pytest.mark.parametrize("blank", BLANKS)
def test_an_org_named_with_separators_only_is_refused(
    api: SignedApi, operator: OperatorKey, blank: str
) -> None:
    for body in ({"name": blank}, {"name": "Mairie", "owner_name": blank}):
        reply = api.call("POST", "/orgs", body, signer=operator)
        assert reply.status == 400 and reply.body["error"] == "bad_request", reply.body
        assert "blank" in reply.body["message"]


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_invitee_and_channel_names_are_refused(api: SignedApi, owned_org: Owner, blank: str) -> None:
    owner, _ = owned_org
    invite = api.call("POST", "/invitations", {"display_name": blank}, signer=owner)
    assert invite.status == 400 and "display_name" in invite.body["message"], invite.body
    channel = api.call("POST", "/channels", {"kind": "group", "name": blank}, signer=owner)
    assert channel.status == 400 and "name" in channel.body["message"], channel.body
