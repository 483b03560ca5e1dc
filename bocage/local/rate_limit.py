"""Token buckets: the per-source limits on activation attempts and on votes, and the
per-connection frame rate.

API Gateway throttles by stage and route on AWS (infra/aws/resources.json); ``bocage serve``
does it here, in memory. Each replica counts on its own, so with N replicas behind a load
balancer a source gets up to N times the limit: acceptable, as the limit only has to make
guessing and flooding slow, not exact.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from chalicelib.domain.sources import Source, source_tiers
from chalicelib.errors import BadRequest
from chalicelib.json_input import parse_object

Clock = Callable[[], float]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True)  # one pair per open WebSocket: no __dict__ each
class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second; each event spends one."""

    rate: float
    burst: float
    tokens: float
    at: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate=rate, burst=burst, tokens=burst, at=now)

    def take(self, now: float) -> float:
        """Spend a token: 0.0 if there was one, else the seconds until there is (nothing spent)."""
        wait = self.wait(now)
        if wait == 0:
            self.tokens -= 1
        return wait

    def wait(self, now: float) -> float:
        """The seconds until a token is there (0.0: one is), spending nothing."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class FrameLimiter:
    """One WebSocket connection's frames: ``burst`` at once, then ``rate`` a second.

    A frame past them is refused (the client gets a ``rate_limited`` error frame); refusals
    spend a second bucket of ``strikes``, refilled at one a second, and a client that empties
    it too is closed: a burst costs a few errors, a flood its connection.
    """

    __slots__ = ("_frames", "_strikes")

    def __init__(self, rate: float, burst: float, strikes: float, now: float) -> None:
        self._frames = TokenBucket.full(rate, burst, now)
        self._strikes = TokenBucket.full(1.0, strikes, now)

    def admit(self, now: float) -> Literal["ok", "refuse", "close"]:
        if self._frames.take(now) == 0:
            return "ok"
        return "refuse" if self._strikes.take(now) == 0 else "close"


class SourceLimiter:
    """One bucket per source (an IPv4 address, an IPv6 /64) and one per IPv6 /48, its rate and
    burst ``SITE_SHARES`` times a source's (``source_tiers``); an attempt spends a token of each
    only when each has one, so a /64 refused on its own spends nothing of its /48's. The least
    recently seen buckets are forgotten past ``max_sources`` (a forgotten one starts full again:
    a flood of addresses costs memory, never refusals)."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        max_sources: int = 100_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self._rate = per_minute / 60
        self._burst = burst
        self._max = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def retry_after(self, source: str) -> int:
        """0 if ``source`` may go on (one attempt counted), else whole seconds to wait."""
        now = self._clock()
        buckets = [self._bucket(tier, now) for tier in source_tiers(source)]
        wait = max(bucket.wait(now) for bucket in buckets)
        if wait > 0:
            return max(1, math.ceil(wait))
        for bucket in buckets:
            bucket.tokens -= 1
        return 0

    def give_back(self, source: str) -> None:
        """Return the token ``retry_after`` took for an attempt refused after all."""
        for tier in source_tiers(source):
            bucket = self._buckets.get(tier.block)
            if bucket is not None:
                bucket.tokens = min(bucket.burst, bucket.tokens + 1)

    def _bucket(self, tier: Source, now: float) -> TokenBucket:
        """The tier's bucket, now the most recently seen (a new one full)."""
        bucket = self._buckets.pop(tier.block, None) or TokenBucket.full(
            self._rate * tier.shares, self._burst * tier.shares, now
        )
        self._buckets[tier.block] = bucket
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return bucket


class VoteAllowance:
    """Vote envelopes per source address, one budget for both paths a vote takes (``POST
    /channels/{c}/messages`` and the WebSocket ``send`` action): one vote per device counts, so
    this bounds how fast one address churns votes, not who wins (docs/protocol.md, 8). Only the
    envelope's clear ``kind`` is read, parsed as the app parses it: other kinds, and what is no
    JSON object, spend nothing. Counted before the handler runs (a refusal costs the store
    nothing), and given back when the app does not store a REST vote (``give_back``: no device,
    not in the channel, malformed): junk from a shared address cannot spend its people's votes.
    Checked on the worker threads: locked."""

    def __init__(self, per_minute: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        self._sources = SourceLimiter(per_minute, burst, clock=clock)
        self._lock = threading.Lock()

    @staticmethod
    def is_vote(envelope: object) -> bool:
        """Whether ``envelope`` spends the allowance: a JSON object of kind ``vote``."""
        return isinstance(envelope, dict) and envelope.get("kind") == "vote"

    def retry_after(self, source: str, envelope: object) -> int:
        """0 if ``envelope`` is no vote or ``source`` may send one (one counted), else seconds to wait."""
        if not self.is_vote(envelope):
            return 0
        with self._lock:
            return self._sources.retry_after(source)

    def give_back(self, source: str) -> None:
        """The vote ``retry_after`` counted was not stored: its token goes back."""
        with self._lock:
            self._sources.give_back(source)

    @staticmethod
    def refusal(wait: int) -> str:
        return f"too many votes from this address; retry in {wait} s"


def json_object(text: str | bytes) -> dict[str, object]:
    """A REST body or a WebSocket frame as the app reads it; {} where the app answers 400."""
    try:
        return parse_object(text, malformed="", not_object="")
    except BadRequest:
        return {}


def parse_networks(text: str) -> tuple[Network, ...]:
    """``BOCAGE_TRUSTED_PROXIES``: addresses or CIDR blocks, comma-separated; ValueError if bad."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def client_address(peer: str, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """The client a request comes from: the peer, unless the peer is a trusted proxy.

    Then ``X-Forwarded-For`` is read from the right (each proxy appends the address it saw),
    skipping trusted proxies: the first other address is the client. A client can write any
    address at the left of the header, so nothing to the left of that one is believed. When every
    hop is in a trusted range (a client on the town hall's own network, behind the proxy), the
    client is the right-most hop, the one the nearest proxy saw: a left-most one would let that
    client pick a fresh address, and a fresh allowance, at each request.
    """
    if not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[-1] if hops else peer


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
