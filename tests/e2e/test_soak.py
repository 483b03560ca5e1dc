"""The soak of bench/soak.py, small: 100 live clients for 30 s on a real `bocage serve`, in groups
of 10 to 50 and one tribe of all, with random clean and abrupt disconnects (issue 19, item 3).
The 1,000-client, 10-minute run is `python bench/soak.py`; its figures are in the issue's note."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

# bench/ holds scripts, not a package: a static import would name bench/soak.py twice for mypy.
soak: Any = importlib.import_module("bench.soak")

pytestmark = pytest.mark.e2e

#: A SQLite connection the warm-up's concurrency did not reach may be opened by the run and
#: kept in the store's pool: its database and WAL files stay open. The warm-up started every
#: handler thread, so no thread may remain.
POOLED_FILES = 2
RSS_GROWTH = 0.10  # the bound for "memory flat" (30 s runs measure under 1 %)


def test_a_hundred_clients_for_thirty_seconds_lose_nothing_and_leave_nothing() -> None:
    result = soak.soak(100, 30.0, rate=5.0, churn=0.5, processes=2)
    assert result.messages >= 100  # 5 a second for 30 s, give or take the start
    assert result.reconnects >= 10  # the churn happened: catch-up was exercised
    assert result.unacked == 0 and result.errors == {}  # never rate-limited, never refused
    assert result.lost == 0, result.missing
    assert result.delivered == result.expected  # each (device, message id) once after de-dup
    assert result.fds[1] <= result.fds[0] + POOLED_FILES, result.fds
    assert result.threads[1] <= result.threads[0], result.threads
    assert result.rss_growth < RSS_GROWTH, (result.rss_start, result.rss_end)
