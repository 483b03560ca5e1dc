"""A channel's roster as Web Push needs it, read from the store only when it changed.

Each new message asks which of its channel's devices the fan-out did not reach. Reading the
roster for that on every message cost more than storing the message (each roster item carries
the device's keys and certificate, parsed every time). The roster has a version in the store
(``ChannelCounters.roster``), moved after every change to the roster (join, leave, a device
registered or revoked, a follower in or out): one small read of that version per message tells
whether the copy this process keeps is still the roster. The version is read before the roster,
so a copy is never older than the version it is filed under; every process (a Lambda instance,
a ``bocage serve`` replica) checks the shared store itself, so a change made through another
is seen at the next message.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.ports import Store

#: Channels remembered per process; past it the least recently filled is forgotten.
CHANNELS = 4096


@dataclass(frozen=True, slots=True)
class RosterEntry:
    device_id: str
    member_id: str


class RosterCache:
    def __init__(self, store: Store, size: int = CHANNELS) -> None:
        self._records = ChannelRecords(store)
        self._size = size
        self._lock = threading.Lock()
        self._copies: dict[str, tuple[int, tuple[RosterEntry, ...]]] = {}

    def devices(self, channel_id: str) -> tuple[RosterEntry, ...]:
        """The channel's roster devices, as of the roster version read now."""
        version = self._records.counters(channel_id).roster
        copy = self._copies.get(channel_id)
        if copy is not None and copy[0] == version:
            return copy[1]
        devices = tuple(RosterEntry(d.device_id, d.member_id) for d in self._records.roster(channel_id))
        with self._lock:
            self._copies.pop(channel_id, None)
            if len(self._copies) >= self._size:
                del self._copies[next(iter(self._copies))]
            self._copies[channel_id] = (version, devices)
        return devices
