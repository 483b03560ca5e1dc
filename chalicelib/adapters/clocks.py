"""Clock adapters: the wall clock, and a settable one for tests and simulations."""

from __future__ import annotations

import threading
import time


class SystemClock:
    def now(self) -> int:
        return int(time.time())


class ManualClock:
    """A clock that moves only when told to: tests inject it to cross expiries exactly."""

    def __init__(self, start: int = 1_800_000_000) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: int) -> None:
        with self._lock:
            self._now += seconds

    def set(self, epoch: int) -> None:
        with self._lock:
            self._now = epoch
