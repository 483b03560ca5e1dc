"""Scheduled work, the same on AWS (EventBridge → Lambda) and on one machine (a thread)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from chalicelib import wiring
from chalicelib.request_logging import logger


def run_billing(budget_seconds: float) -> dict[str, Any]:
    """Bill the previous month (and any month skipped before it); a rerun is a cheap no-op."""
    run = wiring.container().billing.run_previous_month(deadline=time.monotonic() + budget_seconds)
    summary = {k: v for k, v in run.public().items() if k != "invoices"}
    logger.info("billing run", month=run.month, issued=run.issued, complete=run.complete)
    return summary


def run_retention(budget_seconds: float) -> dict[str, Any]:
    """Advance pending retention jobs until done or the budget is spent, then delete the file
    blobs whose message expired or that no message referenced within the hour, then finish the
    ended partnerships' clean-ups their end requests left (the same schedule: storage following
    what was already decided); log counts only."""
    container = wiring.container()
    deadline = time.monotonic() + budget_seconds
    report = container.retention.run(deadline=deadline)
    summary = {**report.public(), "blobs_purged": container.files.purge(deadline=deadline)}
    ends = container.partner_ends.run(deadline=deadline)
    summary["partner_ends"] = dataclasses.asdict(ends)
    if report.jobs or ends.jobs:
        logger.info("retention jobs", **summary)
    return summary
