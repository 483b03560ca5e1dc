"""Token buckets and the client address behind trusted proxies (bocage/local/rate_limit.py)."""

from __future__ import annotations

import pytest

from bocage.local.rate_limit import SourceLimiter, TokenBucket, client_address, parse_networks
from bocage.local.serve_settings import ServeSettings


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=4, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [0.0] * 4
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0  # one token back after 1/rate seconds
    assert bucket.take(100.0) == 0.0 and bucket.tokens == pytest.approx(3)  # never above the burst


def test_sources_are_limited_apart_and_told_when_to_retry() -> None:
    ticks = Ticks()
    limiter = SourceLimiter(per_minute=10, burst=2, clock=ticks)
    assert limiter.retry_after("a") == 0 and limiter.retry_after("a") == 0
    assert limiter.retry_after("a") == 6
    assert limiter.retry_after("b") == 0
    ticks.now = 6.0
    assert limiter.retry_after("a") == 0


def test_forgotten_sources_start_full_and_memory_stays_bounded() -> None:
    limiter = SourceLimiter(per_minute=1, burst=1, max_sources=2, clock=Ticks())
    assert limiter.retry_after("a") == 0
    assert limiter.retry_after("a") > 0
    limiter.retry_after("b")
    limiter.retry_after("c")  # "a" is the least recently seen: forgotten
    assert len(limiter._buckets) == 2
    assert limiter.retry_after("a") == 0


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    trusted = parse_networks("10.0.0.0/8, 127.0.0.1")
    assert client_address("198.51.100.7", ["203.0.113.1"], trusted) == "198.51.100.7"
    assert client_address("10.1.2.3", ["203.0.113.1"], trusted) == "203.0.113.1"
    assert client_address("10.1.2.3", ["6.6.6.6, 203.0.113.1, 10.9.9.9"], trusted) == "203.0.113.1"
    assert client_address("10.1.2.3", ["6.6.6.6", "203.0.113.1"], trusted) == "203.0.113.1"
    assert client_address("10.1.2.3", [], trusted) == "10.1.2.3"
    assert client_address("10.1.2.3", ["10.0.0.5"], trusted) == "10.0.0.5"
    assert client_address("10.1.2.3", ["unknown"], trusted) == "unknown"


def test_settings_read_the_limits_and_refuse_a_bad_proxy_list() -> None:
    settings = ServeSettings.from_env(
        {
            "BOCAGE_ACTIVATION_RATE": "5",
            "BOCAGE_ACTIVATION_BURST": "7",
            "BOCAGE_TRUSTED_PROXIES": "::1, 10.0.0.0/8",
        }
    )
    assert (settings.activation_rate, settings.activation_burst, len(settings.trusted_proxies)) == (5, 7, 2)
    assert ServeSettings.from_env({}).trusted_proxies == ()
    with pytest.raises(ValueError, match="BOCAGE_TRUSTED_PROXIES"):
        ServeSettings.from_env({"BOCAGE_TRUSTED_PROXIES": "not-an-address"})
