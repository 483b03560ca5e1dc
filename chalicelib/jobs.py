"""Scheduled work, the same on AWS (EventBridge → Lambda) and on one machine (a thread)."""

from __future__ import annotations

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
    """Advance pending retention jobs until done or the budget is spent; log counts only."""
    report = wiring.container().retention.run(deadline=time.monotonic() + budget_seconds)
    summary = report.public()
    if report.jobs:
        logger.info("retention jobs", **summary)
    return summary
