"""Appending to a channel's signed membership log (docs/protocol.md, section 14).

The server checks each entry as a client would, against its own records (defence in depth: a
client never trusts the server's check), then writes it with a conditional put at its number,
so concurrent writers cannot fork the log. Effects on the channel's records follow the append
and are idempotent, so a retried request converges.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.records.membership_log import MembershipLogRecords
from chalicelib.domain.channel import ChannelMember
from chalicelib.domain.membership_log import PARTNER, LogError, LogState, create, extend
from chalicelib.domain.statements import STATEMENT_CLOCK_SKEW, statement_hash
from chalicelib.errors import BadRequest, ConditionFailed, Conflict
from chalicelib.ports import Clock, Store
from chalicelib.services.organisations import OrganisationService
from chalicelib.services.shared_groups import SharedGroups

MAX_PAGE = 500
#: How far an entry's ``issued_at`` may be from this server's clock: the request tokens' window
#: (section 4), so an honest device always passes and no entry is stored dated in the past or the
#: future, where it would reorder departures (14.2) or be refused by clients (14, "Dates").
ENTRY_CLOCK_WINDOW = STATEMENT_CLOCK_SKEW


class RecordsAuthority:
    """The membership log's view of the organisation and its active partners (22.6), from the
    server's records."""

    def __init__(self, orgs: OrganisationService, shared: SharedGroups, org_id: str, clock: Clock) -> None:
        self._orgs = orgs
        self._shared = shared
        self._org_id = org_id
        self._clock = clock

    def signer(self, device_id: str, at: int) -> tuple[str, str] | None:
        device = self._orgs.get_device(device_id)
        if device is None or device.is_revoked or not self._shared.may_share(self._org_id, device.org_id):
            return None
        return device.member_id, device.sign_public_key

    def org_role(self, member_id: str, at: int) -> str | None:
        member = self._shared.member(self._org_id, member_id)
        if not member.is_active:
            return None
        return member.role.value if member.org_id == self._org_id else PARTNER

    def may_join(self, member_id: str, at: int) -> bool:
        """Judged now, whatever ``at``: the server only checks entries it is about to append, and
        appends no ``add`` of someone removed from the organisation (section 14)."""
        return self._shared.member(self._org_id, member_id).is_active

    def tribes_open_to(self, member_id: str) -> bool:
        member = self._shared.member(self._org_id, member_id)
        return member.org_id == self._org_id or self._shared.allows_tribes(self._org_id, member.org_id)

    def unplaced(self, member_id: str) -> bool:
        return False  # the server knows every organisation's members

    def now(self) -> int:
        return self._clock.now()


class MembershipLog:
    def __init__(self, store: Store, clock: Clock, orgs: OrganisationService, shared: SharedGroups) -> None:
        self._records = MembershipLogRecords(store)
        self._clock = clock
        self._orgs = orgs
        self._shared = shared

    def check_creation(self, org_id: str, entry: object) -> dict[str, Any]:
        """Entry 0 of a new channel, checked (not yet written)."""
        if not isinstance(entry, dict):
            raise BadRequest("membership: the channel's creation entry is required (docs/protocol.md, 14)")
        try:
            create(entry, RecordsAuthority(self._orgs, self._shared, org_id, self._clock))
        except LogError as exc:
            raise BadRequest(f"membership: {exc}") from exc
        self._check_date(entry)
        if entry["org_id"] != org_id:
            raise BadRequest("membership: the entry names another organisation")
        return entry

    def append_creation(self, channel_id: str, entry: dict[str, Any]) -> None:
        self._append(channel_id, entry)
        self._records.mark_members_complete(channel_id)  # a new log: every member named is noted from here

    def append(
        self, org_id: str, channel_id: str, kind: str, members: list[ChannelMember], entry: object
    ) -> dict[str, Any]:
        """Check ``entry`` extends the log of a ``kind`` channel of ``org_id`` (its host) whose
        members are ``members``, and write it."""
        if not isinstance(entry, dict):
            raise BadRequest("membership: a signed membership entry is required (docs/protocol.md, 14)")
        head = self._records.head(channel_id)
        if head is None:
            raise Conflict("this channel has no membership log: it was created before protocol v2")
        if entry.get("seq") == head["seq"] and statement_hash(entry) == statement_hash(head):
            return entry  # a retry of the entry already written: its effects are re-applied
        state = LogState(
            channel_id=channel_id,
            kind=kind,
            members={m.member_id: m.role.value for m in members},
            seq=int(head["seq"]),
            head=statement_hash(head),
            org_id=org_id,
            issued_at=int(head["issued_at"]),
        )
        try:
            extend(state, entry, RecordsAuthority(self._orgs, self._shared, org_id, self._clock))
        except LogError as exc:
            if "does not follow" in str(exc):
                raise Conflict(f"the membership log moved; fetch it and sign again ({exc})") from exc
            raise BadRequest(f"membership: {exc}") from exc
        self._check_date(entry)
        self._append(channel_id, entry)
        return entry

    def _check_date(self, entry: dict[str, Any]) -> None:
        """An entry is dated now, by this server's clock, give or take the tokens' window."""
        off = int(entry["issued_at"]) - self._clock.now()
        if abs(off) > ENTRY_CLOCK_WINDOW:
            raise BadRequest(
                f"membership: the entry is dated {abs(off)} s {'ahead of' if off > 0 else 'behind'} this "
                f"server's clock (at most {ENTRY_CLOCK_WINDOW}): set the device's clock and sign it again"
            )

    def _append(self, channel_id: str, entry: dict[str, Any]) -> None:
        try:
            self._records.append(channel_id, entry)
        except ConditionFailed as exc:
            existing = self._records.get(channel_id, int(entry["seq"]))
            if existing is None or statement_hash(existing) != statement_hash(entry):
                raise Conflict("the membership log moved; fetch it and sign again") from exc
        self._note_members(channel_id, [entry])

    def _note_members(self, channel_id: str, entries: list[dict[str, Any]]) -> set[str]:
        found = {str(e["member_id"]) for e in entries if isinstance(e.get("member_id"), str)}
        for device_id in {str(e.get("by_device")) for e in entries}:
            device = self._orgs.get_device(device_id)
            if device is not None:
                found.add(device.member_id)
        for member_id in found:
            self._records.note_member(channel_id, member_id)
        return found

    def named(self, channel_id: str) -> list[str]:
        """Every member the log names (added, removed, or signing), however long it is: kept as entries are
        appended; for a log older than that record, gathered once, page by page, then kept."""
        kept = self._records.named(channel_id)
        if kept is not None:
            return kept
        found: set[str] = set()
        start, more = 0, True
        while more:
            entries, more = self._records.page(channel_id, start, MAX_PAGE)
            found |= self._note_members(channel_id, entries)
            start += len(entries)
        self._records.mark_members_complete(channel_id)
        return sorted(found)

    def still_in(self, channel_id: str, member_id: str) -> bool:
        """Whether a replay of the log leaves the member in: their last ``add`` (or creation) has
        no ``leave`` or ``remove`` after it. The end of a partnership writes no entry (22.6), so a
        partner's member it took out is still in for clients; one who left or was removed by a
        signed entry is not. Reads the whole log: asked only before adding a partner's member."""
        present, start, more = False, 0, True
        while more:
            entries, more = self._records.page(channel_id, start, MAX_PAGE)
            for entry in entries:
                if entry.get("member_id") == member_id and entry.get("op") in (
                    "create",
                    "add",
                    "leave",
                    "remove",
                ):
                    present = entry["op"] in ("create", "add")
            start += len(entries)
        return present

    def page(self, channel_id: str, start: int, limit: int) -> dict[str, Any]:
        entries, more = self._records.page(channel_id, max(0, start), max(1, min(limit, MAX_PAGE)))
        head = self._records.head(channel_id)
        return {
            "channel_id": channel_id,
            "entries": entries,
            "head": None if head is None else {"seq": head["seq"], "hash": statement_hash(head)},
            "more": more,
        }
