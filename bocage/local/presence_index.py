"""This replica's connections in memory: a send's fan-out without the store's presence query.

Every send used to query its channel's presence items (one item per connection, decoded each
time): a sixth of a send's CPU under ``bench/load.py``. A replica knows its own connections
exactly: ``Delivery.connect`` adds each here and ``Delivery.disconnect`` removes it, and the
channel's members come from a copy kept under the roster version (services/roster_cache.py),
which every membership change moves. That is the whole channel only while this replica is the
only one in the directory: with others listed, ``of_members`` answers None and the send reads
presence, whose records name each connection's replica (bocage/local/cluster.py). A replica
joining a directory that lists others waits until each has re-read it before taking a
connection (``Membership.join``), so no replica pushes from memory alone while another holds a
connection; a client that connects then catches up still has every message exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from chalicelib.ports import Target


class PresenceIndex:
    def __init__(self, replica_id: str, alone: Callable[[], bool]) -> None:
        self._replica_id = replica_id
        self._alone = alone
        self._lock = threading.Lock()
        self._devices: dict[str, tuple[str, str]] = {}  # connection -> (member, device)
        self._by_member: dict[str, dict[str, str]] = {}  # member -> connection -> device

    def add(self, connection_id: str, member_id: str, device_id: str) -> None:
        with self._lock:
            self._devices[connection_id] = (member_id, device_id)
            self._by_member.setdefault(member_id, {})[connection_id] = device_id

    def remove(self, connection_id: str) -> None:
        with self._lock:
            known = self._devices.pop(connection_id, None)
            if known is None:
                return
            theirs = self._by_member.get(known[0], {})
            theirs.pop(connection_id, None)
            if not theirs:
                self._by_member.pop(known[0], None)

    def of_members(self, member_ids: Iterable[str]) -> list[Target] | None:
        if not self._alone():
            return None
        replica = self._replica_id
        with self._lock:
            by_member = self._by_member
            return [
                Target(connection_id, replica, device_id)
                for member_id in member_ids
                for connection_id, device_id in by_member.get(member_id, {}).items()
            ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._devices)
