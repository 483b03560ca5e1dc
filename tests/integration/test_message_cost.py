"""Invariant 2: one stored copy per message, whatever the channel's size, members or a public
tribe's followers (issue 16, item 4); and the sender key reaches hundreds of followers in
batches of ``KEYS_PER_CALL`` sealed keys.

Runs on the SQLite store only: what is counted is the service's own calls to
the Store port, which do not depend on the adapter, and seeding 1,000 members
into in-process moto takes minutes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bocage.client.issuing import membership_entry
from bocage.client.messenger import KEYS_PER_CALL
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.messages import MessageRecords
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.domain.channel import ChannelRole
from chalicelib.domain.organisation import MemberStatus, Role
from chalicelib.domain.principal import Principal
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


def counted_send_path(container: Any) -> CountingStore:
    """Counts exactly the send path's own store use (its message and counter records)."""
    counting = CountingStore(container.store)
    container.messaging._messages = MessageRecords(counting)
    container.messaging._counters = ChannelRecords(counting)
    return counting


def writes_for_one_message(people: People, counting: CountingStore, channel_id: str) -> int:
    """The send path's writes for one message, its sender key already distributed."""
    people.owner.distribute_key(channel_id)
    counting.reset()
    people.owner.send_text(channel_id, "Réunion publique lundi")
    return counting.writes


def test_one_message_to_a_tribe_of_1000_costs_the_same_writes_as_to_10(
    people: People, container: Any, clock: ManualClock
) -> None:
    counting = counted_send_path(container)
    org_id, owner_id = people.info["owner"]["org_id"], people.info["owner"]["member_id"]
    owner = Principal(
        org_id=org_id, member_id=owner_id, device_id=people.keys["owner"].device_id, role=Role.OWNER
    )

    def tribe_of(size: int) -> str:
        cid = str(people.owner.create_channel("tribe", f"Tribe {size}")["channel_id"])
        previous = container.channels.membership_log(owner, cid, 0, 1)["entries"][0]
        for i in range(size):  # members seeded through the services: activation is not what we measure
            member = container.orgs.add_invited_member(org_id, f"Citizen {i}", Role.MEMBER)
            container.orgs.save_member(member.model_copy(update={"status": MemberStatus.ACTIVE}))
            previous = membership_entry(
                people.keys["owner"].signing,
                owner.device_id,
                org_id=org_id,
                channel_id=cid,
                previous=previous,
                op="add",
                member_id=member.member_id,
                role="member",
                now=clock.now(),
            )
            container.channels.add_member(owner, cid, member.member_id, ChannelRole.MEMBER, previous)
        return cid

    small = writes_for_one_message(people, counting, tribe_of(10))
    large = writes_for_one_message(people, counting, tribe_of(1000))
    # the sequence number (which also counts the month's impact), the id marker, the message:
    # one stored copy, and nothing that grows with the tribe.
    assert small == large == 3


def test_one_message_to_a_public_tribe_of_1000_followers_costs_the_same_writes_as_to_10(
    people: People, api: SignedApi, container: Any
) -> None:
    counting = counted_send_path(container)

    def followed_by(size: int) -> str:
        cid = str(people.owner.create_channel("tribe", f"Public {size}")["channel_id"])
        join_followers(api, people.owner.publish(cid)["join_url"], size)  # through POST /join
        return cid

    small = writes_for_one_message(people, counting, followed_by(10))
    large = writes_for_one_message(people, counting, followed_by(1000))
    assert small == large == 3  # followers are read from the roster, never written per message


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

    people.owner.client.request = recorded
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
