"""The Queue port for ``bocage serve``: what a send hands off runs on a thread of its own.

On AWS the fan-out queue is SQS and its consumer a Lambda (``Delivery.deliver_chunks``). Here
the live pushes are socket writes made inline, but a new message's Web Push wake-ups wait on
push services' round trips, which the sender's ack must not wait for: ``Delivery.publish`` puts
them on this queue, and one consumer thread hands them, in batches of up to ten as SQS would, to
the same ``deliver_chunks``. The queue is bounded: past ``limit`` waiting bodies a sender waits
for room (a flood slows senders rather than growing memory). Stopping drains what is queued.
A replica that dies loses the wake-ups still queued, never a message: it is stored before its
ack, and Web Push is best effort anyway (a push service that fails costs only its pushes).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

BATCH = 10  # bodies a consumer call takes at once, as an SQS event source would hand them
LIMIT = 10_000

_STOP = object()


class LocalQueue:
    def __init__(self, limit: int = LIMIT) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=limit)
        self._thread: threading.Thread | None = None

    def start(self, consume: Callable[[list[str]], object]) -> None:
        """Begin handing queued bodies to ``consume`` (the container is built after its queue)."""
        self._thread = threading.Thread(target=self._run, args=(consume,), name="bocage-queue", daemon=True)
        self._thread.start()

    def send_batch(self, bodies: Sequence[str]) -> None:
        for body in bodies:
            self._queue.put(body)

    def stop(self, timeout: float) -> None:
        """Run what is queued (within ``timeout`` seconds), then stop the consumer."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def _run(self, consume: Callable[[list[str]], object]) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [str(first)]
            stop = False
            while len(batch) < BATCH:
                try:
                    body = self._queue.get_nowait()
                except queue.Empty:
                    break
                if body is _STOP:
                    stop = True
                    break
                batch.append(str(body))
            try:
                consume(batch)
            except Exception:  # one failed batch never stops the others
                logger.exception("a queued fan-out batch failed")
            if stop:
                return
