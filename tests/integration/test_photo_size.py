"""The organisation's photo size (docs/protocol.md, 18): its admins choose the longest side of
the photos its devices send; every member's device reads it from /me; it is audited; members
and other organisations cannot change it, and out-of-range values are refused with 400."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.api import ApiError
from bocage.client.profile import OperatorKey
from chalicelib.domain.files import PHOTO_MAX_SIDE
from tests.support import People, SignedApi, messenger_for


@pytest.fixture
def stranger(people: People, api: SignedApi, operator: OperatorKey) -> Any:
    """The owner of another organisation."""
    other = api.create_org(operator, name="Autre")
    keys, info = api.activate(other["activation_code"], "Stranger")
    return messenger_for(api, keys, people.tmp / "stranger", info.body)


def _refused(call: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as refused:
        call()
    return refused.value.status, refused.value.message


def test_admins_choose_the_photo_size_members_devices_read_it(people: People, stranger: Any) -> None:
    alice = people.join("alice")
    assert alice.client.whoami()["org"]["photo_max_side"] == PHOTO_MAX_SIDE  # 1,600 px by default
    set_side = people.owner.client.request("PUT", "/org/photos", {"max_side": 1280})
    assert set_side == {"org_id": people.info["owner"]["org_id"], "photo_max_side": 1280}
    assert alice.client.whoami()["org"]["photo_max_side"] == 1280
    assert _refused(lambda: alice.client.request("PUT", "/org/photos", {"max_side": 4096}))[0] == 403
    status, message = _refused(lambda: people.owner.client.request("PUT", "/org/photos", {"max_side": 64}))
    assert status == 400 and "480" in message
    assert _refused(lambda: people.owner.client.request("PUT", "/org/photos", {"max_side": "big"}))[0] == 400
    # Another organisation's admin changes their own organisation, never this one.
    stranger.client.request("PUT", "/org/photos", {"max_side": 2048})
    assert alice.client.whoami()["org"]["photo_max_side"] == 1280
    entries = people.owner.client.request("GET", "/audit")["entries"]
    changed = [e for e in entries if e["action"] == "org.photo_size_changed"]
    assert [(e["details"]["old"], e["details"]["new"]) for e in changed] == [(1600, 1280)]
