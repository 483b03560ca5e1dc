"""Retention: how long an organisation (or one channel) keeps its messages.

Durations are written the way people say them: ``90d``, ``12w``, ``3m``, ``1y``.
A month counts 30 days and a year 365, so "3 months" is 90 days everywhere.
"""

from __future__ import annotations

import re

from chalicelib.errors import BadRequest

DAY = 86400
MIN_DAYS = 1
MAX_DAYS = 5 * 365
DEFAULT_DAYS = 90
_UNITS = {"d": 1, "w": 7, "m": 30, "y": 365}
_DURATION = re.compile(r"\s*(\d{1,5})\s*([dwmy])\s*", re.IGNORECASE)


def parse_duration(text: str) -> int:
    """Days in a duration such as ``90d``, ``3m`` or ``1y``; 400 outside 1 day to 5 years."""
    match = _DURATION.fullmatch(text or "")
    if match is None:
        raise BadRequest("a duration is a number and a unit: 90d, 12w, 3m or 1y")
    return check_days(int(match.group(1)) * _UNITS[match.group(2).lower()])


def check_days(days: int) -> int:
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise BadRequest(f"retention must be between {MIN_DAYS} day and 5 years ({MAX_DAYS} days)")
    return days


def effective_days(org_days: int, channel_days: int | None) -> int:
    """The shortest retention that applies wins."""
    return org_days if channel_days is None else min(org_days, channel_days)


def describe(days: int) -> str:
    for unit, size in (("y", 365), ("m", 30), ("w", 7)):
        if days % size == 0:
            return f"{days // size}{unit}"
    return f"{days}d"
