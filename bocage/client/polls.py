"""Polls, tallied on the device (like Matrix's MSC3381): the server relays sealed votes only.

A poll is a message of kind ``poll``; a vote (kind ``vote``) names the poll inside
its ciphertext; a later vote by the same member replaces the earlier one, whichever
of their devices sent it. Votes count only when they verify, come from a current
member of the channel, and arrive before the poll closes (its author's, or a
manager's, ``poll_close``, or its closing time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.ids import is_follower_id

MIN_OPTIONS, MAX_OPTIONS = 2, 20
MAX_QUESTION = 500
MAX_OPTION = 200


def new_poll(
    question: str,
    options: list[str],
    *,
    multiple: bool = False,
    closes_at: int | None = None,
    show_voters: bool = False,
) -> dict[str, Any]:
    """The content of a poll message; ValueError on what no client should accept either.

    ``show_voters``: results name who chose each option (docs/protocol.md, section 8).
    """
    question = question.strip()
    cleaned = [o.strip() for o in options]
    if not question or len(question) > MAX_QUESTION:
        raise ValueError(f"a poll needs a question of 1 to {MAX_QUESTION} characters")
    if not MIN_OPTIONS <= len(cleaned) <= MAX_OPTIONS:
        raise ValueError(f"a poll has {MIN_OPTIONS} to {MAX_OPTIONS} options")
    if any(not o or len(o) > MAX_OPTION for o in cleaned) or len(set(cleaned)) != len(cleaned):
        raise ValueError(f"options are distinct and 1 to {MAX_OPTION} characters long")
    content = {
        "type": "poll",
        "question": question,
        "options": cleaned,
        "multiple": multiple,
        "closes_at": closes_at,
    }
    return {**content, "show_voters": True} if show_voters else content


def tally(
    messages: list[dict[str, Any]],
    poll_id: str,
    members: set[str],
    *,
    now: float,
    departed: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Results of one poll from a channel's opened messages (as Messenger.open returns them).

    ``members``: who may vote (the verified membership cut at the ends, and a tribe's verified
    followers; never the server's roster: section 8). ``departed``: who left (or was cut), with
    when (s): a closed poll also counts those still in when it closed, so its result stays as
    it was. ``now`` (the caller's clock) decides whether a poll's closing time has passed.
    """
    poll = next(
        (m for m in messages if m["message_id"] == poll_id and m["kind"] == "poll" and m.get("verified")),
        None,
    )
    if poll is None:
        raise LookupError(f"no readable poll {poll_id} in this channel")
    content = poll["content"]
    options: list[str] = content["options"]
    closes_at = _closes_at(content)
    closes = [
        m["seq"]
        for m in messages
        if m["kind"] == "poll_close" and m.get("verified") and m["content"].get("poll_id") == poll_id
    ]
    closed_seq = min(closes) if closes else None
    closed_at = _closed_at(messages, closed_seq, closes_at, now)
    if closed_at is not None:
        members = members | {m for m, left in (departed or {}).items() if left > closed_at}
    latest = _latest_votes(messages, poll, members, closed_seq)
    counts = [0] * len(options)
    follower_counts = [0] * len(options)
    for voter, vote in latest.items():
        for choice in vote["choices"]:
            counts[choice] += 1
            follower_counts[choice] += is_follower_id(voter)
    show_voters = content.get("show_voters") is True

    def who_chose(i: int) -> dict[str, list[str]]:
        return {"voter_ids": sorted(m for m, v in latest.items() if i in v["choices"])} if show_voters else {}

    return {
        "poll_id": poll_id,
        "question": content["question"],
        "options": [
            {"index": i, "option": o, "votes": counts[i]} | who_chose(i) for i, o in enumerate(options)
        ],
        "show_voters": show_voters,
        "counts": counts,
        # A public tribe's followers vote too (one device each): per option and in all, the part
        # of the counts that is theirs, so members' and followers' votes show apart.
        "follower_counts": follower_counts,
        "voters": len(latest),
        "voter_ids": sorted(latest),
        "follower_voters": sum(1 for voter in latest if is_follower_id(voter)),
        "multiple": bool(content.get("multiple")),
        "closes_at": closes_at,
        "closed": closed_at is not None,
    }


def _latest_votes(
    messages: list[dict[str, Any]], poll: dict[str, Any], members: set[str], closed_seq: int | None
) -> dict[str, dict[str, Any]]:
    """Per voter among ``members``, their last valid vote on ``poll`` cast before it closed."""
    content = poll["content"]
    closes_at = _closes_at(content)
    latest: dict[str, dict[str, Any]] = {}
    for m in messages:
        if m["kind"] != "vote" or not m.get("verified") or m["content"].get("poll_id") != poll["message_id"]:
            continue
        late = (closed_seq is not None and m["seq"] > closed_seq) or (
            closes_at is not None and m["stored_at"] > closes_at
        )
        if late or m["seq"] < poll["seq"] or m["sender_member"] not in members:
            continue
        choices = _valid_choices(
            m["content"].get("choices"), len(content["options"]), multiple=bool(content.get("multiple"))
        )
        if choices is None:
            continue
        if m["sender_member"] not in latest or latest[m["sender_member"]]["seq"] < m["seq"]:
            latest[m["sender_member"]] = {"seq": m["seq"], "choices": choices}
    return latest


def _closed_at(
    messages: list[dict[str, Any]], closed_seq: int | None, closes_at: float | None, now: float
) -> float | None:
    """When the poll closed (s), or None while open: the first verified close's signed date,
    or the poll's closing time once passed, whichever came first."""
    when = [] if closes_at is None or now < closes_at else [float(closes_at)]
    closing = next((m for m in messages if closed_seq is not None and m["seq"] == closed_seq), None)
    if closing is not None:
        when.append(closing["sent_at_ms"] / 1000)
    return min(when) if when else None


def _closes_at(content: dict[str, Any]) -> float | None:
    """The poll's closing time, when it is a number (a sender's poll may hold anything else:
    then it has none, as in the web app)."""
    raw = content.get("closes_at")
    return raw if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) else None


def _valid_choices(raw: object, size: int, *, multiple: bool) -> list[int] | None:
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(c, int) and not isinstance(c, bool) for c in raw)
    ):
        return None
    if len(set(raw)) != len(raw) or any(not 0 <= c < size for c in raw):
        return None
    if not multiple and len(raw) != 1:
        return None
    return sorted(raw)
