"""Questions to the town hall (docs/protocol.md, section 20): a follower's private question
from a public tribe, sealed by their device for the tribe's managers' devices only, and the
answer a manager seals back to the follower's device. The server keeps sealed boxes, never a
question's or an answer's text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

QUESTION_PURPOSE = "bocage/question/v1"
ANSWER_PURPOSE = "bocage/answer/v1"
MAX_TEXT = 2000  # characters of a question or an answer, checked by clients (the server sees none)
MAX_RECIPIENTS = 64  # a tribe's managers' devices, and the asker's own copy
MAX_SEALED = 12_000  # characters of one sealed box (b64url): MAX_TEXT of 4-byte characters and the labels
#: All of a question's boxes together: one stored item stays well under the store's 400 KB.
MAX_SEALED_TOTAL = 300_000
QUESTIONS_PER_HOUR = 5  # per follower device: a town hall's inbox is not a script's target
#: Per public tribe, from all its followers: anyone with the poster can join again with fresh keys,
#: so the per-device limit alone does not bound what the managers' inbox receives.
TRIBE_QUESTIONS_PER_HOUR = 60
#: Of those, at most this many from devices that joined in the last day: throwaway devices made
#: from the poster to flood the inbox share this part, and followers who joined earlier keep the
#: rest (one joiner cannot starve the others).
NEW_FOLLOWER_QUESTIONS_PER_HOUR = 20
NEW_FOLLOWER_SECONDS = 86400


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    by_member: str
    by_device: str
    sealed: str
    answered_at: int
    published_message_id: str | None = None


class Question(BaseModel):
    """One question: who asked (a follower and their device), and one sealed box per recipient."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    question_id: str
    org_id: str
    channel_id: str
    asker: str
    asker_device: str
    asked_at: int
    expires_at: int
    sealed: dict[str, str]
    answer: Answer | None = None

    def shown_to(self, device_id: str) -> dict[str, Any]:
        """The question as one device sees it: its own sealed box only (None if it has none)."""
        return {
            "question_id": self.question_id,
            "channel_id": self.channel_id,
            "asker": self.asker,
            "asker_device": self.asker_device,
            "asked_at": self.asked_at,
            "expires_at": self.expires_at,
            "sealed": self.sealed.get(device_id),
            "recipients": sorted(self.sealed),
            "answer": None if self.answer is None else self.answer.model_dump(mode="json"),
        }
