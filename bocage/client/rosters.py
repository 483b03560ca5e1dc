"""Channel rosters kept between sends, trusted while no newer version was announced.

A send seals the sender's key to every device of the roster, so it needs the roster;
fetching it each time doubled every send. The server numbers each roster (``roster``,
bumped whenever the set of devices changes) and announces new numbers in the channel list
and in ``joined`` and ``device`` frames; an epoch that moved on (``left``, ``revoked`` and
``rotated`` frames, or a ``stale_epoch`` refusal) makes a kept roster stale too.

Only a live connection hears those announcements as they happen, so a kept roster is
trusted only while one is open (``watched``); without one, every send asks, as a member
who joined meanwhile must get the key with the very next message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bocage.client.results import Roster


@dataclass
class RosterCache:
    """Rosters by channel, with the newest version and epoch heard of for each."""

    watched: bool = False
    _rosters: dict[str, Roster] = field(default_factory=dict)
    _versions: dict[str, int] = field(default_factory=dict)
    _epochs: dict[str, int] = field(default_factory=dict)

    def get(self, channel_id: str) -> Roster | None:
        """The kept roster, while watched and nothing newer was heard of."""
        roster = self._rosters.get(channel_id)
        if roster is None or not self.watched:
            return None
        if roster["roster"] < self._versions.get(channel_id, 0):
            return None
        if roster["epoch"] < self._epochs.get(channel_id, 0):
            return None
        return roster

    def put(self, channel_id: str, roster: Roster) -> None:
        self._rosters[channel_id] = roster
        self.heard(channel_id, version=roster["roster"], epoch=roster["epoch"])

    def heard(self, channel_id: str, *, version: int | None = None, epoch: int | None = None) -> None:
        """The server announced a roster version or an epoch for this channel."""
        if version is not None:
            self._versions[channel_id] = max(version, self._versions.get(channel_id, 0))
        if epoch is not None:
            self._epochs[channel_id] = max(epoch, self._epochs.get(channel_id, 0))

    def forget(self, channel_id: str) -> None:
        """Drop the kept roster (the server refused it as stale)."""
        self._rosters.pop(channel_id, None)
