"""``bocage serve``: the whole product on one machine, on the embedded SQLite store."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
from typing import Any, TextIO

from chalicelib import wiring
from chalicelib.activation_qr import qr_terminal
from chalicelib.domain.organisation import Plan
from chalicelib.services.invitations import Links
from chalicelib.settings import Settings


def local_settings(data_dir: str | None, public_url: str) -> Settings:
    """Environment settings, with the one-machine defaults filled in."""
    base = Settings.from_env()
    return dataclasses.replace(
        base,
        data_dir=data_dir or base.data_dir,
        public_url=base.public_url or public_url,
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


def serve(
    host: str, port: int, data_dir: str | None, org_name: str, ready: threading.Event | None = None
) -> int:
    os.environ.setdefault("AWS_REGION", "eu-west-3")
    from app import app  # imported here: the app reads nothing until the first request
    from bocage.local.gateway import make_server

    server = make_server(app, host, port)
    bound_port = server.server_address[1]
    settings = local_settings(data_dir, f"http://{host}:{bound_port}")
    container = wiring.build(settings)
    wiring.use(container)
    bootstrap(container, org_name, sys.stdout)
    sys.stdout.write(
        f"Bocage serving the REST API on http://{host}:{bound_port} ({wiring.describe(container)})\n"
    )
    sys.stdout.flush()

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
