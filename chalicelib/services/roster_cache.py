"""A channel's roster as Web Push needs it, and its members as a replica's in-memory fan-out
needs them, read from the store only when they changed.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.ports import Store

#: Copies remembered per process (a channel's devices, its members); past it the least recently
#: filled is forgotten.
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
        self._copies: dict[tuple[str, str], tuple[int, tuple[Any, ...]]] = {}

    def devices(self, channel_id: str) -> tuple[RosterEntry, ...]:
        """The channel's roster devices, as of the roster version read now."""
        return self._current(
            channel_id,
            "devices",
            lambda: tuple(RosterEntry(d.device_id, d.member_id) for d in self._records.roster(channel_id)),
        )

    def member_ids(self, channel_id: str) -> tuple[str, ...]:
        """The channel's members and followers (whose connections its pushes reach), as of the
        roster version read now: every change of membership moves it (services/channels.py)."""
        return self._current(
            channel_id, "members", lambda: tuple(m.member_id for m in self._records.members(channel_id))
        )

    def _current(self, channel_id: str, what: str, read: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
        version = self._records.counters(channel_id).roster
        copy = self._copies.get((channel_id, what))
        if copy is not None and copy[0] == version:
            return copy[1]
        value = read()
        with self._lock:
            self._copies.pop((channel_id, what), None)
            if len(self._copies) >= self._size:
                del self._copies[next(iter(self._copies))]
            self._copies[(channel_id, what)] = (version, value)
        return value
