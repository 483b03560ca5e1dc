"""A channel's roster as Web Push needs it, and its members as a replica's in-memory fan-out
needs them, read from the store only when they changed.

Each new message asks which of its channel's devices the fan-out did not reach. Reading the
roster for that on every message cost more than storing the message (each roster item carries
the device's keys and certificate, parsed every time). The roster has a version in the store
(``ChannelCounters.roster``): one small read of it per message tells whether the copy this
process keeps is still the roster. Every process (a Lambda instance, a ``bocage serve`` replica)
checks the shared store itself, so a change made through another is seen at the next message.
A send reads it not at all: the write that numbers its message returns the channel's counters
(``ChannelRecords.next_seq``), and its fan-out and Web Push check both take the version from
them (``counters``), read before either reads the roster, as a read of its own would be.

A change moves the version both before and after writing the roster, and counts itself as under
way in between (``roster_busy``, records/channels.py ``change_roster``). A copy is kept only when
the version was read, before the roster, with no change under way: it is then at least as new as
that version. A process that dies half-way leaves its change counted for good; the copy is then
kept once the version has stood still for ``SETTLE`` seconds, longer than any write of a roster
takes, so the dead change's write is over or never happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import Any

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.domain.roster import ChannelCounters
from chalicelib.ports import Clock, Store

#: Copies remembered per process (a channel's devices, its members); past it the least recently
#: filled is forgotten.
CHANNELS = 4096

#: Seconds a version counted as changing must stand still before its roster is taken as final.
SETTLE = 300


@dataclass(frozen=True, slots=True)
class RosterEntry:
    device_id: str
    member_id: str


class RosterCache:
    def __init__(self, store: Store, clock: Clock, size: int = CHANNELS) -> None:
        self._records = ChannelRecords(store)
        self._clock = clock
        self._size = size
        self._lock = threading.Lock()
        self._copies: dict[tuple[str, str], tuple[int, tuple[Any, ...]]] = {}
        self._busy: dict[str, tuple[int, int]] = {}  # channel -> (version, first seen busy at)

    def devices(self, channel_id: str, counters: ChannelCounters | None = None) -> tuple[RosterEntry, ...]:
        """The channel's roster devices, as of ``counters``' roster version (read now without)."""
        return self._current(
            channel_id,
            "devices",
            lambda: tuple(RosterEntry(d.device_id, d.member_id) for d in self._records.roster(channel_id)),
            counters,
        )

    def member_ids(self, channel_id: str, counters: ChannelCounters | None = None) -> tuple[str, ...]:
        """The channel's members and followers (whose connections its pushes reach), as of
        ``counters``' roster version (read now without): every change of membership moves it
        (services/channels.py). Followers are stored apart from members
        (``ChannelRecords.followers``), so both are read."""
        records = self._records
        return self._current(
            channel_id,
            "members",
            lambda: tuple(
                m.member_id for m in chain(records.members(channel_id), records.followers(channel_id))
            ),
            counters,
        )

    def _current(
        self,
        channel_id: str,
        what: str,
        read: Callable[[], tuple[Any, ...]],
        counters: ChannelCounters | None,
    ) -> tuple[Any, ...]:
        if counters is None:
            counters = self._records.counters(channel_id)
        version = counters.roster
        copy = self._copies.get((channel_id, what))
        if copy is not None and copy[0] == version:
            return copy[1]
        settled = counters.roster_busy <= 0 or self._stood_still(channel_id, version)
        value = read()
        if settled:
            with self._lock:
                self._busy.pop(channel_id, None)
                self._copies.pop((channel_id, what), None)
                if len(self._copies) >= self._size:
                    del self._copies[next(iter(self._copies))]
                self._copies[(channel_id, what)] = (version, value)
        return value

    def _stood_still(self, channel_id: str, version: int) -> bool:
        """Whether a change under way at ``version`` has shown no sign of life for ``SETTLE``."""
        now = self._clock.now()
        with self._lock:
            seen = self._busy.get(channel_id)
            if seen is None or seen[0] != version:
                if len(self._busy) >= self._size:
                    del self._busy[next(iter(self._busy))]
                self._busy[channel_id] = (version, now)
                return False
            return now - seen[1] >= SETTLE
