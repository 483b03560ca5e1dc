"""The members' "@mention me only" choices of a channel (docs/protocol.md, section 17)."""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.latest import save_if_newer
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.mentions_only import MentionChoice
from chalicelib.ports import Store


class MentionChoiceRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def save(self, choice: MentionChoice, *, not_after: int | None = None) -> bool:
        """Keep ``choice`` unless a stored one is newer; False when it was older (and dropped).

        The latest choice counts; one stored dated after ``not_after`` is newer than nothing."""
        key = keys.mention_choice(choice.channel_id, choice.member_id)
        item = keys.record(key, choice.model_dump(mode="json"))
        return save_if_newer(self._store, key, item, not_after=not_after)

    def get(self, channel_id: str, member_id: str) -> MentionChoice | None:
        item = self._store.get(*keys.mention_choice(channel_id, member_id))
        return None if item is None else MentionChoice.model_validate(item)

    def delete(self, channel_id: str, member_id: str) -> None:
        self._store.delete(*keys.mention_choice(channel_id, member_id))

    def of_channel(self, channel_id: str, *, consistent: bool = True) -> list[MentionChoice]:
        prefix = keys.MENTION_CHOICE_PREFIX
        items = query_all(self._store, keys.channel_partition(channel_id), prefix, consistent=consistent)
        return [MentionChoice.model_validate(item) for item in items]

    def mentions_only(self, channel_id: str) -> set[str]:
        """The members who chose "mentions only" here. Eventually consistent: read per woken
        message, and a choice made in the last second may miss one push's filter."""
        return {c.member_id for c in self.of_channel(channel_id, consistent=False) if c.mentions_only}
