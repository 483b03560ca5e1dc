"""The local scheduler keeps running tasks, whatever they raise."""

from __future__ import annotations

import threading
import time

from bocage.local.scheduler import LocalScheduler


def test_tasks_repeat_and_failures_do_not_stop_others() -> None:
    runs = {"ok": 0, "boom": 0}
    enough = threading.Event()

    def ok() -> None:
        runs["ok"] += 1
        if runs["ok"] >= 3 and runs["boom"] >= 3:
            enough.set()

    def boom() -> None:
        runs["boom"] += 1
        raise RuntimeError("a job failed")

    scheduler = LocalScheduler(tick=0.01)
    scheduler.every(0.02, "ok", ok, first_after=0)
    scheduler.every(0.02, "boom", boom, first_after=0)
    scheduler.every(0, "never", lambda: runs.__setitem__("never", 1))
    scheduler.start()
    try:
        assert enough.wait(5), runs
    finally:
        scheduler.stop()
    assert "never" not in runs
    after = dict(runs)
    time.sleep(0.1)
    assert runs == after  # stopped means stopped
