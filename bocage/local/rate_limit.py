"""Token buckets: the per-source limit on activation attempts and the per-connection frame rate.

API Gateway throttles by stage and route on AWS (infra/aws/resources.json); ``bocage serve``
does it here, in memory. Each replica counts on its own, so with N replicas behind a load
balancer a source gets up to N times the limit: acceptable, as the limit only has to make
guessing and flooding slow, not exact.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from chalicelib.domain.sources import source_block

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
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


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
    """One bucket per source (an IPv4 address, an IPv6 /64: ``source_block``), the least
    recently seen forgotten past ``max_sources`` (a forgotten source starts full again: a flood
    of addresses costs memory, never refusals)."""

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
        source = source_block(source)
        bucket = self._buckets.pop(source, None) or TokenBucket.full(self._rate, self._burst, now)
        self._buckets[source] = bucket
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        wait = bucket.take(now)
        return 0 if wait == 0 else max(1, math.ceil(wait))


def parse_networks(text: str) -> tuple[Network, ...]:
    """``BOCAGE_TRUSTED_PROXIES``: addresses or CIDR blocks, comma-separated; ValueError if bad."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def client_address(peer: str, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """The client a request comes from: the peer, unless the peer is a trusted proxy.

    Then ``X-Forwarded-For`` is read from the right (each proxy appends the address it saw),
    skipping trusted proxies: the first other address is the client. A client can write any
    address at the left of the header, so nothing to the left of that one is believed.
    """
    if not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
