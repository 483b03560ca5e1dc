"""An ended partnership's clean-up (docs/protocol.md, 22.6) as a resumable job walking the pair's
index of shared memberships: on SQLite and moto's DynamoDB, through the real app and clients.
Each channel re-keys once whatever the number of the ended side's members in it; a clean-up cut
by its budget or by a failing store finishes on the next scheduled run; its store operations
follow the shared memberships, not the organisations' sizes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import jobs
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.adapters.records import keys
from chalicelib.ports import Store
from tests.faults import FaultyStore
from tests.integration.test_partner_groups import member_of, shared
from tests.integration.test_partners import Pair, listed_ticket_key, pair
from tests.support import SignedApi, messenger_for

__all__ = ["pair"]


@pytest.fixture
def app_store(app_store: Store) -> Store:
    """The app's store, counted and able to fail on chosen calls (``store.inner``)."""
    return CountingStore(FaultyStore(app_store))


def _b_members(pair: Pair, api: SignedApi, tmp_path: Any, names: list[str]) -> list[str]:
    """New members of B, activated (each with a device), as A's client can add them."""
    ids = []
    for name in names:
        member_keys, info = api.join(pair.b_keys, name)
        messenger_for(api, member_keys, tmp_path / name, info)
        ids.append(str(info["member_id"]))
    return ids


def _groups(pair: Pair, api: SignedApi, tmp_path: Any) -> dict[str, list[str]]:
    """Two of A's groups holding three and two of B's members, and one of B's holding A's
    member: channel id -> the partner's members in it."""
    first = shared(pair)
    extra = _b_members(pair, api, tmp_path, ["Métreur", "Paysagiste"])
    for member_id in extra:
        pair.a.add_member(first, member_id)
    second = str(pair.a.create_channel("group", "Voirie")["channel_id"])
    for member_id in (member_of(pair.b_member), extra[0]):
        pair.a.add_member(second, member_id)
    adjoint = pair.people.join("Adjoint")
    pair.b_owner.partners.listing()
    b_group = str(pair.b_owner.create_channel("group", "Plans")["channel_id"])
    pair.b_owner.add_member(b_group, member_of(adjoint))
    return {
        first: [member_of(pair.b_member), *extra],
        second: [member_of(pair.b_member), extra[0]],
        b_group: [member_of(adjoint)],
    }


def _epochs(container: Any, channel_ids: list[str]) -> dict[str, int]:
    return {cid: container.channels.epoch(cid).number for cid in channel_ids}


def _left_in(container: Any, groups: dict[str, list[str]]) -> dict[str, list[str]]:
    """The partner's members still in each channel, as the server keeps them."""
    return {
        cid: sorted(m for m in partners if container.channels.membership(cid, m) is not None)
        for cid, partners in groups.items()
    }


def _index(container: Any, host: str, member_org: str) -> list[Any]:
    """The pair's index of shared memberships, as stored."""
    return list(container.store.query(keys.shared_memberships(host, member_org), limit=100).items)


def test_an_end_takes_every_partner_member_out_and_each_channel_rekeys_once(
    pair: Pair, api: SignedApi, container: Any, tmp_path: Any
) -> None:
    groups = _groups(pair, api, tmp_path)
    assert len(_index(container, pair.a_org, pair.b_org)) == 5
    assert len(_index(container, pair.b_org, pair.a_org)) == 1
    before = _epochs(container, list(groups))
    pair.a.partners.end(pair.b_org)
    assert _left_in(container, groups) == {cid: [] for cid in groups}
    assert _epochs(container, list(groups)) == {cid: epoch + 1 for cid, epoch in before.items()}
    for cid, partners in groups.items():
        roster = {d.member_id for d in container.channels.roster_devices(cid)}
        assert not roster & set(partners)
        assert container.channels.member_count(cid) == 1  # the host's member who made it
    assert _index(container, pair.a_org, pair.b_org) == _index(container, pair.b_org, pair.a_org) == []
    assert container.partner_ends.run().jobs == 0  # nothing left pending
    again = api.call("DELETE", f"/partners/{pair.b_org}", _end(pair), signer=pair.people.keys["owner"])
    assert again.status == 200, again.body  # a retried end converges: no channel re-keys again
    assert _epochs(container, list(groups)) == {cid: epoch + 1 for cid, epoch in before.items()}


def _end(pair: Pair) -> dict[str, Any]:
    from bocage.client import issuing

    trust = pair.a.trust
    ticket_key = listed_ticket_key(pair.a, pair.b_org)
    return {
        "statement": issuing.partnership_end(
            trust.keys.signing, trust.keys.device_id, trust.org_id, pair.b_org, ticket_key, trust.now()
        )
    }


def test_a_clean_up_left_by_the_end_request_is_finished_by_the_scheduled_run(
    pair: Pair, api: SignedApi, container: Any, tmp_path: Any
) -> None:
    groups = _groups(pair, api, tmp_path)
    before = _epochs(container, list(groups))
    container.partner_ends.request_budget = 0  # the request's time is spent before any channel
    pair.b_owner.partners.end(pair.a_org)
    assert _left_in(container, groups) == {cid: sorted(m) for cid, m in groups.items()}
    first = next(iter(groups))
    reply = api.call("GET", f"/channels/{first}/messages", signer=pair.b_member.keys)
    assert reply.status == 404, reply.body  # access is refused at once, clean-up or not
    summary = jobs.run_retention(budget_seconds=60)
    assert summary["partner_ends"]["channels"] == 3 and summary["partner_ends"]["members"] == 6
    assert _left_in(container, groups) == {cid: [] for cid in groups}
    assert _epochs(container, list(groups)) == {cid: epoch + 1 for cid, epoch in before.items()}
    assert jobs.run_retention(budget_seconds=60)["partner_ends"]["jobs"] == 0  # harmless again
    assert _epochs(container, list(groups)) == {cid: epoch + 1 for cid, epoch in before.items()}


def test_a_clean_up_cut_by_a_failing_store_resumes_where_it_stopped(
    pair: Pair, api: SignedApi, container: Any, tmp_path: Any
) -> None:
    groups = _groups(pair, api, tmp_path)
    a_groups = sorted(cid for cid in groups if container.channels.find(cid).org_id == pair.a_org)
    before = _epochs(container, list(groups))
    container.partner_ends.request_budget = 0
    pair.a.partners.end(pair.b_org)
    faulty: FaultyStore = container.store.inner
    later = a_groups[-1]  # the index is walked in channel id order: this one comes second
    faulty.fail("batch_write", key=keys.channel_member(later, member_of(pair.b_member)))
    with pytest.raises(ClientError):
        jobs.run_retention(budget_seconds=60)
    assert _left_in(container, groups)[a_groups[0]] == []
    assert _left_in(container, groups)[later] == sorted(groups[later])
    faulty.heal()
    assert container.partner_ends.run().finished == [_pair_id(pair)]
    assert _left_in(container, groups) == {cid: [] for cid in groups}
    assert _epochs(container, list(groups)) == {cid: epoch + 1 for cid, epoch in before.items()}


def _pair_id(pair: Pair) -> str:
    return "#".join(sorted((pair.a_org, pair.b_org)))


def test_an_end_s_store_operations_do_not_grow_with_the_organisations(
    pair: Pair, api: SignedApi, container: Any, tmp_path: Any
) -> None:
    """The same shared groups ended twice: the second time each organisation has 30 more members
    (in channels of their own), and the clean-up costs exactly as much."""
    counting: CountingStore = container.store
    container.partner_ends.request_budget = 0
    costs = []
    for round_ in range(2):
        if round_:  # shared() partners them again
            _b_members(pair, api, tmp_path, [f"B{i}" for i in range(30)])
            for i in range(30):
                pair.people.join(f"A{i}")
            pair.b_owner.create_channel("group", "Interne")
            pair.a.create_channel("group", "Interne")
        cid = shared(pair, name=f"Chantier {round_}")
        api.clock.advance(60)  # the end comes after the additions
        pair.a.partners.end(pair.b_org)
        assert container.channels.membership(cid, member_of(pair.b_member)) is not None
        counting.reset()
        report = container.partner_ends.run()
        costs.append(dict(counting.reset()))
        assert (report.channels, report.members) == (1, 1)
        assert container.channels.membership(cid, member_of(pair.b_member)) is None
    assert costs[0] == costs[1], costs


def test_a_clean_up_finished_after_partnering_again_keeps_the_new_partnership_s_members(
    pair: Pair, api: SignedApi, container: Any
) -> None:
    old = shared(pair)
    container.partner_ends.request_budget = 0
    pair.a.partners.end(pair.b_org)
    api.clock.advance(60)
    new = shared(pair, name="Nouveau chantier")  # partnered again before the scheduled run
    epoch = container.channels.epoch(new).number
    assert container.partner_ends.run().finished == [_pair_id(pair)]
    assert container.channels.membership(old, member_of(pair.b_member)) is None
    assert container.channels.membership(new, member_of(pair.b_member)) is not None
    assert container.channels.epoch(new).number == epoch
    assert [m["channel_id"] for m in pair.b_member.channels()] == [new]
