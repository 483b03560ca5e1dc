"""Keeping a channel's verified membership state up to date (docs/protocol.md, section 14).

The client keeps, per channel, the state after the last entry it verified (in the profile, so
no server answer can make it forget). It fetches from that entry on: the server must show the
same entry there (else a fork) and must not stop before it (a rollback); both refuse the
channel. New entries are replayed with chalicelib/domain/membership_log.py: the first invalid
one (unsigned, unchained, unauthorised) stops the replay and is reported, so an addition no
authorised member signed never gets a key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from bocage.client.certs import TrustWarning
from chalicelib.domain.membership_log import Authority, LogError, LogState, create, extend, replay
from chalicelib.domain.statements import statement_hash

#: Fetches a channel's log entries from a number on, with the server's head: ``(entries, head)``.
Fetch = Callable[[int], tuple[list[dict[str, Any]], Mapping[str, Any] | None]]


class MembershipRefused(Exception):
    """The server's log does not extend the one this client kept: nothing is sealed or sent."""

    def __init__(self, warning: TrustWarning) -> None:
        super().__init__(warning.message)
        self.warning = warning


def sync(
    channel_id: str, kept: LogState | None, fetch: Fetch, authority: Authority, *, rebuild: bool = False
) -> tuple[LogState, list[TrustWarning]]:
    """The verified state after what the server shows now, and what was refused on the way.

    ``rebuild``: the kept state was written before it kept who left (``former``), so the log is
    read from entry 0 once to find them; the kept entry must still be the one replayed there."""
    warnings: list[TrustWarning] = []
    entries, head = fetch(0 if rebuild and kept else kept.seq if kept else 0)
    if rebuild and kept is not None:
        kept, entries, warnings = _with_former(channel_id, kept, entries, authority)
    state, rest = _continue_from(channel_id, kept, entries, head)
    for entry in rest:
        try:
            state = create(entry, authority, channel_id) if state is None else extend(state, entry, authority)
        except LogError as exc:
            warnings.append(
                TrustWarning("membership_invalid", f"{channel_id}: {exc}; later entries ignored", None, None)
            )
            break
    if state is None:
        raise MembershipRefused(
            TrustWarning("membership_invalid", f"{channel_id}: no valid signed creation entry", None, None)
        )
    return state, warnings


def _with_former(
    channel_id: str, kept: LogState, entries: list[dict[str, Any]], authority: Authority
) -> tuple[LogState, list[dict[str, Any]], list[TrustWarning]]:
    """The kept state with the departures replayed up to it, and the entries from it on. An
    entry at the kept ``seq`` that replays to another hash is a fork; a log that no longer
    replays that far (an ended partner's entry, 22.6) is reported, and the state stays without
    ``former`` (kept so), to be rebuilt again at the next check."""
    rebuilt, error = replay(entries[: kept.seq + 1], authority, channel_id)
    if rebuilt is not None and rebuilt.seq == kept.seq:
        if rebuilt.head != kept.head:
            raise MembershipRefused(
                TrustWarning(
                    "membership_fork",
                    f"{channel_id}: the server shows another log up to entry {kept.seq} than the one "
                    "this device verified (forked log)",
                )
            )
        again = dataclasses.replace(
            kept,
            former=rebuilt.former,
            authored_until=rebuilt.authored_until,
            created_at=rebuilt.created_at,
            issued_at=rebuilt.issued_at,
            joined=rebuilt.joined,
            unplaced=rebuilt.unplaced,
            former_known=True,
        )
        return again, entries[kept.seq :], []
    why = f"{channel_id}: who left before entry {kept.seq} could not be replayed again ({error})"
    retry = dataclasses.replace(kept, former_known=False)
    return retry, entries[kept.seq :], [TrustWarning("membership_invalid", why, None, None)]


def _continue_from(
    channel_id: str, kept: LogState | None, entries: list[dict[str, Any]], head: Mapping[str, Any] | None
) -> tuple[LogState | None, list[dict[str, Any]]]:
    """The kept state and the entries after it, if the server's log extends it."""
    if kept is None:
        return None, entries
    if kept.channel_id != channel_id:
        raise MembershipRefused(
            TrustWarning("membership_invalid", f"{channel_id}: the state kept here is another channel's")
        )
    if (
        head is None
        or int(head.get("seq", -1)) < kept.seq
        or not entries
        or entries[0].get("seq") != kept.seq
    ):
        shown = "none" if head is None else head.get("seq")
        raise MembershipRefused(
            TrustWarning(
                "membership_rollback",
                f"{channel_id}: the server's membership log ends at {shown}, before entry {kept.seq} "
                "this device already verified (rolled back)",
            )
        )
    if statement_hash(entries[0]) != kept.head:
        raise MembershipRefused(
            TrustWarning(
                "membership_fork",
                f"{channel_id}: the server shows another entry {kept.seq} than the one this device "
                "verified (forked log)",
            )
        )
    return kept, entries[1:]
