"""``bocage serve``: the whole product on one machine, or as replicas sharing one store.

One uvicorn server runs one ASGI app (bocage/local/asgi.py) that plays API Gateway for the
very handlers the Lambdas run: REST requests become proxy events (rest.py), WebSockets on
``/ws`` get $connect/$default/$disconnect (sockets.py), and pushes are written straight to the
sockets, or sent to the replica that holds the connection (cluster.py). The blocking handlers
run in a bounded pool of worker threads; the event loop only moves bytes. Housekeeping that
EventBridge runs on AWS runs on timers here, each run claimed by one replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import resource
import secrets
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from bocage.local.scheduler import LocalScheduler
from bocage.local.serve_settings import ServeSettings
from chalicelib import wiring
from chalicelib.activation_qr import qr_terminal
from chalicelib.domain.organisation import Plan
from chalicelib.jobs import run_billing, run_retention
from chalicelib.services.invitations import Links
from chalicelib.settings import Settings

if TYPE_CHECKING:  # the server side is imported by serve() only, not by every CLI command
    import uvicorn
    from chalice.app import Chalice

    from bocage.local.connections import ConnectionRegistry
    from chalicelib.adapters.records.cluster import Replica


def local_settings(data_dir: str | None, public_url: str, **overrides: Any) -> Settings:
    """Environment settings, with the one-machine defaults filled in."""
    base = Settings.from_env()
    return dataclasses.replace(
        base,
        data_dir=data_dir or base.data_dir,
        public_url=base.public_url or public_url,
        **{k: getattr(base, k) or v for k, v in overrides.items()},
    )


def blob_gateway(objects: object) -> Any:
    """The gateway serving file blobs when they live in the data directory (not on S3)."""
    from bocage.local.blobs import BlobGateway
    from chalicelib.adapters.local_objects import LocalObjectStore

    return BlobGateway(objects) if isinstance(objects, LocalObjectStore) else None


def bootstrap(container: wiring.Container, org_name: str, out: TextIO) -> dict[str, Any] | None:
    """On an empty store, create the first organisation and show its owner's invitation."""
    if container.orgs.any_exists():
        return None
    settings = container.settings
    api = settings.public_url or ""
    links = Links(api_url=api, app_url=settings.app_url or f"{api}/app")
    org, invitation = container.invitations.create_organisation(org_name, Plan.PILOT, "Owner", links)
    out.write(
        f"\nNew organisation {org.name!r} ({org.org_id}).\n"
        f"Activate its owner's device with:\n"
        f"  bocage --profile ~/.bocage/owner activate '{invitation.activation_url}' --name 'Your name'\n"
        f"Activation code: {invitation.activation_code}\n"
        f"Activation URL:  {invitation.activation_url}\n\n"
        f"{qr_terminal(invitation.activation_url)}\n"
    )
    out.flush()
    return invitation.public()


def schedule_housekeeping(
    scheduler: LocalScheduler, container: wiring.Container, timers: ServeSettings
) -> None:
    """What EventBridge runs on AWS, run here in process (intervals in seconds, 0 disables)."""
    schedule_purge(scheduler, container.store, timers.purge_interval)
    scheduler.every(timers.jobs_interval, "retention", lambda: run_retention(budget_seconds=30))
    # The monthly bill runs on the 1st on AWS; here an hourly check catches up (a no-op once done).
    scheduler.every(
        timers.billing_interval, "billing", lambda: run_billing(budget_seconds=300), first_after=60
    )


def schedule_purge(scheduler: LocalScheduler, store: object, interval: float) -> bool:
    """Purge expired rows periodically, for a store that keeps them (SQLite; DynamoDB's TTL
    deletes its own). Returns whether anything was scheduled."""
    purge = getattr(store, "purge_all_expired", None)
    if purge is None or interval <= 0:
        return False
    scheduler.every(interval, "purge", purge)
    return True


def warn_if_unreachable(host: str) -> None:
    if host in ("0.0.0.0", "::") and not (  # noqa: S104 (detecting it, not binding)
        os.environ.get("BOCAGE_PUBLIC_URL") and os.environ.get("BOCAGE_WS_URL")
    ):
        sys.stdout.write(
            f"Warning: listening on {host} without BOCAGE_PUBLIC_URL and BOCAGE_WS_URL: activation links and "
            "the announced WebSocket URL name an address clients cannot reach; set both.\n"
        )


def raise_fd_limit() -> int:
    """Each connection is a file descriptor: take the soft limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def placeholder_aws_credentials() -> None:
    os.environ.setdefault("AWS_REGION", "eu-west-3")
    # boto3 signs every call to a DynamoDB-API store: placeholders unless the environment has
    # credentials, never real secrets.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")


@dataclass
class Runtime:
    """Everything one ``bocage serve`` process runs, built but not started."""

    server: uvicorn.Server
    listeners: list[socket.socket]
    container: wiring.Container
    connections: ConnectionRegistry
    url: str
    ws_url: str
    replica: Replica
    executor: ThreadPoolExecutor
    scheduler: LocalScheduler = field(default_factory=LocalScheduler)

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT (or ``server.should_exit``), then drain and stop."""
        try:
            self.server.run(sockets=self.listeners)
        finally:
            for listener in self.listeners:
                listener.close()


def build_runtime(
    app: Chalice,
    host: str,
    port: int,
    data_dir: str | None,
    options: ServeSettings | None = None,
) -> Runtime:
    """One replica: its public and internal listeners, its services, its place in the cluster."""
    from bocage.local.asgi import assemble, listen, make_server
    from bocage.local.cluster import (
        HEARTBEAT,
        REPLICA_TTL,
        ClusterPush,
        Directory,
        InternalApi,
        Membership,
        Peers,
    )
    from bocage.local.connections import ConnectionRegistry
    from bocage.local.local_queue import LocalQueue
    from bocage.local.presence_index import PresenceIndex
    from bocage.local.vapid import with_vapid_key
    from chalicelib.adapters.clocks import SystemClock
    from chalicelib.adapters.records.cluster import ClusterRecords, Replica

    options = options or ServeSettings.from_env()
    public, internal = listen(host, port), listen(options.internal_host, options.internal_port)
    bound, internal_port = int(public.getsockname()[1]), int(internal.getsockname()[1])
    if bound == internal_port:
        raise ValueError(
            "BOCAGE_INTERNAL_PORT must differ from --port: the internal endpoint is never public"
        )
    url, ws_url = f"http://{host}:{bound}", f"ws://{host}:{bound}/ws"
    settings = with_vapid_key(local_settings(data_dir, url, ws_url=ws_url))
    clock = SystemClock()
    store = wiring.build_store(settings, clock)
    replica = Replica(
        replica_id=f"r{secrets.token_hex(6)}",
        address=f"http://{_url_host(advertised_host(options))}:{internal_port}",
        expires_at=0,
    )
    secret = (
        options.cluster_secret or ClusterRecords(store).shared_secret(secrets.token_urlsafe(32))
    ).encode()
    connections = ConnectionRegistry(options.ws_send_buffer)
    directory = Directory(ClusterRecords(store))
    peers = Peers(secret, replica.replica_id)
    push = ClusterPush(connections, replica.replica_id, store, peers, directory)
    index = PresenceIndex(replica.replica_id, lambda: directory.alone(replica.replica_id))
    # Every channel's pushes inline: a push costs a socket write (or one request per replica).
    # The queue carries only a new message's Web Push wake-ups, so no ack waits for push services.
    wakes = LocalQueue()
    container = wiring.build(
        settings,
        store=store,
        clock=clock,
        push=push,
        queue=wakes,
        inline_limit=sys.maxsize,
        replica=replica.replica_id,
        local=index,
    )
    wakes.start(container.delivery.deliver_chunks)
    wiring.use(container)
    membership = Membership(store, replica)
    membership.join()  # in the directory before any presence record names this replica
    records = ClusterRecords(store)

    def claim(job: str, slot: int, interval: float) -> bool:
        return records.claim(job, slot, replica.replica_id, int((slot + 2) * interval))

    scheduler = LocalScheduler(claim=claim)
    schedule_housekeeping(scheduler, container, options)
    # A thread of its own: a long job (a billing run) must not let this replica's record expire.
    heartbeat = LocalScheduler()
    heartbeat.every(HEARTBEAT, "heartbeat", membership.heartbeat, everywhere=True)
    executor = ThreadPoolExecutor(options.workers, thread_name_prefix="bocage-worker")

    async def startup() -> None:
        heartbeat.start()
        scheduler.start()

    async def shutdown() -> None:
        await asyncio.to_thread(scheduler.stop)
        await asyncio.to_thread(heartbeat.stop)
        await asyncio.to_thread(wakes.stop, options.shutdown_timeout)
        await asyncio.to_thread(membership.leave)

    asgi = assemble(
        app,
        executor,
        connections,
        options,
        domain_name=f"{host}:{bound}",
        internal=InternalApi(connections, secret, options.read_timeout),
        internal_port=internal_port,
        startup=startup,
        shutdown=shutdown,
        blobs=blob_gateway(container.objects),
    )
    assert REPLICA_TTL > 2 * HEARTBEAT
    return Runtime(
        server=make_server(asgi, options),
        listeners=[public, internal],
        container=container,
        connections=connections,
        url=url,
        ws_url=ws_url,
        replica=replica,
        executor=executor,
        scheduler=scheduler,
    )


def advertised_host(options: ServeSettings) -> str:
    """The host other replicas dial: the setting, else the bound one, else (bound to every
    interface, as in a container) this machine's own address."""
    if options.internal_advertise:
        return options.internal_advertise
    if options.internal_host not in ("0.0.0.0", "::", ""):  # noqa: S104 (comparing, not binding)
        return options.internal_host
    return socket.gethostbyname(socket.gethostname())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve(host: str, port: int, data_dir: str | None, org_name: str) -> int:
    placeholder_aws_credentials()
    raise_fd_limit()
    from app import app  # imported here: the app reads nothing until the first request
    from chalicelib.adapters.records.cluster import ClusterRecords

    runtime = build_runtime(app, host, port, data_dir)
    warn_if_unreachable(host)
    # Replicas starting together on an empty store: the one that claims it makes the organisation.
    first = ClusterRecords(runtime.container.store).claim(
        "bootstrap", 0, runtime.replica.replica_id, runtime.container.clock.now() + 60
    )
    if first:
        bootstrap(runtime.container, org_name, sys.stdout)
    sys.stdout.write(
        f"Bocage serving the REST API on {runtime.url} and WebSockets on {runtime.ws_url} "
        f"({wiring.describe(runtime.container)}); replica {runtime.replica.replica_id}, "
        f"internal endpoint {runtime.replica.address}\n"
    )
    sys.stdout.flush()
    runtime.run()
    return 0
