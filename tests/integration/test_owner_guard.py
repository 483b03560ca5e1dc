"""An organisation keeps at least one owner, even when owners demote or remove each other at once.

The store has no transactions, so the guard is a counter of owners decremented before a
demotion or removal is written (docs/architecture.md, "The store contract"). These tests race
real threads against both stores, as concurrent Lambda invocations or request threads would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from bocage.client.issuing import removal, role_statement
from bocage.client.profile import DeviceKeys
from chalicelib import wiring
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.domain.organisation import MemberStatus, Role
from chalicelib.domain.principal import Principal
from chalicelib.errors import Conflict
from tests.support import SignedApi

OWNERS = 4
ROUNDS = 4
LAST_OWNER = "an organisation keeps at least one owner"

Owner = tuple[DeviceKeys, dict[str, Any]]


def _owners(container: wiring.Container, org_id: str) -> list[str]:
    """The owners as stored; the count that guards them must agree (no crash here: no lag)."""
    members, _ = container.orgs.history(org_id)
    owners = [m.member_id for m in members if m.role is Role.OWNER and m.status is not MemberStatus.REMOVED]
    assert MemberRecords(container.store).owner_count(org_id) == len(owners)
    return owners


def _promote_all(api: SignedApi, by: DeviceKeys, team: list[Owner]) -> None:
    for _, info in team:
        if api.member_row(by, info["member_id"])["role"] != "owner":
            reply = api.set_role(by, info["member_id"], "owner")
            assert reply.status == 200, reply.body


def _team(api: SignedApi, owned_org: Owner) -> list[Owner]:
    owner_keys, _owner_info = owned_org
    team = [owned_org] + [api.join(owner_keys, f"Adjoint {i}", "admin") for i in range(1, OWNERS)]
    _promote_all(api, owner_keys, team)
    return team


def _race(calls: list[Callable[[], object]]) -> list[object]:
    """Run every call at once (a barrier), returning each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # the test inspects what each one raised
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _principal(keys: DeviceKeys, info: dict[str, Any]) -> Principal:
    """Who each caller is, as authenticated before the race: every one still an owner."""
    return Principal(
        org_id=info["org_id"], member_id=info["member_id"], device_id=keys.device_id, role=Role.OWNER
    )


def _check_losers(results: list[object]) -> int:
    """Every call either succeeded or lost with a clear 409; returns how many lost."""
    losers = [r for r in results if isinstance(r, Exception)]
    for loser in losers:
        assert isinstance(loser, Conflict), repr(loser)
        assert loser.status == 409
        assert str(loser) in (LAST_OWNER, "this member changed meanwhile; reload and retry")
    return len(losers)


def test_owners_demoting_each_other_at_once_leave_an_owner(
    api: SignedApi, owned_org: Owner, container: wiring.Container
) -> None:
    team = _team(api, owned_org)
    org_id = owned_org[1]["org_id"]
    for _ in range(ROUNDS):
        calls: list[Callable[[], object]] = []
        for index, (keys, info) in enumerate(team):
            target = team[(index + 1) % len(team)][1]["member_id"]
            row = api.member_row(keys, target)
            serial = 1 + max((s["serial"] for s in row["role_statements"]), default=0)
            statement = role_statement(keys.signing, keys.device_id, row, "admin", serial, api.clock.now())
            principal = _principal(keys, info)
            calls.append(partial(container.orgs.set_role, principal, target, Role.ADMIN, statement))
        results = _race(calls)
        survivors = _owners(container, org_id)
        assert len(survivors) >= 1, results
        assert _check_losers(results) >= 1
        survivor = next(keys for keys, info in team if info["member_id"] == survivors[0])
        _promote_all(api, survivor, team)  # the next round starts with every one an owner again
        assert len(_owners(container, org_id)) == OWNERS


def test_owners_removing_each_other_at_once_leave_an_owner(
    api: SignedApi, owned_org: Owner, container: wiring.Container
) -> None:
    team = _team(api, owned_org)
    org_id = owned_org[1]["org_id"]
    calls: list[Callable[[], object]] = []
    for index, (keys, info) in enumerate(team):
        target = team[(index + 1) % len(team)][1]["member_id"]
        statement = removal(keys.signing, keys.device_id, api.member_row(keys, target), api.clock.now())
        principal = _principal(keys, info)
        calls.append(partial(container.orgs.remove_member, principal, target, statement))
    results = _race(calls)
    assert len(_owners(container, org_id)) >= 1, results
    assert _check_losers(results) >= 1


@pytest.mark.parametrize("action", ["demote", "remove"])
def test_a_lone_owner_cannot_be_demoted_or_removed(
    api: SignedApi, owned_org: Owner, container: wiring.Container, action: str
) -> None:
    """Counted, not just checked: an owner whose principal is stale still cannot take the last one."""
    owner_keys, owner_info = owned_org
    deputy, info = api.join(owner_keys, "Adjoint", "admin")
    assert api.set_role(owner_keys, info["member_id"], "owner").status == 200
    assert api.set_role(deputy, owner_info["member_id"], "admin").status == 200
    stale = _principal(owner_keys, owner_info)  # authenticated while still an owner
    row = api.member_row(owner_keys, info["member_id"])
    with pytest.raises(Conflict, match=LAST_OWNER):
        if action == "demote":
            statement = role_statement(
                owner_keys.signing, owner_keys.device_id, row, "admin", 2, api.clock.now()
            )
            container.orgs.set_role(stale, info["member_id"], Role.ADMIN, statement)
        else:
            statement = removal(owner_keys.signing, owner_keys.device_id, row, api.clock.now())
            container.orgs.remove_member(stale, info["member_id"], statement)
    assert _owners(container, owner_info["org_id"]) == [info["member_id"]]
