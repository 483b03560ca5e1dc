"""What the messaging routes answer: one model per response, the shapes clients rely on.

``SendResult`` is also the body of the WebSocket ``ack`` frame; ``ReadPage`` carries
messages exactly as stored (see ``StoredMessage.wire``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.frames import AckFrame, Receipt, StoredMessage


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class SendResult(Receipt):
    """The answer to ``POST /channels/{c}/messages``: the message's receipt."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def ack(self, ref: str | None) -> AckFrame:
        """The same answer over the WebSocket, tied to the action's ``ref``."""
        return AckFrame(ref=ref, **self.model_dump())


class ReadPage(_Response):
    """Messages after the reader's cursor; pass ``cursor`` back next time, and again if ``more``."""

    channel_id: str
    messages: list[StoredMessage]
    cursor: int
    more: bool

    def public(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "messages": [m.wire() for m in self.messages],
            "cursor": self.cursor,
            "more": self.more,
        }
