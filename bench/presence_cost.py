"""CPU of one fan-out's recipient lookup: the store's presence query against a replica's memory.

A channel of R members, one connection each, on a SQLite store in a temporary directory; two
``Delivery`` services on it, one reading presence (a replica with others in its directory, or
before), one with the in-memory index of a replica alone (bocage/local/presence_index.py: the
roster version's get, the members' copy, the connections in memory). Each round times
``publish`` of a small frame to the channel, K times each way, alternated, with
``time.process_time`` (CPU of this process, less sensitive than wall time to a shared
machine); the pushes go to a Push that keeps nothing, so the figure is the lookup and the
frame's serialisation. Prints the median over the rounds of the CPU per publish, each way.

    python bench/presence_cost.py [--receivers 50] [--rounds 11] [--calls 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bocage.local.presence_index import PresenceIndex  # noqa: E402
from chalicelib.adapters.clocks import SystemClock  # noqa: E402
from chalicelib.adapters.records.channels import ChannelRecords  # noqa: E402
from chalicelib.adapters.sqlite_store import SqliteStore  # noqa: E402
from chalicelib.domain.channel import ChannelMember, ChannelRole  # noqa: E402
from chalicelib.domain.frames import PongFrame  # noqa: E402
from chalicelib.ports import Target  # noqa: E402
from chalicelib.services.delivery import Delivery  # noqa: E402


class Nowhere:
    """A BatchPush that keeps nothing: every target is reached."""

    def send(self, connection_id: str, data: bytes) -> None:
        pass

    def send_many(self, targets: Sequence[Target], data: bytes) -> list[str]:
        return []

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(str(Path(tmp) / "bocage.sqlite3"), SystemClock())
        clock = SystemClock()
        records = ChannelRecords(store)
        for i in range(args.receivers):
            records.save_membership(
                ChannelMember(
                    channel_id="c", member_id=f"m{i}", role=ChannelRole.MEMBER, added_at=1, added_by="o"
                )
            )
        records.bump_roster("c")
        presence = Delivery(store, clock, Nowhere(), None, replica="r1")
        index = PresenceIndex("r1", lambda: True)
        memory = Delivery(store, clock, Nowhere(), None, replica="r1", local=index)
        for i in range(args.receivers):
            memory.connect(f"k{i}", org_id="o", member_id=f"m{i}", device_id=f"d{i}", channels=["c"])
        frame = PongFrame()
        assert presence.publish("c", frame) == memory.publish("c", frame) == args.receivers
        costs: dict[str, list[float]] = {"presence query": [], "memory": []}
        for _ in range(args.rounds):
            for name, delivery in (("presence query", presence), ("memory", memory)):
                started = time.process_time()
                for _ in range(args.calls):
                    delivery.publish("c", frame)
                costs[name].append((time.process_time() - started) / args.calls)
        store.close()
    print(f"R={args.receivers}: CPU per publish, median of {args.rounds} rounds of {args.calls} calls")
    for name, values in costs.items():
        print(f"  {name:>15}: {statistics.median(values) * 1e6:7.1f} µs")


if __name__ == "__main__":
    main()
