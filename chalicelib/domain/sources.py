"""Which "sources" a request counts against in per-address limits (docs/protocol.md, 16.2).

An IPv4 address is one source. An IPv6 host usually holds a whole /64 (2^64 addresses it can
pick from at will), so an IPv6 address counts as its /64: counting exact addresses would give
one host as many shares as it likes. An IPv4-mapped IPv6 address (``::ffff:203.0.113.5``, as a
dual-stack socket reports IPv4 peers) is the IPv4 address it carries.

A /64 is not the end of it: a customer's site is often given a /48, 65,536 /64s, so one host
with a /48 would still mint shares at will. An IPv6 address therefore counts against its /48
too, which gets ``SITE_SHARES`` sources' worth, shared by all its /64s (``source_tiers``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPV6_PREFIX = 64
IPV6_SITE_PREFIX = 48
#: What a /48 may take, in sources' shares. One host with a /48 gets 4 shares, not 65,536; a
#: /48 that is really many households (a campus, a town hall's network, a carrier's pool) still
#: gets four times what a CGNAT IPv4 address shared by as many people gets (one share), so it is
#: not starved more than IPv4 users already are; with the tribe's hour split in ten shares,
#: 4 of them still leaves most of it to everyone else.
SITE_SHARES = 4


@dataclass(frozen=True)
class Source:
    """One tier a request counts against: its ``block`` may take ``shares`` sources' worth."""

    block: str
    shares: int = 1


def source_block(address: str) -> str:
    """The source ``address`` counts as: the IPv4 address itself, an IPv6 address's /64
    (``2001:db8:1:2::/64``); anything that is not an IP address is returned unchanged."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return address if ip is None else str(ip)


def source_tiers(address: str) -> tuple[Source, ...]:
    """Every tier ``address`` counts against, finest first: its source (``source_block``) and,
    for IPv6, its /48 with ``SITE_SHARES`` shares. Check them in that order, so that a /64 past
    its own share spends nothing of its /48's (one host does not lock its neighbours out)."""
    ip = _ip(address)
    first = Source(source_block(address))
    if not isinstance(ip, ipaddress.IPv6Address):
        return (first,)
    site = ipaddress.IPv6Network((ip, IPV6_SITE_PREFIX), strict=False)
    return first, Source(str(site), SITE_SHARES)


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address as an IP (an IPv4-mapped IPv6 one as its IPv4), None if it is not one."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
