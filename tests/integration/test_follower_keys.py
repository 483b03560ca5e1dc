"""A public tribe's sender key reaches its followers in batches (issue 16, item 4): the Python
client against the real app on SQLite, hundreds of followers joined as ``POST /join`` does."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bocage.client.messenger import KEYS_PER_CALL
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.ports import Store
from chalicelib.settings import Settings
from tests.support import People, SignedApi, join_followers

FOLLOWERS = 450  # three calls of at most 200: two full, one partial


@pytest.fixture
def app_store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    store = SqliteStore(str(tmp_path / "bocage.sqlite3"), clock)
    yield store
    store.close()


@pytest.fixture
def app_settings(app_settings: Settings) -> Settings:
    """Every join comes from the test client's one address: no hourly share in the way."""
    return dataclasses.replace(app_settings, joins_per_tribe_hour=10**9)


def test_one_message_seals_the_key_to_every_follower_in_batches_of_200(
    people: People, api: SignedApi
) -> None:
    ana = people.join("ana")  # a member's device is sealed to in the same calls
    tribe = people.owner.create_channel("tribe", "La vie du village")["channel_id"]
    people.owner.add_member(tribe, people.info["ana"]["member_id"])
    followers = join_followers(api, people.owner.publish(tribe)["join_url"], FOLLOWERS)
    calls: list[tuple[str, str, int]] = []
    request = people.owner.client.request

    def recorded(method: str, path: str, body: dict[str, Any] | None = None, query: Any = None) -> Any:
        calls.append((method, path, len((body or {}).get("keys", ()))))
        return request(method, path, body, query)

    people.owner.client.request = recorded  # type: ignore[method-assign]
    people.owner.send_text(tribe, "Marché de Noël samedi sur la place")
    uploads = [size for method, path, size in calls if (method, path) == ("PUT", f"/channels/{tribe}/keys")]
    recipients = FOLLOWERS + 1  # every follower's device and Ana's; never the author's own
    assert len(uploads) == math.ceil(recipients / KEYS_PER_CALL) == 3
    assert uploads == [KEYS_PER_CALL, KEYS_PER_CALL, recipients - 2 * KEYS_PER_CALL]
    epoch = people.owner.roster(tribe)["epoch"]
    author = people.keys["owner"].device_id
    for device in followers:
        reply = api.call("GET", f"/channels/{tribe}/keys", signer=device, query={"epoch": str(epoch)})
        assert reply.status == 200, reply.body
        assert [(k["sender_device"], k["recipient_device"]) for k in reply.body["keys"]] == [
            (author, device.device_id)
        ]
    assert ana.read(tribe)["messages"][-1]["text"] == "Marché de Noël samedi sur la place"
