"""``bocage serve``: the whole product on one machine, on the embedded SQLite store.

One process plays API Gateway twice over: a REST gateway (which also serves the
``@connections`` management API) and a WebSocket gateway, both calling the very
handlers the Lambdas run. The fan-out queue runs in process, and pushes go straight
to the connections. All connections live in this process, so run one replica per
store (see the README).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from bocage.local.scheduler import LocalScheduler
from chalicelib import wiring
from chalicelib.activation_qr import qr_terminal
from chalicelib.domain.organisation import Plan
from chalicelib.jobs import run_billing, run_retention
from chalicelib.ports import Push
from chalicelib.services.invitations import Links
from chalicelib.settings import Settings

if TYPE_CHECKING:  # the WebSocket side is imported by serve() only, not by every CLI command
    from bocage.local.connections import ConnectionRegistry


def local_settings(data_dir: str | None, public_url: str, **overrides: Any) -> Settings:
    """Environment settings, with the one-machine defaults filled in."""
    base = Settings.from_env()
    return dataclasses.replace(
        base,
        data_dir=data_dir or base.data_dir,
        public_url=base.public_url or public_url,
        **{k: getattr(base, k) or v for k, v in overrides.items()},
    )


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


def schedule_housekeeping(scheduler: LocalScheduler, container: wiring.Container) -> None:
    """What EventBridge runs on AWS, run here in process (intervals in seconds, 0 disables)."""
    schedule_purge(scheduler, container.store, float(os.environ.get("BOCAGE_PURGE_INTERVAL", "600")))
    jobs_every = float(os.environ.get("BOCAGE_JOBS_INTERVAL", "60"))
    scheduler.every(jobs_every, "retention", lambda: run_retention(budget_seconds=30))
    # The monthly bill runs on the 1st on AWS; here an hourly check catches up (a no-op once done).
    billing_every = float(os.environ.get("BOCAGE_BILLING_INTERVAL", "3600"))
    scheduler.every(billing_every, "billing", lambda: run_billing(budget_seconds=300), first_after=60)


def schedule_purge(scheduler: LocalScheduler, store: object, interval: float) -> bool:
    """Purge expired rows periodically, for a store that keeps them (SQLite; DynamoDB's TTL
    deletes its own). Returns whether anything was scheduled."""
    purge = getattr(store, "purge_all_expired", None)
    if purge is None or interval <= 0:
        return False
    scheduler.every(interval, "purge", purge)
    return True


def local_push(registry: ConnectionRegistry) -> Push | None:
    """Pushes written straight to this process's connections: no signing, no HTTP hop.

    An explicit ``BOCAGE_WS_ENDPOINT`` still wins: None lets wiring build the boto3 adapter for it.
    """
    from bocage.local.in_process_push import InProcessPush

    return None if Settings.from_env().ws_endpoint else InProcessPush(registry)


def warn_if_unreachable(host: str) -> None:
    if host in ("0.0.0.0", "::") and not (  # noqa: S104 (detecting it, not binding)
        os.environ.get("BOCAGE_PUBLIC_URL") and os.environ.get("BOCAGE_WS_URL")
    ):
        sys.stdout.write(
            f"Warning: listening on {host} without BOCAGE_PUBLIC_URL and BOCAGE_WS_URL: activation links and "
            "the announced WebSocket URL name an address clients cannot reach; set both.\n"
        )


def serve(host: str, port: int, data_dir: str | None, org_name: str, ws_port: int | None = None) -> int:
    os.environ.setdefault("AWS_REGION", "eu-west-3")
    # boto3 signs every call (a DynamoDB-API store's, an explicit BOCAGE_WS_ENDPOINT's): placeholders
    # unless the environment has credentials, never real secrets.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    from app import app  # imported here: the app reads nothing until the first request
    from bocage.local.connections import ConnectionRegistry
    from bocage.local.gateway import make_server
    from bocage.local.queue import InProcessQueue
    from bocage.local.websocket_gateway import WebSocketGateway
    from chalicelib import ws_api

    registry = ConnectionRegistry()
    server = make_server(app, host, port, connections=registry)
    rest_url = f"http://{host}:{server.server_address[1]}"
    sockets = WebSocketGateway(
        app, host, port + 1 if ws_port is None and port else ws_port or 0, connections=registry
    )
    sockets.start()
    settings = local_settings(data_dir, rest_url, ws_endpoint=rest_url, ws_url=sockets.url)
    queue = InProcessQueue(ws_api.on_fanout)
    container = wiring.build(settings, queue=queue, push=local_push(registry))
    wiring.use(container)
    scheduler = LocalScheduler()
    schedule_housekeeping(scheduler, container)
    scheduler.start()
    warn_if_unreachable(host)
    bootstrap(container, org_name, sys.stdout)
    sys.stdout.write(
        f"Bocage serving the REST API on {rest_url} and WebSockets on {sockets.url} "
        f"({wiring.describe(container)})\n"
    )
    sys.stdout.flush()

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sockets.stop()
        queue.close()
        scheduler.stop()
    return 0
