"""Token buckets and the client address behind trusted proxies (bocage/local/rate_limit.py)."""

from __future__ import annotations

import pytest

from bocage.local.cluster import pack_close, unpack_close
from bocage.local.rate_limit import (
    FrameLimiter,
    SourceLimiter,
    TokenBucket,
    VoteAllowance,
    client_address,
    json_object,
    parse_networks,
)
from bocage.local.serve_settings import ServeSettings
from chalicelib.domain.sources import SITE_SHARES, Source, source_block, source_tiers


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


def test_only_votes_spend_the_vote_allowance_and_each_address_has_its_own() -> None:
    """A flood of votes from one address is refused past the burst, told when to retry; other
    kinds, unparsable bodies and other addresses are never held up by it."""
    ticks = Ticks()
    votes = VoteAllowance(per_minute=5, burst=2, clock=ticks)
    vote = json_object(b'{"kind": "vote", "v": 2}')
    assert [votes.retry_after("203.0.113.9", vote) for _ in range(2)] == [0, 0]
    assert votes.retry_after("203.0.113.9", vote) == 12  # one back every 12 s (5 a minute)
    for other in ({"kind": "message"}, {"kind": "reaction"}, json_object(b"[1]"), json_object(b"{"), None):
        assert votes.retry_after("203.0.113.9", other) == 0
    assert votes.retry_after("198.51.100.1", vote) == 0
    assert votes.retry_after("2001:db8::1", vote) == 0 and votes.retry_after("2001:db8::2", vote) == 0
    assert votes.retry_after("2001:db8::3", vote) > 0  # an IPv6 host is its /64, as for joins
    ticks.now = 12.0
    assert votes.retry_after("203.0.113.9", vote) == 0
    assert "too many votes" in VoteAllowance.refusal(12) and "12 s" in VoteAllowance.refusal(12)


def test_the_vote_allowance_is_configurable_and_on_by_default() -> None:
    """A town hall of 300 behind one address votes at once, then 300 an hour (5 a minute)."""
    default = ServeSettings.from_env({})
    assert (default.vote_rate, default.vote_burst) == (5.0, 300)
    tuned = ServeSettings.from_env({"BOCAGE_VOTE_RATE": "0", "BOCAGE_VOTE_BURST": "10"})
    assert (tuned.vote_rate, tuned.vote_burst) == (0.0, 10)


def test_an_ipv6_host_is_one_source_across_its_64() -> None:
    """One IPv6 host picks any address of its /64: the limiter counts the /64 (16.2)."""
    limiter = SourceLimiter(per_minute=1, burst=2, clock=Ticks())
    assert limiter.retry_after("2001:db8:1:2::1") == 0 and limiter.retry_after("2001:db8:1:2::2") == 0
    assert limiter.retry_after("2001:db8:1:2:ffff:ffff:ffff:ffff") > 0
    assert limiter.retry_after("2001:db8:1:3::1") == 0  # the next /64 is another source
    assert limiter.retry_after("::ffff:198.51.100.7") == 0 and limiter.retry_after("198.51.100.7") == 0
    assert limiter.retry_after("198.51.100.7") > 0  # an IPv4-mapped address is its IPv4 one
    assert limiter.retry_after("198.51.100.8") == 0  # each IPv4 address is its own


def test_an_ipv6_48_takes_a_few_sources_worth_however_many_64s_it_holds() -> None:
    """A site's /48 holds 65,536 /64s: together they get SITE_SHARES sources' burst, and a /64
    refused on its own spends nothing of its /48's; another /48 has its own (16.2)."""
    limiter = SourceLimiter(per_minute=1, burst=2, clock=Ticks())
    hammered = [limiter.retry_after(f"2001:db8:1:0::{n + 1:x}") for n in range(10)]
    assert hammered.count(0) == 2  # one /64: its own two, whatever it tries after
    admitted = 2 + sum(limiter.retry_after(f"2001:db8:1:{n + 1:x}::1") == 0 for n in range(100))
    assert admitted == 2 * SITE_SHARES
    assert limiter.retry_after("2001:db8:1:ffff::1") > 0  # a fresh /64 of that /48: its share is spent
    assert limiter.retry_after("2001:db8:2:1::1") == 0  # another /48 is not charged for it


def test_a_source_is_an_ipv4_address_or_an_ipv6_64() -> None:
    assert source_block("203.0.113.5") == "203.0.113.5"
    assert source_block("2001:DB8:1:2:abcd::9") == "2001:db8:1:2::/64"
    assert source_block("::ffff:203.0.113.5") == "203.0.113.5"
    assert source_block("testclient") == "testclient"  # not an address: itself
    assert source_tiers("2001:db8:1:2::9") == (
        Source("2001:db8:1:2::/64"),
        Source("2001:db8:1::/48", SITE_SHARES),
    )
    assert source_tiers("::ffff:203.0.113.5") == (Source("203.0.113.5"),)
    assert source_tiers("testclient") == (Source("testclient"),)


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
    # A client inside a trusted range (the town hall's network) cannot choose its address.
    assert client_address("10.1.2.3", ["10.77.0.1, 10.0.0.5"], trusted) == "10.0.0.5"
    assert client_address("10.1.2.3", ["10.77.0.1", "10.0.0.5"], trusted) == "10.0.0.5"
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


def test_frames_past_the_rate_are_refused_then_a_flood_is_closed() -> None:
    limiter = FrameLimiter(rate=20, burst=40, strikes=10, now=0.0)
    assert [limiter.admit(0.0) for _ in range(40)] == ["ok"] * 40
    assert [limiter.admit(0.0) for _ in range(10)] == ["refuse"] * 10
    assert limiter.admit(0.0) == "close"
    assert limiter.admit(0.05) == "ok"  # 1/20 s later a frame is allowed again


def test_a_client_at_the_rate_is_never_refused() -> None:
    limiter = FrameLimiter(rate=20, burst=40, strikes=10, now=0.0)
    assert {limiter.admit(i / 20) for i in range(2_000)} == {"ok"}  # 100 s at 20 frames a second


def test_a_burst_now_and_then_costs_refusals_not_the_connection() -> None:
    limiter = FrameLimiter(rate=20, burst=40, strikes=10, now=0.0)
    for second in range(0, 60, 5):  # 45 frames at once every 5 s: 5 past the burst each time
        verdicts = [limiter.admit(float(second)) for _ in range(45)]
        assert verdicts.count("refuse") == 5 and "close" not in verdicts


def test_a_close_code_crosses_to_the_replica_holding_the_connection() -> None:
    assert unpack_close(pack_close(4008, "replaced by a newer connection")) == (
        4008,
        "replaced by a newer connection",
    )
    assert unpack_close(b"") == (1000, "")  # from a replica that sends no code
    assert unpack_close(b"\xb2 x") == (1000, "") and unpack_close(b"99 x") == (1000, "")


def test_settings_read_the_frame_limit() -> None:
    settings = ServeSettings.from_env({"BOCAGE_WS_FRAME_RATE": "5", "BOCAGE_WS_FRAME_BURST": "7"})
    assert (settings.ws_frame_rate, settings.ws_frame_burst) == (5.0, 7)
    assert (ServeSettings().ws_frame_rate, ServeSettings().ws_frame_burst) == (20.0, 40)
