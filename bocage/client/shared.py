"""Members of partner organisations in shared groups, as this device verifies them
(docs/protocol.md, 22.6).

A partner's members are checked with the same rules as our own (13.7, bocage/client/certs.py),
in a ``TrustView`` of the partner whose root is the one our own organisation's partnership
statement pins (bocage/client/partners.py), and only while that partnership is active in this
device's view: once it sees the end, the partner's members are nobody here and get no key.
``SharedView`` answers for our organisation and those partners at once, so the membership log's
replay, the recipients of a sender key and the sender of a message need nothing else.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bocage.client.certs import FOREVER, DeviceTrust, MemberTrust, TrustView, TrustWarning
from chalicelib.domain.membership_log import DEPARTURE_SKEW_SECONDS, GUEST, PARTNER


@dataclass(frozen=True)
class PartnerView:
    """One active partner as this device verifies it."""

    org_id: str
    name: str  # the partner's name as the server lists it: shown beside its members' names
    allow_tribes: bool  # our own statement lets its members into our tribes
    view: TrustView
    their_allow_tribes: bool = False  # the partner's statement lets our members into its tribes
    #: False once this device saw the end: the last listing it verified still shows who wrote the
    #: messages from before, but nobody of the partner gets a key, signs an entry or is added.
    active: bool = True
    #: The dates (s) of the ends of every partnership with this organisation this device saw
    #: (22.7): the log's entries from before the latest still verify, and a member in a channel
    #: is out from the first end after they joined.
    ends: tuple[int, ...] = ()

    def partnered_at(self, at: int) -> bool:
        """Whether its members count as the partner's for an entry dated ``at`` (22.7): while
        active, or up to the latest end (give or take the clocks' skew)."""
        return self.active or any(at <= end + DEPARTURE_SKEW_SECONDS for end in self.ends)


class SharedView(TrustView):
    """Our organisation's view, answering for the members and devices of active partners too."""

    def __init__(
        self,
        org_id: str,
        root: str,
        members: Iterable[Mapping[str, Any]],
        devices: Iterable[Mapping[str, Any]],
        *,
        verified: Mapping[str, str] | None = None,
        seen: Mapping[str, str] | None = None,
        revoked: Mapping[str, int] | None = None,
        removed: Mapping[str, int] | None = None,
        partners: Iterable[PartnerView] = (),
        follower: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            org_id, root, members, devices, verified=verified, seen=seen, revoked=revoked, removed=removed
        )
        self.partners = {p.org_id: p for p in partners}
        #: A follower's view (16.3): it pins its organisation's root only and has no partnership
        #: statement, so a partner's member in its tribe is someone it cannot verify.
        self.follower = follower
        self._clock = clock
        views = [self, *(p.view for p in self.partners.values())]
        #: Ids listed by more than one organisation (ours and a partner's, or two partners'): a
        #: server could otherwise pass a partner's member or device off as one of ours (or of
        #: another partner's). Nobody answers for them; a warning says why.
        self._clashing_members = _listed_twice((v.listed_members() for v in views), "member_id")
        self._clashing_devices = _listed_twice((v.listed_devices() for v in views), "device_id")
        self._clash = PartnerView("", "", False, TrustView("", root, [], []), active=False)
        #: Per partner, the empty, inactive view that answers for its members the server alone
        #: vouches for: a partner's member must chain to the root our statement pins, else a
        #: server could add anyone to a partner's listing and have them trusted as its member.
        self._unchained = {
            p.org_id: PartnerView(p.org_id, p.name, False, TrustView(p.org_id, root, [], []), active=False)
            for p in self.partners.values()
        }

    def active_partner(self, org_id: str) -> PartnerView | None:
        partner = self.partners.get(org_id)
        return partner if partner is not None and partner.active else None

    # -- which organisation answers -------------------------------------------------------------

    def partner_of_member(self, member_id: str) -> PartnerView | None:
        """The partner whose listing holds this member (None: ours, or nobody's; an empty,
        inactive view for an id listed twice)."""
        if member_id in self._clashing_members:
            return self._clash
        if member_id in self._members:
            return None
        partner = next((p for p in self.partners.values() if member_id in p.view._members), None)
        if partner is not None and partner.view.vouched_only(member_id):
            return self._unchained[partner.org_id]
        return partner

    def _is_unchained(self, partner: PartnerView | None) -> bool:
        return partner is not None and partner is self._unchained.get(partner.org_id)

    def partner_of_device(self, device_id: str) -> PartnerView | None:
        """The partner whose listing holds this device, which must be of a member of that same
        listing (None: ours, or nobody's; the empty view for a device listed twice, or of
        a member another organisation lists)."""
        if device_id in self._clashing_devices:
            return self._clash
        owner = next((p for p in self.partners.values() if device_id in p.view._devices), None)
        listing = self._devices if owner is None else owner.view._devices
        if device_id not in listing:
            return None
        holder = self.partner_of_member(str(listing[device_id]["member_id"]))
        if owner is not None and holder is self._unchained[owner.org_id]:
            return holder
        return owner if holder is owner else self._clash

    # -- members --------------------------------------------------------------------------------

    def member(self, member_id: str) -> MemberTrust | None:
        partner = self.partner_of_member(member_id)
        if partner is None:
            return super().member(member_id)
        found = partner.view.member(member_id)
        if found is None:
            return None
        return dataclasses.replace(found, display_name=f"{found.display_name} ({partner.name})")

    def certified(self, member_id: str) -> bool:
        partner = self.partner_of_member(member_id)
        return super().certified(member_id) if partner is None else partner.view.certified(member_id)

    def vouched_only(self, member_id: str) -> bool:
        partner = self.partner_of_member(member_id)
        return super().vouched_only(member_id) if partner is None else partner.view.vouched_only(member_id)

    def identity_key(self, member_id: str) -> str | None:
        partner = self.partner_of_member(member_id)
        return super().identity_key(member_id) if partner is None else partner.view.identity_key(member_id)

    def role(self, member_id: str, at: int = FOREVER) -> str | None:
        partner = self.partner_of_member(member_id)
        return super().role(member_id, at) if partner is None else partner.view.role(member_id, at)

    def removed_at(self, member_id: str) -> int | None:
        partner = self.partner_of_member(member_id)
        return super().removed_at(member_id) if partner is None else partner.view.removed_at(member_id)

    def why_not_member(self, member_id: str) -> TrustWarning | None:
        partner = self.partner_of_member(member_id)
        if self.unplaced(member_id):
            return TrustWarning("uncertified_member", f"{member_id}: {_FOLLOWERS_VERIFY_OWN}", member_id)
        if partner is None:
            return super().why_not_member(member_id)
        if partner is self._clash:
            return TrustWarning(
                "uncertified_member", f"{member_id} is listed by more than one organisation", member_id
            )
        if self._is_unchained(partner):
            return _unchained(member_id, partner)
        if not partner.active:
            return _ended(member_id, partner)
        return partner.view.why_not_member(member_id)

    # -- devices --------------------------------------------------------------------------------

    def device(self, device_id: str) -> DeviceTrust | None:
        partner = self.partner_of_device(device_id)
        return super().device(device_id) if partner is None else partner.view.device(device_id)

    def why_not(self, device_id: str) -> TrustWarning | None:
        partner = self.partner_of_device(device_id)
        if self.follower and device_id not in self._devices:
            return TrustWarning(
                "uncertified_device", f"{device_id}: {_FOLLOWERS_VERIFY_OWN}", None, device_id
            )
        if partner is self._clash:
            message = f"{device_id} is listed by more than one organisation, or for another's member"
            return TrustWarning("uncertified_device", message, None, device_id)
        if partner is not None and self._is_unchained(partner):
            member_id = str(self.partners[partner.org_id].view._devices[device_id]["member_id"])
            return dataclasses.replace(_unchained(member_id, partner), device_id=device_id)
        return super().why_not(device_id) if partner is None else partner.view.why_not(device_id)

    def usable(self, device_id: str, at: int = FOREVER) -> DeviceTrust | None:
        partner = self.partner_of_device(device_id)
        if partner is None:
            return super().usable(device_id, at)
        return partner.view.usable(device_id, at) if partner.active else None

    def revoked_at(self, device_id: str) -> int | None:
        partner = self.partner_of_device(device_id)
        return super().revoked_at(device_id) if partner is None else partner.view.revoked_at(device_id)

    def device_ids(self) -> list[str]:
        return super().device_ids() + [d for p in self.partners.values() for d in p.view.device_ids()]

    # -- the membership log (chalicelib.domain.membership_log) -----------------------------------

    def signer(self, device_id: str, at: int) -> tuple[str, str] | None:
        partner = self.partner_of_device(device_id)
        if partner is None:
            return super().signer(device_id, at)
        return partner.view.signer(device_id, at) if partner.partnered_at(at) else None

    def org_role(self, member_id: str, at: int) -> str | None:
        """A partner's member is a ``partner`` here, whatever their role at home: never a
        manager nor an author of our channels."""
        partner = self.partner_of_member(member_id)
        if self.unplaced(member_id):
            return PARTNER  # never a manager nor an author, whoever they are
        if partner is None:
            return super().org_role(member_id, at)
        known = partner.partnered_at(at) and partner.view.org_role(member_id, at) is not None
        return PARTNER if known else None

    def may_join(self, member_id: str, at: int) -> bool:
        """A partner's member: while partners at ``at`` (22.7), never a partner's guest (21)."""
        partner = self.partner_of_member(member_id)
        if self.unplaced(member_id):
            return True  # the host's manager signed the add; the server checked the partnership
        if partner is None:
            return super().may_join(member_id, at)
        return (
            partner.partnered_at(at)
            and partner.view.may_join(member_id, at)
            and partner.view.org_role(member_id, at) != GUEST
        )

    def tribes_open_to(self, member_id: str) -> bool:
        """Undated: whether partners at the entry's date is ``may_join``'s to say."""
        partner = self.partner_of_member(member_id)
        return (
            self.unplaced(member_id)
            or partner is None
            or (partner.allow_tribes and (partner.active or bool(partner.ends)))
        )

    def unplaced(self, member_id: str) -> bool:
        """In a follower's view, anyone its organisation's listing does not name (a partner's
        member, 22.6): in the tribe's state as a member it cannot verify, shown and sealed nothing.
        Never one whose identity key this device keeps: a server leaving our own member out of
        the listing makes them unverified (``why_not_member``), not someone of a partner."""
        return self.follower and member_id not in self._members and not self.kept_identity(member_id)

    def kept_identity(self, member_id: str) -> bool:
        """Whether this device verified or saw this member's identity key before."""
        return member_id in self._verified or member_id in self._seen

    def now(self) -> int:
        return int(self._clock())

    def ends_of(self, member_id: str) -> tuple[int, ...]:
        """The partnership ends that cut this member out of channels (22.7): none for ours."""
        partner = self.partner_of_member(member_id)
        return () if partner is None else partner.ends


class HostAuthority:
    """The membership log's view (chalicelib.domain.membership_log.Authority) for a channel of
    whichever organisation its entries name: ours (our members are members, an active partner's
    are partners) or an active partner's (its members are members, ours are partners, let into
    its tribes only if its statement says so). A channel of anyone else verifies nobody."""

    def __init__(
        self,
        host: Mapping[str, str],
        view: Callable[[], SharedView],
        learn: Callable[[str], None] | None = None,
    ) -> None:
        self._host = host  # filled with the channel's org_id once its entries are fetched
        self._view = view
        self._learn = learn  # asked once about a host this device knows no partnership with

    def _sides(self) -> tuple[SharedView, PartnerView | None, bool]:
        """(the view, the hosting partner if not us, whether the channel is ours)."""
        view = self._view()
        host = self._host.get("org_id", view.org_id)
        if host == view.org_id:
            return view, None, True
        if view.active_partner(host) is None and self._learn is not None:
            learn, self._learn = self._learn, None
            learn(host)
            view = self._view()
        return view, view.active_partner(host), False

    def signer(self, device_id: str, at: int) -> tuple[str, str] | None:
        view, partner, ours = self._sides()
        return view.signer(device_id, at) if ours or partner is not None else None

    def _side_of(self, member_id: str) -> tuple[SharedView, PartnerView | None, str | None]:
        """(the view, the hosting partner, whose member this is here): ``ours`` in a channel we
        host; in an active partner's channel, ``host`` for its own member and ``us`` for ours;
        None for anyone else (a third organisation's, or a host with no active partnership)."""
        view, partner, ours = self._sides()
        if ours:
            return view, None, "ours"
        if partner is None:
            return view, None, None
        owner = view.partner_of_member(member_id)
        if owner is partner:
            return view, partner, "host"
        if owner is None and member_id in view._members:
            return view, partner, "us"
        return view, partner, None

    def org_role(self, member_id: str, at: int) -> str | None:
        view, partner, side = self._side_of(member_id)
        if side == "ours":
            return view.org_role(member_id, at)
        if side == "host" and partner is not None:
            return partner.view.org_role(member_id, at)
        if side == "us":
            return PARTNER if view.org_role(member_id, at) is not None else None
        return None

    def may_join(self, member_id: str, at: int) -> bool:
        """On a side this channel admits (as ``org_role``), and not removed by ``at``: the host's
        own members by its rules (its guests included); ours never as a guest (21)."""
        view, partner, side = self._side_of(member_id)
        if side == "ours":
            return view.may_join(member_id, at)
        if side == "host" and partner is not None:
            return partner.view.may_join(member_id, at)
        if side == "us":
            return view.org_role(member_id, at) != GUEST and view.may_join(member_id, at)
        return False

    def tribes_open_to(self, member_id: str) -> bool:
        view, partner, ours = self._sides()
        if ours:
            return view.tribes_open_to(member_id)
        if partner is None:
            return False
        return view.partner_of_member(member_id) is partner or partner.their_allow_tribes

    def unplaced(self, member_id: str) -> bool:
        view, _, ours = self._sides()
        return ours and view.unplaced(member_id)

    def now(self) -> int:
        return self._view().now()


_FOLLOWERS_VERIFY_OWN = (
    "not listed as a member of this organisation: a follower verifies the organisation's own "
    "members only, never a partner organisation's (its root is pinned by no statement a follower "
    "holds, 16.3), so nothing of theirs is shown or sealed to them here"
)


def _unchained(member_id: str, partner: PartnerView) -> TrustWarning:
    message = (
        f"{member_id} is vouched for by the server only, not certified under the root of "
        f"{partner.name} this organisation pinned: not trusted as its member"
    )
    return TrustWarning("server_vouched", message, member_id)


def _ended(member_id: str, partner: PartnerView) -> TrustWarning:
    return TrustWarning(
        "uncertified_member",
        f"{member_id} is a member of {partner.name}, whose partnership with your organisation ended",
        member_id,
    )


def _listed_twice(listings: Iterable[Iterable[Mapping[str, Any]]], key: str) -> frozenset[str]:
    """The ids (``key`` of each item) found in more than one listing."""
    seen: set[str] = set()
    twice: set[str] = set()
    for listing in listings:
        ids = {str(item[key]) for item in listing}
        twice |= seen & ids
        seen |= ids
    return frozenset(twice)


def kept_ends(kept: Mapping[str, Any], now: int) -> dict[str, int]:
    """Every invitation (ticket key) of this partner whose end this device saw, with the end's
    date (22.7): shown again without its end, even after a newer partnership, it is a rollback.
    A profile kept before ends had dates has their keys only: dated now, as first seen."""
    ends = {str(k): int(v) for k, v in dict(kept.get("ends") or {}).items()}
    undated = {str(k) for k in kept.get("ended_keys", [])}
    if kept.get("ended"):
        undated.add(str(kept.get("ticket_key")))
    return {**dict.fromkeys(undated - ends.keys(), now), **ends}
