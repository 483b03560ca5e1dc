"""'Vu par N / M' (GET /channels/{c}/seen), on both stores: how far each member has read, from
the read cursors the server keeps for unread counts; members of a group, a tribe's managers only,
404 for another organisation."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.api import ApiError
from tests.support import People, SignedApi, messenger_for


def seen(reader: Any, cid: str) -> dict[str, int]:
    answer = reader.client.request("GET", f"/channels/{cid}/seen")
    assert answer["channel_id"] == cid
    return {m["member_id"]: m["seq"] for m in answer["members"]}


def test_each_member_s_furthest_read(people: People) -> None:
    alice, bob, carol = people.join("alice"), people.join("bob"), people.join("carol")
    ids = {name: people.info[name]["member_id"] for name in ("alice", "bob", "carol")}
    cid = alice.create_channel("group", "Conseil")["channel_id"]
    alice.add_member(cid, ids["bob"])
    alice.add_member(cid, ids["carol"])
    alice.send_text(cid, "un")
    alice.send_text(cid, "deux")
    bob.read(cid)
    positions = seen(carol, cid)  # any member of a group: each may be a sender
    assert (positions[ids["bob"]], positions[ids["carol"]]) == (2, 0)
    assert set(positions) == set(ids.values())
    carol.read(cid, since=0, limit=1)
    assert seen(alice, cid)[ids["carol"]] == 1


def test_in_a_tribe_only_managers_see_it(people: People, api: SignedApi, operator: Any) -> None:
    reader = people.join("reader")
    outsider = people.join("outsider")
    cid = people.owner.create_channel("tribe", "Infos")["channel_id"]
    people.owner.add_member(cid, people.info["reader"]["member_id"])
    people.owner.send_text(cid, "Coupure d'eau")
    reader.read(cid)
    assert seen(people.owner, cid)[people.info["reader"]["member_id"]] == 1
    for refused in (reader, outsider):
        with pytest.raises(ApiError) as denied:
            seen(refused, cid)
        assert denied.value.status == 403
    other = api.create_org(operator, name="Autre")
    stranger_keys, info = api.activate(other["activation_code"], "Stranger")
    stranger = messenger_for(api, stranger_keys, people.tmp / "stranger", info.body)
    with pytest.raises(ApiError) as hidden:
        seen(stranger, cid)
    assert hidden.value.status == 404
