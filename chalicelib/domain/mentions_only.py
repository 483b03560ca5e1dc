""" "@mention me only": a member's signed choice per channel and the ``notify`` list a sender adds.

Whether a message mentions someone is sealed (docs/protocol.md, section 7) and a woken browser
must show a notification, so the server has to be told when a member who chose "mentions only"
is mentioned. The member's choice is a statement signed by one of their devices; the sender
names, beside the envelope, only the mentioned members whose valid choice says so (section 17).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.ids import is_follower_id, looks_like
from chalicelib.domain.statements import NOTIFY, STATEMENT_CLOCK_SKEW, StatementError, verify_statement
from chalicelib.errors import BadRequest

#: At most this many members named in one message's ``notify`` (a message mentions few people).
MAX_NOTIFY = 50
#: How far a choice's ``issued_at`` may run ahead of the server's clock.
CLOCK_SKEW = STATEMENT_CLOCK_SKEW


class MentionChoice(BaseModel):
    """The latest choice a member made for one channel, with the statement that proves it."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    channel_id: str
    member_id: str
    mentions_only: bool
    issued_at: int
    statement: dict[str, Any]

    @property
    def by_device(self) -> str:
        """The device that signed the choice (the server forgets the choice if it is revoked)."""
        return str(self.statement.get("by_device", ""))


def check_choice(
    statement: object,
    *,
    org_id: str,
    channel_id: str,
    member_id: str,
    device_id: str,
    sign_public_key: str,
    now: int,
) -> MentionChoice:
    """The caller's own choice, signed by the calling device, for this channel: 400 otherwise."""
    try:
        checked = verify_statement(statement, NOTIFY, sign_public_key)
    except StatementError as exc:
        raise BadRequest(f"statement: {exc}") from exc
    expected = {"org_id": org_id, "channel_id": channel_id, "member_id": member_id, "by_device": device_id}
    wrong = sorted(name for name, value in expected.items() if checked[name] != value)
    if wrong:
        raise BadRequest(f"statement: {', '.join(wrong)} must be the caller's and this channel's")
    if checked["issued_at"] > now + CLOCK_SKEW:
        raise BadRequest("statement: issued_at is in the future")
    return MentionChoice(
        channel_id=channel_id,
        member_id=member_id,
        mentions_only=checked["mentions_only"],
        issued_at=checked["issued_at"],
        statement=checked,
    )


def parse_notify(raw: object) -> tuple[str, ...]:
    """A sender's ``notify``: distinct member ids (never a follower's), at most ``MAX_NOTIFY``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequest("notify must be a list of member ids")
    if len(raw) > MAX_NOTIFY:
        raise BadRequest(f"notify names at most {MAX_NOTIFY} members")
    if not all(isinstance(m, str) and looks_like(m, "m") and not is_follower_id(m) for m in raw):
        raise BadRequest("notify must hold member ids only")
    if len(set(raw)) != len(raw):
        raise BadRequest("notify names a member twice")
    return tuple(raw)


def wakes(member_id: str, mentions_only: Collection[str], named: Iterable[str]) -> bool:
    """Whether a new message may wake this member's devices: always, unless they chose
    "mentions only" here and the sender did not name them."""
    return member_id not in mentions_only or member_id in set(named)
