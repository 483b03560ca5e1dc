""" "@mention me only"'s pure rules (chalicelib/domain/mentions_only.py): what a member's choice
must be for the server to keep it, what a sender's ``notify`` may hold, and who a message wakes."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.issuing import notify_choice
from bocage.client.profile import DeviceKeys
from chalicelib.domain.mentions_only import MAX_NOTIFY, check_choice, parse_notify, wakes
from chalicelib.errors import BadRequest

ORG, CHANNEL, MEMBER = "o_aaaaaaaaaaaaaaaa", "c_bbbbbbbbbbbbbbbb", "m_cccccccccccccccc"
NOW = 1_800_000_000


def signed(keys: DeviceKeys, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "org_id": ORG,
        "channel_id": CHANNEL,
        "member_id": MEMBER,
        "mentions_only": True,
    }
    return notify_choice(keys.signing, keys.device_id, **{**fields, "now": NOW, **over})


def checked(statement: object, keys: DeviceKeys) -> Any:
    return check_choice(
        statement,
        org_id=ORG,
        channel_id=CHANNEL,
        member_id=MEMBER,
        device_id=keys.device_id,
        sign_public_key=keys.sign_public_key,
        now=NOW,
    )


def test_the_caller_s_own_signed_choice_is_kept() -> None:
    keys = DeviceKeys.generate()
    choice = checked(signed(keys), keys)
    assert (choice.member_id, choice.mentions_only, choice.issued_at) == (MEMBER, True, NOW)


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"channel_id": "c_dddddddddddddddd"}, "channel_id"),
        ({"member_id": "m_dddddddddddddddd"}, "member_id"),
        ({"org_id": "o_dddddddddddddddd"}, "org_id"),
        ({"now": NOW + 3600}, "future"),
    ],
)
def test_a_choice_for_someone_else_elsewhere_or_from_the_future_is_refused(
    over: dict[str, Any], why: str
) -> None:
    keys = DeviceKeys.generate()
    with pytest.raises(BadRequest, match=why):
        checked(signed(keys, **over), keys)


def test_a_choice_signed_by_another_key_or_unsigned_is_refused() -> None:
    keys, other = DeviceKeys.generate(), DeviceKeys.generate()
    statement = signed(keys)
    with pytest.raises(BadRequest, match="signature"):
        checked({**statement, "sig": signed(other)["sig"]}, keys)
    with pytest.raises(BadRequest, match="missing"):
        checked({k: v for k, v in statement.items() if k != "sig"}, keys)
    with pytest.raises(BadRequest, match="v1"):
        checked({**statement, "purpose": "bocage/notify/v1"}, keys)


def test_notify_holds_distinct_member_ids_and_is_bounded() -> None:
    member = [MEMBER]
    assert parse_notify(None) == () and parse_notify(member) == (MEMBER,)
    many = [f"m_{'a' * 12}{i:04d}" for i in range(MAX_NOTIFY + 1)]
    for bad, why in (
        ("m_cccccccccccccccc", "list"),
        ([1], "member ids"),
        (["f_cccccccccccccccc"], "member ids"),  # a follower chooses nothing
        (many, "at most"),
        (member * 2, "twice"),
    ):
        with pytest.raises(BadRequest, match=why):
            parse_notify(bad)


def test_a_mentions_only_member_wakes_only_when_named() -> None:
    assert wakes(MEMBER, set(), ())
    assert not wakes(MEMBER, {MEMBER}, ())
    assert wakes(MEMBER, {MEMBER}, (MEMBER,))
    assert wakes("m_dddddddddddddddd", {MEMBER}, ())
