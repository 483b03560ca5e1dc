"""Read-change-write retried while another write wins the race (docs/architecture.md, "The store
contract": single-item conditional writes only). Each attempt reads again, so the change is made
on what is stored, never on a stale copy; past a few attempts the caller gets a 409 to retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from chalicelib.errors import ConditionFailed, Conflict

T = TypeVar("T")
ATTEMPTS = 5


def until_written(attempt: Callable[[], T], what: str) -> T:
    """``attempt``'s result once its conditional write lands; Conflict if others keep winning."""
    for _ in range(ATTEMPTS):
        try:
            return attempt()
        except ConditionFailed:
            continue
    raise Conflict(f"{what} changed meanwhile; retry")
