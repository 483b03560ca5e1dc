"""What only ``bocage serve`` reads: the server's limits, its timers and its place in a cluster.

The Lambda never reads these (chalicelib/settings.py is what both runtimes share). Every
variable is in the README's settings table; keep both in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bocage.local.rate_limit import Network, parse_networks

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    #: Seconds a client has to send a request's headers, then its body (slow clients get 408).
    read_timeout: float = 10.0
    #: Seconds a REST handler may run before the client gets 504 (API Gateway's limit is 29 s).
    handler_timeout: float = 29.0
    #: Seconds an idle keep-alive HTTP connection stays open.
    keepalive_timeout: int = 30
    #: Seconds a WebSocket may stay silent before it is closed with 1001 (API Gateway: 10 minutes).
    ws_idle_timeout: float = 600.0
    #: Open connections (HTTP and WebSocket) beyond which new ones are refused with 503.
    max_connections: int = 20_000
    #: Threads running the (blocking) Chalice handlers; the event loop never runs them.
    workers: int = 16
    #: Frames a WebSocket may send a second (0: no limit), after a burst of ``ws_frame_burst``.
    ws_frame_rate: float = 20.0
    ws_frame_burst: int = 40
    #: Bytes of frames a WebSocket may have waiting to be written before it is dropped.
    ws_send_buffer: int = MIB
    #: Seconds between keep-alive pings; a WebSocket that sent nothing, not even a pong, for a
    #: whole interval is dead and is cut off (0: no pings).
    ws_ping_interval: float = 20.0
    #: Seconds a stopping server waits for requests in flight and $disconnect handlers.
    shutdown_timeout: int = 10
    purge_interval: float = 600.0
    jobs_interval: float = 60.0
    billing_interval: float = 3600.0
    #: Shared by the replicas of one store to authenticate pushes to each other; unset: a random
    #: secret kept in the store itself (fine on one machine; set it for replicas on several).
    cluster_secret: str | None = field(default=None, repr=False)
    #: Where the internal (replica-to-replica) endpoint listens; port 0 picks a free one.
    internal_host: str = "127.0.0.1"
    internal_port: int = 0
    #: The host other replicas dial to reach this one (e.g. the pod's IP); default internal_host.
    internal_advertise: str | None = None
    #: ``POST /activate`` attempts per minute and per client address (0: no limit), and the burst
    #: a source may spend at once (a training session behind one office address).
    activation_rate: float = 10.0
    activation_burst: int = 20
    #: Vote envelopes per minute and per client address, REST and WebSocket together (0: no
    #: limit), and the burst: a town hall behind one address votes at once, then 300 an hour.
    vote_rate: float = 5.0
    vote_burst: int = 300
    #: Proxies whose ``X-Forwarded-For`` is believed (addresses or CIDR blocks); none by default.
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServeSettings:
        e = os.environ if env is None else env
        d = cls()
        return cls(
            read_timeout=float(e.get("BOCAGE_READ_TIMEOUT", d.read_timeout)),
            handler_timeout=float(e.get("BOCAGE_HANDLER_TIMEOUT", d.handler_timeout)),
            keepalive_timeout=int(e.get("BOCAGE_KEEPALIVE_TIMEOUT", d.keepalive_timeout)),
            ws_idle_timeout=float(e.get("BOCAGE_WS_IDLE_TIMEOUT", d.ws_idle_timeout)),
            max_connections=int(e.get("BOCAGE_MAX_CONNECTIONS", d.max_connections)),
            workers=int(e.get("BOCAGE_WORKERS", d.workers)),
            ws_frame_rate=float(e.get("BOCAGE_WS_FRAME_RATE", d.ws_frame_rate)),
            ws_frame_burst=int(e.get("BOCAGE_WS_FRAME_BURST", d.ws_frame_burst)),
            ws_send_buffer=int(e.get("BOCAGE_WS_SEND_BUFFER", d.ws_send_buffer)),
            ws_ping_interval=float(e.get("BOCAGE_WS_PING_INTERVAL", d.ws_ping_interval)),
            shutdown_timeout=int(e.get("BOCAGE_SHUTDOWN_TIMEOUT", d.shutdown_timeout)),
            purge_interval=float(e.get("BOCAGE_PURGE_INTERVAL", d.purge_interval)),
            jobs_interval=float(e.get("BOCAGE_JOBS_INTERVAL", d.jobs_interval)),
            billing_interval=float(e.get("BOCAGE_BILLING_INTERVAL", d.billing_interval)),
            cluster_secret=e.get("BOCAGE_CLUSTER_SECRET") or None,
            internal_host=e.get("BOCAGE_INTERNAL_HOST") or d.internal_host,
            internal_port=int(e.get("BOCAGE_INTERNAL_PORT", d.internal_port)),
            internal_advertise=e.get("BOCAGE_INTERNAL_ADVERTISE") or None,
            activation_rate=float(e.get("BOCAGE_ACTIVATION_RATE", d.activation_rate)),
            activation_burst=int(e.get("BOCAGE_ACTIVATION_BURST", d.activation_burst)),
            vote_rate=float(e.get("BOCAGE_VOTE_RATE", d.vote_rate)),
            vote_burst=int(e.get("BOCAGE_VOTE_BURST", d.vote_burst)),
            trusted_proxies=_networks(e.get("BOCAGE_TRUSTED_PROXIES", "")),
        )


def _networks(text: str) -> tuple[Network, ...]:
    try:
        return parse_networks(text)
    except ValueError as exc:
        raise ValueError(
            f"BOCAGE_TRUSTED_PROXIES: {exc} (addresses or CIDR blocks, comma-separated)"
        ) from exc
