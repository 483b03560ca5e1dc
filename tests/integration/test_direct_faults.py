"""Opening a direct conversation with a store fault at each of its writes in turn: every failure
is retry-safe and the same request, resent with the same signed entries, completes with both
members in (the sweep of tests/integration/test_faults.py)."""

from __future__ import annotations

from tests.faults import FaultyStore
from tests.integration.test_faults import Route, container, faulty, faulty_push, sweep
from tests.support import People, SignedApi

__all__ = ["container", "faulty", "faulty_push"]  # the fixtures, over a store that fails on demand


def test_open_direct_completes_or_fails_retry_safe_at_each_write(
    people: People, api: SignedApi, faulty: FaultyStore
) -> None:
    owner = people.keys["owner"]
    names = iter(f"p{i}" for i in range(60))
    peers: list[str] = []

    def prepare() -> dict[str, object]:
        """A new member each time, so each run opens a new conversation."""
        people.join(next(names))
        peers.append(people.info[f"p{len(peers)}"]["member_id"])
        return {"membership": people.owner.trust.direct_entries(peers[-1])}

    route = Route(
        "PUT /direct/{m}",
        lambda body: api.call("PUT", f"/direct/{peers[-1]}", body, signer=owner),
        prepare=prepare,
    )
    outcome = sweep(route, faulty)
    assert outcome["retried"] >= 5, outcome
    for peer in peers:
        opened = api.call("PUT", f"/direct/{peer}", {"membership": []}, signer=owner)
        assert opened.status == 200 and opened.body["created"] is False, (peer, opened.body)
        members = api.call("GET", f"/channels/{opened.body['channel_id']}/members", signer=owner).body[
            "members"
        ]
        assert {m["member_id"] for m in members} == {peer, people.info["owner"]["member_id"]}
