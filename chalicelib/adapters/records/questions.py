"""Questions to the town hall (docs/protocol.md, section 20): ``CHAN#c / QUESTION#q``, one item
each (its sealed boxes and answer), expiring with the tribe's retention; a follower device's
hourly count is ``QRATE#d / H#hour``, the tribe's ``QRATE#c / H#hour`` and, from its followers who
joined in the last day, ``QRATE#c#new / H#hour``, expiring after the hour."""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.domain.questions import Question
from chalicelib.ports import Store

PREFIX = "QUESTION#"


class QuestionRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, channel_id: str, question_id: str) -> Question | None:
        item = self._store.get(keys.channel_partition(channel_id), f"{PREFIX}{question_id}")
        return None if item is None else Question.model_validate(item)

    def save(self, question: Question) -> None:
        key = (keys.channel_partition(question.channel_id), f"{PREFIX}{question.question_id}")
        self._store.put(keys.record(key, question.model_dump(mode="json")))

    def page(self, channel_id: str, cursor: str | None, limit: int) -> tuple[list[Question], str | None]:
        found = self._store.query(
            keys.channel_partition(channel_id), prefix=PREFIX, limit=limit, cursor=cursor
        )
        return [Question.model_validate(i) for i in found.items], found.cursor

    def count_asked(self, asked_of: str, hour: int, *, by_new: bool = False) -> int:
        """Questions this hour from a device, or to a tribe (by its id; ``by_new``: from its
        followers who joined lately): an atomic ADD on a counter that expires after the hour."""
        expires_at = (hour + 2) * 3600
        key = keys.question_rate(f"{asked_of}#new" if by_new else asked_of, hour)
        return self._store.increment(*key, "asked", 1, expires_at=expires_at)
