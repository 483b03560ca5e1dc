"""The local scheduler keeps running tasks, whatever they raise."""

from __future__ import annotations

import functools
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


def test_replicas_sharing_a_claim_run_each_slot_once() -> None:
    claimed: dict[tuple[str, int], str] = {}
    lock = threading.Lock()
    ran: list[str] = []

    def claim_for(replica: str):
        def claim(name: str, slot: int, interval: float) -> bool:
            with lock:
                return claimed.setdefault((name, slot), replica) == replica

        return claim

    schedulers = [LocalScheduler(tick=0.01, claim=claim_for(r)) for r in ("a", "b", "c")]
    for name, scheduler in zip("abc", schedulers, strict=True):
        scheduler.every(0.05, "job", functools.partial(ran.append, name), first_after=0)
        scheduler.every(0.05, "beat", lambda: None, everywhere=True)  # never claimed
    for scheduler in schedulers:
        scheduler.start()
    time.sleep(0.5)
    for scheduler in schedulers:
        scheduler.stop()
    slots = [slot for (name, slot) in claimed if name == "job"]
    assert len(ran) == len(slots) >= 5  # one run per slot, whichever replica got it
    assert all(name == "job" for name, _ in claimed)
