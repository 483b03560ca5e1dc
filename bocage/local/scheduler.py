"""The stand-in for EventBridge schedules: periodic tasks on a daemon thread.

Each task runs every ``interval`` seconds; a failure is logged (its type only) and
retried at the next tick, so the server keeps serving whatever a job does. With ``claim``
(replicas sharing a store), a due task first claims its slot, the interval's number since the
epoch: only the replica that gets it runs that slot, so a job runs once whatever the replicas.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.request_logging import logger as app_logger

logger = logging.getLogger(__name__)

#: (task name, slot, interval in seconds) -> whether this process runs that slot.
Claim = Callable[[str, int, float], bool]


@dataclass
class Task:
    name: str
    interval: float
    run: Callable[[], object]
    next_at: float = field(default=0.0)
    everywhere: bool = False  # every replica runs it (a heartbeat), no claim


class LocalScheduler:
    def __init__(self, tick: float = 1.0, claim: Claim | None = None) -> None:
        self._claim = claim
        self._tasks: list[Task] = []
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def every(
        self,
        seconds: float,
        name: str,
        run: Callable[[], object],
        *,
        first_after: float | None = None,
        everywhere: bool = False,
    ) -> None:
        """Run ``run`` every ``seconds`` (the first time after ``first_after``, default one interval);
        ``everywhere``: on every replica, not once among them."""
        if seconds <= 0:
            return
        delay = seconds if first_after is None else first_after
        self._tasks.append(Task(name, seconds, run, time.monotonic() + delay, everywhere))

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
                    self._run(task)
                except Exception as exc:  # the next tick retries; never take the server down
                    logger.warning(
                        "scheduled task failed", extra={"task": task.name, "error": type(exc).__name__}
                    )

    def _run(self, task: Task) -> None:
        if task.everywhere:
            task.run()
            return
        slot = int(time.time() // task.interval)
        if self._claim is not None and not self._claim(task.name, slot, task.interval):
            return  # another replica runs this slot
        app_logger.info("scheduled task", task=task.name, slot=slot)
        task.run()
