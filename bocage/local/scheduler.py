"""The one-machine stand-in for EventBridge schedules: periodic tasks on a daemon thread.

Each task runs every ``interval`` seconds; a failure is logged (its type only) and
retried at the next tick, so the server keeps serving whatever a job does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class Task:
    name: str
    interval: float
    run: Callable[[], object]
    next_at: float = field(default=0.0)


class LocalScheduler:
    def __init__(self, tick: float = 1.0) -> None:
        self._tasks: list[Task] = []
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def every(
        self, seconds: float, name: str, run: Callable[[], object], *, first_after: float | None = None
    ) -> None:
        """Run ``run`` every ``seconds`` (the first time after ``first_after``, default one interval)."""
        if seconds <= 0:
            return
        delay = seconds if first_after is None else first_after
        self._tasks.append(Task(name, seconds, run, time.monotonic() + delay))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="bocage-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            now = time.monotonic()
            for task in self._tasks:
                if now < task.next_at:
                    continue
                task.next_at = now + task.interval
                try:
                    task.run()
                except Exception as exc:  # the next tick retries; never take the server down
                    logger.warning(
                        "scheduled task failed", extra={"task": task.name, "error": type(exc).__name__}
                    )
