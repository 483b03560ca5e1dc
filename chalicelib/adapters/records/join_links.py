"""Public tribes' join links and follower counts (docs/protocol.md, section 16).

A tribe's current link is ``CHAN#c / JOINLINK``, found from the link's id through
``JOIN#j / META``; its managers' latest signed "last N days" choice is ``CHAN#c / HISTORY``
(section 23); an organisation's follower count is ``FOLLOWERS#o / COUNT``, beside the
followers themselves (chalicelib/adapters/records/keys.py, ``member_home``).
"""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.latest import save_if_newer
from chalicelib.domain.followers import HISTORY_CLOCK_SKEW, HistoryChoice, JoinLink
from chalicelib.ports import Store


class JoinLinkRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def of_channel(self, channel_id: str) -> JoinLink | None:
        item = self._store.get(*keys.join_link(channel_id))
        return None if item is None else JoinLink.model_validate(item)

    def current_for(self, link_id: str) -> JoinLink | None:
        """The current link of the tribe this link id was made for (another one if it was
        replaced since), or None for an id never made."""
        index = self._store.get(*keys.join_link_index(link_id))
        return None if index is None else self.of_channel(str(index["channel_id"]))

    def save(self, link: JoinLink) -> None:
        self._store.put(keys.record(keys.join_link(link.channel_id), link.model_dump(mode="json")))
        index: dict[str, object] = {"channel_id": link.channel_id}
        self._store.put(keys.record(keys.join_link_index(link.link_id), index))

    def count_join(self, channel_id: str, delta: int) -> int:
        """Joins through the tribe's current link (atomic ADD): what a cap is checked against."""
        return self._store.increment(*keys.join_link(channel_id), "joined", delta)

    def count_tribe_join(self, channel_id: str, hour: int) -> int:
        """New followers of the tribe this hour (atomic ADD, expires after the hour)."""
        return self._store.increment(
            *keys.join_rate(channel_id, hour), "joined", 1, expires_at=(hour + 2) * 3600
        )

    def count_source_join(self, channel_id: str, hour: int, block: str) -> int:
        """New followers of the tribe this hour from a source ``block`` (atomic ADD, expires likewise)."""
        return self._store.increment(
            *keys.join_rate_from(channel_id, hour, block), "joined", 1, expires_at=(hour + 2) * 3600
        )

    def follower_count(self, org_id: str) -> int:
        return int((self._store.get(*keys.follower_count(org_id)) or {}).get("followers", 0))

    def count_followers(self, org_id: str, delta: int) -> int:
        return self._store.increment(*keys.follower_count(org_id), "followers", delta)

    def save_history(self, choice: HistoryChoice, now: int) -> bool:
        """Keep the tribe's newest recent-history choice; False if ``choice`` was older. A stored
        one dated ahead of ``now`` (past the skew) is replaced whatever its date (23)."""
        key = keys.recent_history(choice.channel_id)
        item = keys.record(key, choice.model_dump(mode="json"))
        return save_if_newer(self._store, key, item, not_after=now + HISTORY_CLOCK_SKEW)

    def history(self, channel_id: str) -> HistoryChoice | None:
        item = self._store.get(*keys.recent_history(channel_id))
        return None if item is None else HistoryChoice.model_validate(item)
