"""Changes to a channel's record made at the same time (docs/architecture.md, "The store
contract"): each is a conditional read-change-write, retried on what is stored, so a rename,
a retention change and a partner organisation's first member never undo one another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.domain.channel import Channel
from tests.support import People, SignedApi


def race_once(container: Any, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]) -> list[bool]:
    """The next channel update reads the record, then ``meanwhile`` writes it (another request
    landing between that read and the write), then the update writes."""
    records: ChannelRecords = container.channels._records
    real_update = records.update
    raced: list[bool] = []

    def update(channel_id: str, change: Callable[[Channel], Channel]) -> Channel | None:
        def change_after_another_write(read: Channel) -> Channel:
            if not raced:
                raced.append(True)
                meanwhile()
            return change(read)

        return real_update(channel_id, change_after_another_write)

    monkeypatch.setattr(records, "update", update)
    return raced


def test_a_retention_change_racing_a_rename_keeps_both(
    people: People, api: SignedApi, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = people.keys["owner"]
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]

    def rename() -> None:
        assert api.call("PUT", f"/channels/{cid}", {"name": "Conseil municipal"}, signer=owner).status == 200

    raced = race_once(container, monkeypatch, rename)
    reply = api.call("PUT", f"/channels/{cid}/retention", {"duration": "7d"}, signer=owner)
    assert reply.status == 200 and raced == [True]
    [listed] = [c for c in people.owner.channels() if c["channel_id"] == cid]
    assert listed["name"] == "Conseil municipal" and listed["retention_days"] == 7


def test_a_rename_racing_a_retention_change_keeps_both(
    people: People, api: SignedApi, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = people.keys["owner"]
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]

    def shorten() -> None:
        reply = api.call("PUT", f"/channels/{cid}/retention", {"duration": "30d"}, signer=owner)
        assert reply.status == 200

    race_once(container, monkeypatch, shorten)
    assert api.call("PUT", f"/channels/{cid}", {"name": "Bureau"}, signer=owner).status == 200
    [listed] = [c for c in people.owner.channels() if c["channel_id"] == cid]
    assert listed["name"] == "Bureau" and listed["retention_days"] == 30


def test_a_channel_that_keeps_changing_answers_409_and_loses_nothing(
    people: People, api: SignedApi, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another write lands before every attempt: after a few, the caller is told to retry."""
    owner = people.keys["owner"]
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    records: ChannelRecords = container.channels._records
    real_update = records.update
    names = iter(f"Nom {n}" for n in range(100))

    def update(channel_id: str, change: Callable[[Channel], Channel]) -> Channel | None:
        def renamed_meanwhile(read: Channel) -> Channel:
            records.save(read.model_copy(update={"name": next(names)}))
            return change(read)

        return real_update(channel_id, renamed_meanwhile)

    monkeypatch.setattr(records, "update", update)
    reply = api.call("PUT", f"/channels/{cid}/retention", {"duration": "7d"}, signer=owner)
    assert reply.status == 409 and "changed meanwhile" in reply.body["message"]
    stored = records.get(cid)
    assert stored is not None and stored.name.startswith("Nom ") and stored.retention_days is None
