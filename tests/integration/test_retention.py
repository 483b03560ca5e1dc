"""Retention: what the organisation chose is what is served, stored and deleted, on both stores."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.api import ApiError
from chalicelib.domain.retention import DAY
from chalicelib.services import retention as retention_service
from tests.support import People, SignedApi, scan_all


def _texts(messenger: Any, channel_id: str) -> list[str]:
    return [m["text"] for m in messenger.read(channel_id)["messages"]]


def _stored_messages(container: Any, channel_id: str) -> list[dict[str, Any]]:
    return [
        r for r in scan_all(container.store) if r["pk"] == f"CHAN#{channel_id}" and r["sk"].startswith("MSG#")
    ]


def test_visible_one_second_before_retention_ends_invisible_one_second_after(
    people: People, api: SignedApi
) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.owner.send_text(cid, "éphémère")
    api.clock.advance(90 * DAY - 1)
    assert _texts(people.owner, cid) == ["éphémère"]
    api.clock.advance(2)
    assert _texts(people.owner, cid) == []


def test_shortening_a_year_to_three_months_hides_at_once_then_the_job_deletes(
    people: People, api: SignedApi, container: Any
) -> None:
    assert people.owner.client.request("PUT", "/retention", {"duration": "1y"})["retention_days"] == 365
    cid = people.owner.create_channel("group", "Archives")["channel_id"]
    people.owner.send_text(cid, "vieux")
    api.clock.advance(120 * DAY)
    people.owner.send_text(cid, "récent")
    assert _texts(people.owner, cid) == ["vieux", "récent"]

    shown = people.owner.client.request("PUT", "/retention", {"duration": "3m"})
    assert (shown["retention_days"], shown["retention"]) == (90, "3m")
    assert _texts(people.owner, cid) == ["récent"]  # hidden before any job has run
    assert len(_stored_messages(container, cid)) == 2  # ...though still stored

    report = container.retention.run()
    assert report.deleted >= 1 and report.finished == [people.info["owner"]["org_id"]]
    stored = _stored_messages(container, cid)
    assert len(stored) == 1
    assert stored[0]["expires_at"] == stored[0]["stored_at"] + 90 * DAY  # re-stamped for the TTL
    assert container.retention.run().jobs == 0  # nothing left pending


def test_a_channel_may_keep_less_never_more(people: People, api: SignedApi, container: Any) -> None:
    cid = people.owner.create_channel("group", "Court")["channel_id"]
    people.owner.send_text(cid, "day one")
    with pytest.raises(ApiError) as longer:
        people.owner.client.request("PUT", f"/channels/{cid}/retention", {"duration": "1y"})
    assert longer.value.status == 400 and "less time" in longer.value.message
    shown = people.owner.client.request("PUT", f"/channels/{cid}/retention", {"duration": "7d"})
    assert shown["retention_days"] == 7 and shown["org_retention_days"] == 90
    sent = people.owner.send_text(cid, "short lived")
    assert sent["expires_at"] == api.clock.now() + 7 * DAY
    api.clock.advance(8 * DAY)
    assert _texts(people.owner, cid) == []
    container.retention.run()
    # What the job could see it deleted; what remains is already past its TTL, which
    # DynamoDB (or the SQLite purge) removes: nothing stored may outlive 7 days.
    now = api.clock.now()
    assert all(r["expires_at"] <= now for r in _stored_messages(container, cid))
    purge = getattr(container.store, "purge_expired", None)
    if purge is not None:
        purge()
        assert _stored_messages(container, cid) == []


def test_who_may_change_retention(people: People, api: SignedApi) -> None:
    member = people.join("agent")
    with pytest.raises(ApiError) as refused:
        member.client.request("PUT", "/retention", {"duration": "30d"})
    assert refused.value.status == 403
    cid = member.create_channel("group", "Mine")["channel_id"]  # its author manages it
    assert (
        member.client.request("PUT", f"/channels/{cid}/retention", {"duration": "30d"})["retention_days"]
        == 30
    )
    other = people.join("other")
    member.add_member(cid, people.info["other"]["member_id"])
    with pytest.raises(ApiError) as not_manager:
        other.client.request("PUT", f"/channels/{cid}/retention", {"duration": "1d"})
    assert not_manager.value.status == 403


@pytest.mark.parametrize("duration", ["0d", "6y", "forever", "90", "-1d", ""])
def test_bad_durations_are_400(people: People, duration: str) -> None:
    with pytest.raises(ApiError) as bad:
        people.owner.client.request("PUT", "/retention", {"duration": duration})
    assert bad.value.status == 400
    assert people.owner.client.request("GET", "/retention")["retention_days"] == 90


def test_a_crashed_job_resumes_and_deletes_nothing_that_should_live(
    people: People, api: SignedApi, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of 20 (not the job's 200): the same shape, pages within and across channels, with a
    # tenth of the messages to send.
    monkeypatch.setattr(retention_service, "PAGE", 20)
    people.owner.client.request("PUT", "/retention", {"duration": "1y"})
    channels = [people.owner.create_channel("group", f"C{i}")["channel_id"] for i in range(2)]
    for cid in channels:
        for i in range(13):
            people.owner.send_text(cid, f"old {i}")
    api.clock.advance(200 * DAY)
    for cid in channels:
        for i in range(9):
            people.owner.send_text(cid, f"young {i}")
    people.owner.client.request("PUT", "/retention", {"duration": "3m"})

    store = container.store  # the store the retention job writes through
    real_batch_write = store.batch_write
    calls = {"n": 0}

    def crash_on_third(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("the Lambda died here")
        real_batch_write(*args, **kwargs)

    monkeypatch.setattr(store, "batch_write", crash_on_third)
    with pytest.raises(ConnectionError):
        container.retention.run()
    monkeypatch.setattr(store, "batch_write", real_batch_write)

    report = container.retention.run()
    assert report.finished  # resumed and reached the end
    now = api.clock.now()
    for cid in channels:
        stored = _stored_messages(container, cid)
        assert len(stored) == 9  # every old one gone, every young one kept
        assert all(r["expires_at"] == r["stored_at"] + 90 * DAY > now for r in stored)
        assert [m["text"] for m in people.owner.read(cid, limit=200)["messages"]] == [
            f"young {i}" for i in range(9)
        ]


def test_every_expiring_kind_carries_expires_at(people: People, api: SignedApi, container: Any) -> None:
    bob = people.join("bob")
    cid = people.owner.create_channel("group", "G")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    people.owner.send_text(cid, "x")  # message, id marker, sealed key
    bob.read(cid)  # nonce (every signed request), read cursor
    api.invite(people.keys["owner"], "pending")  # invitation
    api.ws_connect(people.keys["bob"], "conn-1")  # presence
    expiring = ("MSG#", "MID#", "KEY#", "CONN#")
    rows = scan_all(container.store)
    kinds_seen = set()
    for row in rows:
        kind = next((k for k in expiring if row["sk"].startswith(k)), None)
        kind = kind or next((p for p in ("INVITE#", "NONCE#", "CONN#") if row["pk"].startswith(p)), None)
        if kind is None:
            continue
        kinds_seen.add(kind)
        assert isinstance(row.get("expires_at"), int), row
    assert kinds_seen == {"MSG#", "MID#", "KEY#", "CONN#", "INVITE#", "NONCE#"}


def test_keys_rotate_once_older_than_retention_and_stay_readable(people: People, api: SignedApi) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    bob = people.join("bob")  # a member from the start who reads only at the end: no key cached
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    people.owner.send_text(cid, "jour 0")
    api.clock.advance(60 * DAY)
    people.owner.send_text(cid, "jour 60")
    api.clock.advance(40 * DAY)
    third = people.owner.send_text(cid, "jour 100")  # the epoch is 100 days old: it rotates first
    shown = bob.read(cid)["messages"]
    assert [(m["text"], m["verified"]) for m in shown] == [("jour 60", True), ("jour 100", True)]
    stored = {
        m["seq"]: m for m in people.owner.client.request("GET", f"/channels/{cid}/messages")["messages"]
    }
    assert stored[third["seq"]]["epoch"] == stored[2]["epoch"] + 1


def test_a_retention_change_keeps_the_keys_live_messages_need(
    people: People, api: SignedApi, container: Any
) -> None:
    people.owner.client.request("PUT", "/retention", {"duration": "1y"})
    cid = people.owner.create_channel("group", "G")["channel_id"]
    bob = people.join("bob")
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    people.owner.send_text(cid, "il y a longtemps")
    api.clock.advance(200 * DAY)
    people.owner.send_text(cid, "hier")  # same epoch, same key, uploaded 200 days ago
    people.owner.client.request("PUT", "/retention", {"duration": "3m"})
    container.retention.run()
    shown = bob.read(cid)["messages"]  # bob never fetched the key before: it must still be stored
    assert [(m["text"], m["verified"]) for m in shown] == [("hier", True)]
    keys_left = [
        r for r in scan_all(container.store) if r["pk"] == f"CHAN#{cid}" and r["sk"].startswith("KEY#")
    ]
    assert keys_left and all(r["expires_at"] >= api.clock.now() + 90 * DAY for r in keys_left)
