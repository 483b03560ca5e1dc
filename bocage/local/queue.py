"""The Queue port on one machine: a thread pool plays SQS plus its Lambda consumers.

Each body is handled alone (SQS batch size 1) and bodies run concurrently, as
several Lambda instances would; a failing body is retried a few times, then
dropped with an error log, where SQS would move it to a dead-letter queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger(__name__)


class InProcessQueue:
    def __init__(
        self,
        handler: Callable[[list[str]], None],
        workers: int = 4,
        *,
        retries: int = 3,
        retry_delay: float = 0.05,
    ) -> None:
        self._handler = handler
        self._retries = retries
        self._retry_delay = retry_delay
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bocage-queue")
        self._idle = threading.Condition()
        self._outstanding = 0
        self.dropped = 0  # bodies given up after every retry failed

    def send_batch(self, bodies: Sequence[str]) -> None:
        for body in bodies:
            with self._idle:
                self._outstanding += 1
            try:
                self._executor.submit(self._run, body)
            except RuntimeError:  # closed: undo the count so drain() does not wait forever
                self._finished()
                raise

    def _run(self, body: str) -> None:
        try:
            for attempt in range(1 + self._retries):
                if attempt:
                    time.sleep(self._retry_delay * attempt)
                try:
                    self._handler([body])
                    return
                except Exception as exc:
                    # The body is the users' (ciphertext and metadata): only the error type is logged.
                    if attempt < self._retries:
                        logger.warning(
                            "queue handler failed, retrying",
                            extra={"attempt": attempt + 1, "error": type(exc).__name__},
                        )
                    else:
                        logger.error(
                            "queue handler failed, message dropped",
                            extra={"attempts": attempt + 1, "error": type(exc).__name__},
                        )
                        with self._idle:
                            self.dropped += 1
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._idle:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._idle.notify_all()

    def drain(self, timeout: float | None = None) -> None:
        """Wait until every body sent so far is handled or dropped; TimeoutError otherwise."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._outstanding == 0, timeout):
                raise TimeoutError(f"{self._outstanding} queue messages still in progress")

    def close(self) -> None:
        """Finish the work already queued, then refuse more."""
        self._executor.shutdown(wait=True)
