"""Attack (review): the per-address share of a tribe's hourly joins (docs/protocol.md, 16.2: "whoever
holds the poster needs ten addresses to fill a tribe's hour") counts each exact address
(chalicelib/adapters/records/keys.py:93 digests the full address). Over IPv6 one host holds a
whole /64 (2^64 addresses), so one person with the poster fills the tribe's hour alone, every
hour, and nobody else can join (and the tribe's "new followers" question budget goes to them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bocage.client.profile import DeviceKeys
from chalicelib.errors import TooManyRequests
from chalicelib.services.followers import JoinRequest
from tests.integration.test_followers import join_body, public_tribe
from tests.support import People, SignedApi


def test_one_ipv6_host_does_not_fill_a_tribe_s_hour(
    people: People, api: SignedApi, container: Any, tmp_path: Path
) -> None:
    container.followers._joins_per_hour = 20  # a share of 2 per address
    _cid, url = public_tribe(people)

    def join_from(address: str) -> Any:
        request = JoinRequest(**join_body(url, DeviceKeys.generate(), now=api.clock.now()))
        return container.followers.join(request, address)

    admitted = 0
    for n in range(20):  # one attacker, one /64: a fresh source address for every join
        try:
            join_from(f"2001:db8:1:2::{n + 1:x}")
            admitted += 1
        except TooManyRequests:
            pass
    assert admitted <= 2, f"one IPv6 /64 took {admitted} of the tribe's 20 joins this hour"
