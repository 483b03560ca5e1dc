"""Which "source" a request counts against in per-address limits (docs/protocol.md, 16.2).

An IPv4 address is one source. An IPv6 host usually holds a whole /64 (2^64 addresses it can
pick from at will), so an IPv6 address counts as its /64: counting exact addresses would give
one host as many shares as it likes. An IPv4-mapped IPv6 address (``::ffff:203.0.113.5``, as a
dual-stack socket reports IPv4 peers) is the IPv4 address it carries.
"""

from __future__ import annotations

import ipaddress

IPV6_PREFIX = 64


def source_block(address: str) -> str:
    """The source ``address`` counts as: the IPv4 address itself, an IPv6 address's /64
    (``2001:db8:1:2::/64``); anything that is not an IP address is returned unchanged."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)
