"""A channel's signed membership log (docs/protocol.md, section 14): chaining and replay rules.

Entries are ``bocage/membership/v2`` statements numbered from 0 and chained by hash. Replaying
them gives the channel's kind and its members' channel roles. Who may sign what depends on the
organisation (a device's member, that member's role at a time), which the caller supplies as an
``Authority``: the server answers from its records, the Python client from the certificates it
verified (bocage/client/certs.py). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.domain.direct import is_direct_pair
from chalicelib.domain.envelope import AUDIENCE_KINDS
from chalicelib.domain.statements import (
    MEMBERSHIP,
    STATEMENT_CLOCK_SKEW,
    StatementError,
    check_shape,
    statement_hash,
    verify_checked,
)

ADMIN_ROLES = ("admin", "owner")
GUEST = "guest"
#: What an ``Authority`` answers as the organisation role of a member of an active partner
#: organisation (section 22.6): never a manager, never an author, in a tribe only if allowed.
PARTNER = "partner"
NEVER_AUTHORS = (GUEST, PARTNER)
DIRECT = "direct"
#: How far after a member's departure (its entry's ``issued_at``) a message they signed may be
#: dated and still be theirs to send: the two devices' clocks may differ (section 14.2).
DEPARTURE_SKEW_SECONDS = STATEMENT_CLOCK_SKEW
#: How far before the latest entry it follows an entry may be dated. Each entry is signed at the
#: request that appends it, whose token the server takes only within its own clock's window
#: (section 4), so honest entries never go further back; a removed signer's backdated entry,
#: aimed at a channel made after the removal, does (section 14, "Dates").
ENTRY_ORDER_SKEW_SECONDS = 600


class LogError(ValueError):
    """An entry that does not extend the log: unsigned, unchained or unauthorised."""


class Authority(Protocol):
    """What replay needs to know about the organisation."""

    def signer(self, device_id: str, at: int) -> tuple[str, str] | None:
        """(member id, sign public key) of a certified device that could sign at ``at``, or None."""

    def org_role(self, member_id: str, at: int) -> str | None:
        """The member's organisation role at ``at`` (None if not a certified member)."""

    def may_join(self, member_id: str, at: int) -> bool:
        """Whether the member could be added at ``at`` (certified, or verified by the viewer; not
        removed by then): a replay judges an entry by its date, so a member's later removal from
        the organisation does not stop the log at their ``add`` (section 14)."""

    def tribes_open_to(self, member_id: str) -> bool:
        """Whether the member may be in a tribe: a member of the organisation, or of a partner
        whose partnership statement by the organisation says ``allow_tribes`` (22.6)."""

    def unplaced(self, member_id: str) -> bool:
        """Whether this view holds the member as someone it cannot verify, though a manager may
        add them: a follower's view of a partner's member in its tribe (16.3). Such a member's
        own ``leave`` is signed by a device the view cannot place either."""

    def now(self) -> int:
        """The viewer's clock (s): an entry no signature vouches for is dated no later than it
        (give or take ``STATEMENT_CLOCK_SKEW``)."""


@dataclass(frozen=True)
class LogState:
    """The state after replaying entries 0..seq: what ``head`` hashes and who is in.

    ``org_id`` is the host, named by the creation: every later entry must name it too, so an
    entry signed by a partner's member (22.6) never makes the channel look like the partner's.
    ``former`` holds who left (``remove`` or ``leave``) and not came back, with the departure's
    ``issued_at``: their messages from before it are still theirs (section 14.2). Likewise
    ``authored_until`` holds who stopped being an author (made a member, or left as an author),
    with when: in a tribe, where only authors post, their posts from before it are still theirs.
    ``created_at`` and ``issued_at`` are the creation's date and the latest entry date seen (0 in a
    state kept before they were kept): no later entry, nor a follower's ticket, may be dated much
    before them. ``joined`` holds when each member was last added (the creation for its creator):
    a partner's member stops being one at the first end of the partnership after it (22.7).
    ``former_known`` is False while ``former`` could not be replayed from entry 0 (or was kept
    without ``authored_until`` or ``joined``): the state is then kept without them, so the next
    check tries again. ``unplaced`` holds the members whose ``add`` this viewer replayed as
    someone it cannot verify (16.3): only their own unsigned ``leave`` may take them out."""

    channel_id: str
    kind: str
    members: Mapping[str, str] = field(default_factory=dict)  # member id -> channel role
    seq: int = 0
    head: str = ""
    org_id: str = ""
    former: Mapping[str, int] = field(default_factory=dict)  # member id -> departure's issued_at (s)
    authored_until: Mapping[str, int] = field(default_factory=dict)  # member id -> issued_at (s)
    created_at: int = 0
    issued_at: int = 0
    joined: Mapping[str, int] = field(default_factory=dict)  # member id -> their add's issued_at (s)
    former_known: bool = True
    unplaced: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        kept = {
            "channel_id": self.channel_id,
            "kind": self.kind,
            "members": dict(self.members),
            "seq": self.seq,
            "head": self.head,
            "org_id": self.org_id,
            "former": dict(self.former),
            "authored_until": dict(self.authored_until),
            "created_at": self.created_at,
            "issued_at": self.issued_at,
            "joined": dict(self.joined),
        }
        if self.unplaced:
            kept["unplaced"] = sorted(self.unplaced)
        if not self.former_known:
            del kept["former"], kept["authored_until"], kept["joined"]
        return kept

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogState:
        return cls(
            channel_id=str(data["channel_id"]),
            kind=str(data["kind"]),
            members={str(k): str(v) for k, v in dict(data["members"]).items()},
            seq=int(data["seq"]),
            head=str(data["head"]),
            org_id=str(data.get("org_id", "")),
            former={str(k): int(v) for k, v in dict(data.get("former") or {}).items()},
            authored_until={str(k): int(v) for k, v in dict(data.get("authored_until") or {}).items()},
            created_at=int(data.get("created_at") or 0),
            issued_at=int(data.get("issued_at") or 0),
            joined={str(k): int(v) for k, v in dict(data.get("joined") or {}).items()},
            former_known="former" in data and "authored_until" in data and "joined" in data,
            unplaced=frozenset(str(m) for m in data.get("unplaced") or ()),  # kept before: none
        )

    def refuses_sender(self, member_id: str, sent_at_ms: object, kind: str) -> str | None:
        """Why a channel message of ``kind`` from ``member_id`` signed as sent at ``sent_at_ms``
        is not theirs to send here, or None (section 14.2): a member, or one who left after
        sending it; in a tribe, only authors send anything but reactions and votes (the server's
        rule), or one who was an author when they sent it."""
        role = self.members.get(member_id)
        if role is None:
            left = self.former.get(member_id)
            if left is None:
                return "not a member of this channel"
            if not _sent_by(sent_at_ms, left):
                return "sent after leaving the channel"
        if self.kind == "tribe" and role != "author" and kind not in AUDIENCE_KINDS:
            until = self.authored_until.get(member_id)
            if until is None or not _sent_by(sent_at_ms, until):
                return "not an author of this tribe"
        return None

    def cut_at_ends(self, ends_of: Callable[[str], Iterable[int]]) -> LogState:
        """This state as a device judges senders and recipients with (section 22.7): a member of a
        partner organisation whose partnership with the device's own ended after they joined is
        no longer in, from the first such end (``ends_of``: the end dates, in seconds, of the
        partnerships with that member's organisation; none for our own members), as if they had
        left then. The log itself never changes: only ever extend the uncut state."""
        members, former, authored = dict(self.members), dict(self.former), dict(self.authored_until)
        for member_id, role in self.members.items():
            since = self.joined.get(member_id, self.created_at) - DEPARTURE_SKEW_SECONDS
            end = min((e for e in ends_of(member_id) if e >= since), default=None)
            if end is None:
                continue
            del members[member_id]
            former[member_id] = end
            if role == "author":
                authored[member_id] = end
        if members == self.members:
            return self
        return dataclasses.replace(self, members=members, former=former, authored_until=authored)


def refuses_ended_device(sent_at_ms: object, revoked_at: int | None, removed_at: int | None) -> str | None:
    """Why a message signed at ``sent_at_ms`` counts for nobody (section 13.7), or None: it is
    dated later than its device's revocation or its member's removal from the organisation, give
    or take the clocks' skew. A revoked device's key still verifies, so its signed date is all
    there is to go on: this stops what a device (or a thief holding it) dates honestly after the
    revocation, not a thief who backdates (13.7)."""
    if revoked_at is not None and not _sent_by(sent_at_ms, revoked_at):
        return "sent after its device was revoked"
    if removed_at is not None and not _sent_by(sent_at_ms, removed_at):
        return "sent after its member was removed from the organisation"
    return None


def _sent_by(sent_at_ms: object, issued_at: int) -> bool:
    """Whether a message's ``sent_at`` (ms) is at or before an entry's ``issued_at`` (s), give or
    take the two devices' clocks' skew."""
    late = (issued_at + DEPARTURE_SKEW_SECONDS) * 1000
    return not isinstance(sent_at_ms, bool) and isinstance(sent_at_ms, int) and sent_at_ms <= late


def _signer(entry: Mapping[str, Any], authority: Authority) -> str:
    """The member whose certified device signed the entry; LogError if none did."""
    found = authority.signer(str(entry["by_device"]), int(entry["issued_at"]))
    if found is None:
        raise LogError(f"entry {entry['seq']}: {entry['by_device']} is not a certified device at that time")
    member_id, public_key = found
    try:
        verify_checked(dict(entry), public_key)
    except StatementError as exc:
        raise LogError(f"entry {entry['seq']}: {exc}") from exc
    return member_id


def create(entry: Mapping[str, Any], authority: Authority, channel_id: str | None = None) -> LogState:
    """The state after entry 0, which must create the channel; a client names the channel it
    asked for, so a server cannot pass another channel's log off as this one's."""
    checked = _shape(entry)
    if channel_id is not None and checked["channel_id"] != channel_id:
        raise LogError(f"entry 0 is for another channel than {channel_id}")
    if checked["seq"] != 0 or checked["prev"] is not None or checked["op"] != "create":
        raise LogError("entry 0 must be the channel's creation (seq 0, prev null, op create)")
    if checked["role"] != "author" or checked["kind"] is None:
        raise LogError("the creation names the kind and makes its creator an author")
    signer = _signer(checked, authority)
    if signer != checked["member_id"]:
        raise LogError("a channel's creator signs its creation")
    if authority.org_role(signer, checked["issued_at"]) == GUEST:
        raise LogError("a guest creates no channel (section 21)")
    if authority.org_role(signer, checked["issued_at"]) == PARTNER:
        raise LogError("only the organisation's own members create its channels (section 22.6)")
    if checked["kind"] == "tribe" and authority.org_role(signer, checked["issued_at"]) not in ADMIN_ROLES:
        raise LogError("only the organisation's admins create tribes")
    return created_state(checked, signer)


def created_state(entry: Mapping[str, Any], creator: str) -> LogState:
    """The state after a creation already checked (``create``), or signed by this very device."""
    at = int(entry["issued_at"])
    return LogState(
        channel_id=str(entry["channel_id"]),
        kind=str(entry["kind"]),
        members={creator: "author"},
        seq=0,
        head=statement_hash(dict(entry)),
        org_id=str(entry["org_id"]),
        created_at=at,
        issued_at=at,
        joined={creator: at},
    )


def extend(state: LogState, entry: Mapping[str, Any], authority: Authority) -> LogState:
    """The state after one more entry; LogError (the state unchanged) if it does not extend it."""
    checked = _shape(entry)
    if checked["channel_id"] != state.channel_id:
        raise LogError(f"entry {checked['seq']} is for another channel")
    if checked["seq"] != state.seq + 1 or checked["prev"] != state.head:
        raise LogError(f"entry {checked['seq']} does not follow entry {state.seq}")
    if checked["kind"] is not None:
        raise LogError(f"entry {checked['seq']}: only the creation names a kind")
    if checked["org_id"] != state.org_id:
        raise LogError(f"entry {checked['seq']} names another organisation than the channel's host")
    if int(checked["issued_at"]) < state.issued_at - ENTRY_ORDER_SKEW_SECONDS:
        raise LogError(f"entry {checked['seq']} is dated before the entries it follows")
    members = dict(state.members)
    if _unplaced_leave(checked, state, authority):
        del members[checked["member_id"]]
        return _after(state, checked, members)
    signer = _signer(checked, authority)
    if state.kind == DIRECT:
        _check_direct(checked, signer, state)
    _apply(checked, signer, members, state, authority)
    unplaced = checked["op"] == "add" and authority.unplaced(str(checked["member_id"]))
    return _after(state, checked, members, unplaced)


def _unplaced_leave(entry: Mapping[str, Any], state: LogState, authority: Authority) -> bool:
    """A member this view cannot verify leaves (16.3: a follower's view of a partner's member):
    the view cannot check the signature, but the entry takes out only someone it never trusted
    (never a sender shown, sealed nothing), so the entries after it still verify. Only one whose
    ``add`` this view replayed as such (never an author, nor anyone the view now verifies: a
    server leaving a verified author out of a listing forges nothing), dated no earlier than the
    entries it follows nor later than this device's clock: a forged one is then no worse than a
    withheld log, and the managers' later entries do not chain to it."""
    target, at = entry["member_id"], int(entry["issued_at"])
    return (
        state.kind == "tribe"
        and entry["op"] == "leave"
        and entry["role"] is None
        and target in state.unplaced
        and state.members.get(target) not in (None, "author")
        and state.issued_at <= at <= authority.now() + STATEMENT_CLOCK_SKEW
        and authority.unplaced(target)
        and authority.signer(str(entry["by_device"]), at) is None
    )


def _after(
    state: LogState, entry: dict[str, Any], members: dict[str, str], unplaced: bool = False
) -> LogState:
    """The state once ``entry`` (checked) made ``members``: who left, stopped authoring, joined,
    and (``unplaced``, an ``add`` of someone this view cannot verify) who is held unverified."""
    op, target, at = entry["op"], entry["member_id"], int(entry["issued_at"])
    held = {m for m in state.unplaced if m in members}
    if unplaced:
        held.add(target)
    former = {m: left for m, left in state.former.items() if m not in members}
    if op in ("remove", "leave"):
        former[target] = at
    authored = dict(state.authored_until)
    if members.get(target) == "author":
        authored.pop(target, None)
    elif state.members.get(target) == "author":
        authored[target] = at
    joined = {m: since for m, since in state.joined.items() if m in members}
    if op == "add":
        joined[target] = at
    return dataclasses.replace(
        state,
        members=members,
        seq=entry["seq"],
        head=statement_hash(entry),
        former=former,
        authored_until=authored,
        issued_at=max(state.issued_at, at),
        joined=joined,
        unplaced=frozenset(held),
    )


def _check_direct(entry: dict[str, Any], signer: str, state: LogState) -> None:
    """A direct conversation's log is its creation and the addition, by its creator, of the one
    other member its id names (section 14.1): nobody joins, leaves or changes role after that."""
    creator = next(iter(state.members), None)
    if not (
        entry["op"] == "add"
        and entry["seq"] == 1
        and entry["role"] == "author"
        and signer == creator
        and is_direct_pair(state.channel_id, str(entry["org_id"]), signer, str(entry["member_id"]))
    ):
        raise LogError(f"entry {entry['seq']}: a direct conversation keeps its two members and no other")


def _apply(
    entry: dict[str, Any], signer: str, members: dict[str, str], state: LogState, authority: Authority
) -> None:
    op, target, role = entry["op"], entry["member_id"], entry["role"]
    if op == "leave":
        if signer != target or target not in members or role is not None:
            raise LogError(f"entry {entry['seq']}: only a member in the channel leaves it, by themselves")
        del members[target]
        return
    manager = members.get(signer) == "author" or authority.org_role(signer, entry["issued_at"]) in ADMIN_ROLES
    if not manager:
        raise LogError(f"entry {entry['seq']}: {signer} may not manage this channel")
    _check_not_guest_author(entry, state, authority)
    if op == "add":
        _check_may_join(entry, members, state, authority)
        members[target] = role
    elif op == "role":
        if target not in members or role is None:
            raise LogError(f"entry {entry['seq']}: {target} is not in the channel")
        members[target] = role
    elif op == "remove":
        if target not in members or role is not None:
            raise LogError(f"entry {entry['seq']}: {target} is not in the channel")
        del members[target]
    else:
        raise LogError(f"entry {entry['seq']}: a channel is created once")


def _check_may_join(
    entry: dict[str, Any], members: Mapping[str, str], state: LogState, authority: Authority
) -> None:
    """An ``add`` names someone not in, certified and not removed from the organisation by the
    entry's date (give or take the clocks' skew), and, for a tribe, let into tribes (22.6)."""
    target = entry["member_id"]
    at = int(entry["issued_at"]) - DEPARTURE_SKEW_SECONDS  # the adder's clock may be ahead of the remover's
    if target in members or entry["role"] is None or not authority.may_join(target, at):
        raise LogError(f"entry {entry['seq']}: {target} cannot be added")
    if state.kind == "tribe" and not authority.tribes_open_to(target):
        raise LogError(f"entry {entry['seq']}: the organisation lets no partner's member into its tribes")


def _check_not_guest_author(entry: dict[str, Any], state: LogState, authority: Authority) -> None:
    """A guest, or a partner's member, is never a channel's author (sections 21, 22.6): they add
    nobody and post for no tribe."""
    if entry["role"] == "author" and state.kind != DIRECT:
        role = authority.org_role(entry["member_id"], entry["issued_at"])
        if role in NEVER_AUTHORS:
            why = "a guest is never a channel's author (section 21)"
            if role == PARTNER:
                why = "a partner's member is never a channel's author (section 22.6)"
            raise LogError(f"entry {entry['seq']}: {why}")


def _shape(entry: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return check_shape(entry, MEMBERSHIP)
    except StatementError as exc:
        raise LogError(str(exc)) from exc


def replay(
    entries: Iterable[Mapping[str, Any]], authority: Authority, channel_id: str | None = None
) -> tuple[LogState | None, LogError | None]:
    """Replay a log from entry 0: the last valid state and the error that stopped it, if any."""
    state: LogState | None = None
    for entry in entries:
        try:
            state = create(entry, authority, channel_id) if state is None else extend(state, entry, authority)
        except LogError as exc:
            return state, exc
    return state, None
