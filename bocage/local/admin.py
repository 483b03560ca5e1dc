"""Operator work straight on the embedded store, no server running: the ``--data`` commands.

``bocage org create --data``, ``billing run --data`` and ``impact --data`` build the same
services ``bocage serve`` would, on the SQLite store in the data directory; ``jobs run``
uses the store the environment names, as EventBridge does on AWS. The CLI imports this
module only for those commands, so everyday client commands never load the server.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from bocage.local.serve import local_settings
from chalicelib import jobs, request_logging, wiring
from chalicelib.domain.billing import month_of
from chalicelib.domain.organisation import Plan
from chalicelib.services.invitations import Links

if TYPE_CHECKING:
    from chalicelib.wiring import Container

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def local_container(data: str, public_url: str | None = None) -> Container:
    return wiring.build(local_settings(data, public_url or DEFAULT_PUBLIC_URL))


def create_org(data: str, name: str, plan: str, owner_name: str, public_url: str | None) -> dict[str, Any]:
    """A new organisation and its owner's invitation, whose links point at ``public_url``."""
    container = local_container(data, public_url)
    api = container.settings.public_url or DEFAULT_PUBLIC_URL
    org, invitation = container.invitations.create_organisation(
        name,
        Plan(plan),
        owner_name,
        Links(api_url=api, app_url=container.settings.app_url or f"{api}/app"),
    )
    return {**invitation.public(), "org": org.public()}


def run_billing(data: str, month: str | None, *, dry_run: bool) -> dict[str, Any]:
    """Bill a month; without one, the last month (or, dry, this month to date)."""
    container = local_container(data)
    billing = container.billing
    if month is None and not dry_run:
        return dict(billing.run_previous_month().public())
    month = month or month_of(container.clock.now())
    return dict(billing.run_month(month, dry_run=dry_run).public())


def public_impact(data: str) -> dict[str, Any]:
    return dict(local_container(data).impact.public_impact())


def run_job(job: str, budget_seconds: float) -> dict[str, Any]:
    """One scheduled job, as on AWS, on the store the settings describe. Its log lines go to
    stderr: stdout is the command's one JSON document."""
    handler = request_logging.logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
    run = jobs.run_retention if job == "retention" else jobs.run_billing
    return {"job": job, **run(budget_seconds=budget_seconds)}
