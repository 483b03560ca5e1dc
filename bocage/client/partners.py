"""Partner organisations as this device verifies them (docs/protocol.md, section 22).

A partner's root is pinned only through a ``bocage/partnership/v2`` statement signed by an admin
device of this device's own organisation (checked up to its pinned root, 13.7). The inviting
side's admin device signs its statement only after checking that the accepter's root came signed
with the invitation's ticket key, which never reached the server. An end, once seen, is kept in
the profile: a server that later hides it is caught (``partnership_rollback``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bocage.client import issuing
from bocage.client.api import ApiError
from bocage.client.certs import FOREVER, TrustView, TrustWarning
from bocage.client.shared import kept_ends
from bocage.client.trust import TrustError
from chalicelib.domain.activation_link import with_fragment_params
from chalicelib.domain.partners import (
    ContactCard,
    PartnerStatus,
    card_url,
    end_shape,
    parse_card,
    parse_partner,
    partner_code,
    verify_acceptance,
    verify_end,
    verify_partner_ticket,
    verify_partnership,
)
from chalicelib.domain.statements import (
    PARTNERSHIP,
    STATEMENT_CLOCK_SKEW,
    StatementError,
    check_shape,
    fingerprint,
    public_key_of,
)

if TYPE_CHECKING:
    from bocage.client.trust import Trust

ADMIN_ROLES = ("admin", "owner")
UNVERIFIED_BEGIN = "this device never verified our statement of this partnership"
CARD_MISMATCH = "this card's key does not match what the server lists: ask them for their card again"


class PartnerRefused(TrustError):
    """Something this device will not sign or trust about a partnership."""


class Partners:
    def __init__(self, trust: Trust, server: str) -> None:
        self.trust = trust
        self.server = server.rstrip("/")

    # -- the inviting side ---------------------------------------------------------------------

    def invite(self, *, allow_tribes: bool = False) -> dict[str, Any]:
        """A partner invitation; its ticket's secret and our root ride only in the code and link."""
        trust = self.trust
        ticket = issuing.partner_ticket(
            trust.keys.signing, trust.keys.device_id, trust.org_id, trust.now(), allow_tribes=allow_tribes
        )
        answer = dict(trust.client.invite_partner(ticket.statement))
        seed, root = ticket.fragment_seed, trust.state.root
        return {
            "invitation": answer["code"],
            "org_id": answer["org_id"],
            "expires_at": answer["expires_at"],
            "allow_tribes": answer["allow_tribes"],
            "code": partner_code(str(answer["code"]), trust.org_id, seed, root),
            "url": with_fragment_params(str(answer["url"]), ticket=seed, root=root),
        }

    # -- the accepting side --------------------------------------------------------------------

    def accept(self, code_or_url: str, *, allow_tribes: bool = False) -> dict[str, Any]:
        """Accept another organisation's invitation: pin its root (from the code) in our statement."""
        trust = self.trust
        try:
            target = parse_partner(code_or_url)
        except ValueError as exc:
            raise PartnerRefused(str(exc)) from exc
        if target.org == trust.org_id:
            raise PartnerRefused("this invitation comes from your own organisation")
        if target.server is not None and target.server != self.server:
            raise PartnerRefused(
                f"this invitation is for another deployment ({target.server}): partners share one"
            )
        now, device_id = trust.now(), trust.keys.device_id
        ticket_key = public_key_of(target.ticket_seed)
        acceptance = issuing.partner_acceptance(target, trust.org_id, trust.state.root, device_id, now)
        statement = issuing.partnership(
            trust.keys.signing,
            device_id,
            trust.org_id,
            target.org,
            target.root,
            ticket_key,
            now,
            allow_tribes=allow_tribes,
        )
        answer = dict(trust.client.accept_partner(target.code, acceptance, statement))
        if answer.get("ours") != statement:
            raise PartnerRefused("the server answered with another partnership statement than ours")
        view = trust.own_view(refresh=True)
        return self._checked(answer, view)

    # -- both sides ----------------------------------------------------------------------------

    def listing(self, *, confirm: bool = True) -> list[dict[str, Any]]:
        """Every partnership as this device verifies it; as the inviter's admin, countersign the
        acceptances whose root checks out (``confirm``)."""
        trust = self.trust
        view = trust.own_view(refresh=True)
        found = []
        with trust.one_listing_per_partner():
            for entry in trust.client.partners():
                if confirm and self._awaits_us(entry, view):
                    entry = self._countersign(entry, view) or entry
                found.append(self._checked(entry, view))
        trust.save()
        return found

    def end(self, partner_org_id: str) -> dict[str, Any]:
        """End the partnership with ``partner_org_id``, naming its invitation (22.7): only one this
        device verified, never a key the listing alone gives (a server could get an end signed
        for an invitation not yet accepted and serve it later as that partnership's)."""
        trust = self.trust
        listed = next((e for e in trust.client.partners() if e.get("partner_org_id") == partner_org_id), None)
        if listed is None:
            raise PartnerRefused(f"no partnership with {partner_org_id}")
        statement = issuing.partnership_end(
            trust.keys.signing,
            trust.keys.device_id,
            trust.org_id,
            partner_org_id,
            self._verified_key(listed, partner_org_id, trust.own_view(refresh=True)),
            trust.now(),
        )
        answer = dict(trust.client.end_partner(partner_org_id, statement))
        checked = self._checked(answer, trust.own_view(refresh=True))
        trust.save()
        return checked

    def _verified_key(self, entry: dict[str, Any], partner: str, view: TrustView) -> str:
        """The entry's ticket key if this device kept it for a pinned partnership or the entry
        shows it: our statement naming it, or our admin's ticket with an acceptance of its key."""
        key = _ticket_key_of(entry)
        kept = self.trust.state.partners.get(partner, {})
        if key and kept.get("root") and kept.get("ticket_key") == key:
            return key
        try:
            self._vouch(entry, partner, key, view)
        except (StatementError, PartnerRefused) as exc:
            raise PartnerRefused(
                f"not ending the partnership with {partner}: its invitation does not verify ({exc})"
            ) from exc
        return key

    def _vouch(self, entry: dict[str, Any], partner: str, key: str, view: TrustView) -> None:
        """Raise unless the entry's invitation verifies: through our statement, or (the inviter's
        pending case) our admin's ticket and an acceptance signed with its key."""
        if entry.get("ours") is not None:
            self._pinned_by_us(entry, partner, key, view)
        elif entry.get("side") == "inviter":
            verify_acceptance(entry.get("acceptance"), self._our_ticket(entry.get("ticket"), view), partner)
        else:
            raise PartnerRefused("your organisation has not signed this partnership")

    def pinned_root(self, partner_org_id: str) -> str | None:
        """The partner's root this device pinned through its own organisation's statement, while
        the partnership is active in its view (None otherwise)."""
        kept = self.trust.state.partners.get(partner_org_id)
        return None if kept is None or kept.get("ended") or not kept.get("active") else kept.get("root")

    # -- contact cards (22.6) --------------------------------------------------------------------

    def card(self, app_url: str | None = None) -> dict[str, Any]:
        """This member's contact card for partners: the link a partner's group manager adds them
        with, naming the fingerprint of the identity key our own organisation certified."""
        trust = self.trust
        view = trust.own_view(refresh=True)
        me = view.member(trust.member_id)
        if me is None:
            raise PartnerRefused("this device does not see its own member certified yet: try again later")
        card = ContactCard(trust.org_id, trust.member_id, me.display_name, fingerprint(me.identity_key))
        return {
            "url": card_url(app_url or f"{self.server}/app", card),
            "member_id": card.member_id,
            "org_id": card.org_id,
            "name": card.name,
            "fingerprint": card.fingerprint,
        }

    def check_card(self, text: str) -> dict[str, Any]:
        """The partner's member a contact card names, once this device checked it: a member of an
        active partner, certified up to the root our statement pins, whose identity key is the one
        on the card (a server listing another key, or nobody, gets PartnerRefused)."""
        try:
            card = parse_card(text)
        except ValueError as exc:
            raise PartnerRefused(str(exc)) from exc
        trust = self.trust
        if card.org_id == trust.org_id:
            raise PartnerRefused("this card is of your own organisation: add the member from its directory")
        root = self.pinned_root(card.org_id)
        if root is None:
            trust.learn_partners()
            root = self.pinned_root(card.org_id)
        if root is None:
            raise PartnerRefused("this card is of an organisation that is not an active partner of yours")
        members, devices = trust.client.partner_member(card.org_id, card.member_id)
        view = TrustView(card.org_id, root, members, devices)
        listed = view.identity_key(card.member_id)
        if listed is None or fingerprint(listed) != card.fingerprint:
            raise PartnerRefused(CARD_MISMATCH)
        member = view.member(card.member_id)
        if member is None or not view.certified(card.member_id):
            raise PartnerRefused("this card's member is not certified up to their organisation's pinned root")
        if not view.may_join(card.member_id, FOREVER) or view.role(card.member_id) == "guest":
            raise PartnerRefused("this card's member may not join your groups (removed, or a guest)")
        name = str(trust.state.partners[card.org_id].get("name") or card.org_id)
        trust.pin_identity(card.org_id, card.member_id, listed)  # the card's key, checked: kept from now on
        return {
            "member_id": card.member_id,
            "org_id": card.org_id,
            "display_name": f"{member.display_name} ({name})",
        }

    # -- checks ---------------------------------------------------------------------------------

    def _awaits_us(self, entry: dict[str, Any], view: TrustView) -> bool:
        """An acceptance of our invitation to countersign; never one whose end this device saw
        (a server hiding that end would otherwise get a fresh countersignature)."""
        kept = self.trust.state.partners.get(str(entry.get("partner_org_id")), {})
        if _ticket_key_of(entry) in kept_ends(kept, 0):
            return False
        mine = view.role(self.trust.member_id) in ADMIN_ROLES
        return (
            mine and entry.get("side") == "inviter" and entry.get("ours") is None and entry.get("end") is None
        )

    def _countersign(self, entry: dict[str, Any], view: TrustView) -> dict[str, Any] | None:
        """Sign our statement only if the ticket is our admin's and the acceptance its key's."""
        trust = self.trust
        partner = str(entry.get("partner_org_id"))
        try:
            ticket = self._our_ticket(entry.get("ticket"), view)
            acceptance = verify_acceptance(entry.get("acceptance"), ticket, partner)
        except (StatementError, PartnerRefused) as exc:
            self._refuse(partner, f"not countersigned: {exc}")
            return None
        statement = issuing.partnership(
            trust.keys.signing,
            trust.keys.device_id,
            trust.org_id,
            partner,
            str(acceptance["root"]),
            str(ticket["ticket_key"]),
            trust.now(),
            allow_tribes=bool(ticket["allow_tribes"]),
        )
        return dict(trust.client.confirm_partner(partner, statement))

    def _our_ticket(self, ticket: object, view: TrustView) -> dict[str, Any]:
        """A partner ticket signed by a device of one of our admins, certified in our view."""
        try:
            shaped = check_shape(ticket, "bocage/ticket/v2")
        except StatementError as exc:
            raise PartnerRefused(str(exc)) from exc
        self._admin_signer(str(shaped["issuer_device"]), int(shaped["issued_at"]), view)
        signer = view.signer(str(shaped["issuer_device"]), int(shaped["issued_at"]))
        assert signer is not None  # _admin_signer checked it
        return verify_partner_ticket(shaped, org_id=self.trust.org_id, issuer_sign_key=signer[1])

    def _admin_signer(self, device_id: str, at: int, view: TrustView) -> str:
        """The signing key of ``device_id`` if it is a certified device of an admin at ``at``, in
        ``view`` (our organisation's, or a partner's up to the root we pinned for it)."""
        signer = view.signer(device_id, at)
        if signer is None:
            raise PartnerRefused(f"{device_id} is not a certified device of {view.org_id}")
        if view.org_role(signer[0], at) not in ADMIN_ROLES:
            raise PartnerRefused(f"{device_id} was not an admin's device when it signed")
        return signer[1]

    def _checked(self, entry: dict[str, Any], view: TrustView) -> dict[str, Any]:
        """The entry with ``status`` and ``partner_root`` as this device verifies them."""
        trust = self.trust
        partner = str(entry.get("partner_org_id"))
        ticket_key = _ticket_key_of(entry)
        root: str | None = None
        try:
            root = self._pinned_by_us(entry, partner, ticket_key, view)
        except (StatementError, PartnerRefused) as exc:
            if entry.get("ours") is not None:
                self._refuse(partner, str(exc))
        theirs_ok = root is not None and self._theirs_ok(entry.get("theirs"), partner, ticket_key, root)
        kept = trust.state.partners.get(partner, {})
        ends = kept_ends(kept, trust.now())
        pinned = root or kept.get("root")
        begun = {str(k): int(v) for k, v in dict(kept.get("begun") or {}).items()}
        if root is not None:
            verified = (entry.get("ours"), entry.get("theirs") if theirs_ok else None)
            begun[ticket_key] = max(begun.get(ticket_key, 0), _begun(*verified))
        # Our own invitation, never countersigned, of a partner of which this device keeps nothing.
        unpinned = entry.get("end") is not None and entry.get("ours") is None
        unpinned = unpinned and not kept.get("root") and not kept.get("begun")
        unpinned = unpinned and self._vouched(entry, None, view)
        ended_at = self._ended(
            entry, partner, view, ends.get(ticket_key), (pinned, unpinned), begun.get(ticket_key)
        )
        ended = ended_at is not None
        began = int(entry["ours"]["issued_at"]) if root is not None else None  # verified
        rollback = None if ended else self._rollback(entry, root, view, kept, ends, (began, begun))
        if rollback is not None:
            trust.warn(TrustWarning("partnership_rollback", f"partnership with {partner}: {rollback[0]}"))
            ended, ended_at = True, rollback[1]
        if ended:
            status = PartnerStatus.ENDED
        elif root is not None and theirs_ok:
            status = PartnerStatus.ACTIVE
        else:
            status = PartnerStatus.PENDING
        if ended_at is not None:
            ends.setdefault(ticket_key, ended_at)
        if root is not None or ended_at is not None:  # not a hidden end: the kept record stays
            ours, theirs = entry.get("ours") or {}, entry.get("theirs") or {}
            name = self._pinned_name(partner, kept, str(entry.get("partner_name") or partner))
            trust.state.partners[partner] = {
                "root": root if root is not None else kept.get("root"),
                "ticket_key": ticket_key,
                "ended": ended,
                "active": status is PartnerStatus.ACTIVE,
                "ends": ends,
                # When each invitation's partnership began, as verified here (22.7): ends dated before.
                "begun": begun,
                # For shared groups (22.6): the name shown beside its members', and whether each
                # side's statement lets the other's members into its tribes.
                "name": name,
                "allow_tribes": bool(ours.get("allow_tribes")),
                "their_allow_tribes": bool(theirs.get("allow_tribes")),
            }
        return {
            **entry,
            "status": status.value,
            "server_status": entry.get("status"),
            "partner_root": root,
            "verified": root is not None,
        }

    def _rollback(
        self,
        entry: dict[str, Any],
        root: str | None,
        view: TrustView,
        kept: dict[str, Any],
        ends: dict[str, int],
        dates: tuple[int | None, dict[str, int]],
    ) -> tuple[str, int | None] | None:
        """Why an entry showing no end is ended all the same (``partnership_rollback``), and the
        date of its end (None: the kept record stays the one whose end this device saw): an end
        seen of its invitation; a kept end behind an entry whose invitation does not verify; or
        an older partnership (``dates``: our verified statement's date, and ``begun``) than one
        whose end was seen, and whose beginning was verified here (it ended before that one began;
        an end dated when a profile was upgraded, with no known beginning, proves nothing)."""
        key = _ticket_key_of(entry)
        if key in ends:
            return "the server hides its end, which this device saw", ends[key]
        if kept.get("ended") and not self._vouched(entry, root, view):
            return "the server hides its end, which this device saw, behind another invitation", None
        began, begun = dates
        later = [
            begun[k]
            for k in ends
            if k in begun and began is not None and begun[k] > began + STATEMENT_CLOCK_SKEW
        ]
        if later:
            return "the server shows an older one again than one whose end this device saw", min(later)
        return None

    def _vouched(self, entry: dict[str, Any], root: str | None, view: TrustView) -> bool:
        """Whether the entry's invitation verifies (``_vouch``) without reporting why not."""
        if root is not None:
            return True
        try:
            self._vouch(entry, str(entry.get("partner_org_id")), _ticket_key_of(entry), view)
        except (StatementError, PartnerRefused):
            return False
        return True

    def _pinned_name(self, partner: str, kept: dict[str, Any], served: str) -> str:
        """The partner's name as first seen with a verified partnership: no statement signs it, so
        a server (or the partner) renaming it later cannot make its members show as someone else's
        (22.6); a change is reported, not taken."""
        pinned = str(kept.get("name") or served)
        if served != pinned:
            self.trust.warn(
                TrustWarning(
                    "partner_renamed",
                    f"the server now names {partner} {served!r}; its members stay shown with {pinned!r}, "
                    "the name this device first saw",
                )
            )
        return pinned

    def _pinned_by_us(self, entry: dict[str, Any], partner: str, ticket_key: str, view: TrustView) -> str:
        ours = entry.get("ours")
        if ours is None:
            raise PartnerRefused("your organisation has not signed this partnership yet")
        shaped = check_shape(ours, PARTNERSHIP)
        key = self._admin_signer(str(shaped["by_device"]), int(shaped["issued_at"]), view)
        checked = verify_partnership(
            shaped, org_id=self.trust.org_id, partner_org_id=partner, ticket_key=ticket_key, signer_key=key
        )
        if entry.get("side") == "inviter":
            ticket = self._our_ticket(entry.get("ticket"), view)
            acceptance = verify_acceptance(entry.get("acceptance"), ticket, partner)
            if acceptance["root"] != checked["partner_root"]:
                raise PartnerRefused("our statement pins another root than the one the acceptance carried")
        return str(checked["partner_root"])

    def _theirs_ok(self, theirs: object, partner: str, ticket_key: str, root: str) -> bool:
        """The partner's statement names this pair, this invitation and our own root, and is
        signed by a device of one of the partner's admins, certified up to the partner's root as
        our own statement pins it."""
        if theirs is None:
            return False
        try:
            shaped = check_shape(theirs, PARTNERSHIP)
            names = (shaped["org_id"], shaped["partner_org_id"], shaped["ticket_key"])
            if names != (partner, self.trust.org_id, ticket_key):
                raise PartnerRefused("the partner's statement names another pair or invitation")
            if shaped["partner_root"] != self.trust.state.root:
                raise PartnerRefused("the partner's statement pins another root than ours")
            members, devices = self.trust.partner_listing(partner)
            view = TrustView(partner, root, members, devices)
            key = self._admin_signer(str(shaped["by_device"]), int(shaped["issued_at"]), view)
            names_us = {"org_id": partner, "partner_org_id": self.trust.org_id, "ticket_key": ticket_key}
            verify_partnership(shaped, **names_us, signer_key=key)
        except (StatementError, PartnerRefused) as exc:
            self._refuse(partner, f"the partner's statement: {exc}")
            return False
        return True

    def _ended(
        self,
        entry: dict[str, Any],
        partner: str,
        view: TrustView,
        kept_at: int | None,
        pins: tuple[object, bool],
        begun: int | None,
    ) -> int | None:
        """When the partnership ended in this device's view, or None (22.5, 22.7). An end by
        either side counts (ending only takes trust away), but ours must verify, and one naming
        another invitation (an earlier partnership's, served again) is not this one's; it is
        dated by its signature when that verifies (the partner's, against the root we pinned),
        else when first seen, whichever is earlier, and a date kept once never moves. Its signature
        dates it only after our statement of this partnership verified here (``begun``, now or
        before) and if it is not older than that: else it is dated when first seen, reported when
        that moves it (a v2 end of an earlier partnership, or an end signed for an invitation
        before it was accepted). ``pins``: the partner's root we pinned, and whether the entry is
        our own invitation never countersigned, of a partner this device keeps nothing of: its v3
        end, dated when first seen, is not reported (that date changes nothing judged here)."""
        root, unpinned = pins
        end = entry.get("end")
        if end is None:
            return None
        signed_at: int | None = None
        try:
            shaped = end_shape(end)
            signer_org, other = str(shaped["org_id"]), str(shaped["partner_org_id"])
            if {signer_org, other} != {partner, self.trust.org_id}:
                raise PartnerRefused("the end statement names another pair")
            named = shaped.get("ticket_key")
            if named is not None and named != _ticket_key_of(entry):
                raise PartnerRefused("it names another invitation than this partnership's")
            if signer_org == self.trust.org_id:
                signed_at = self._signed_end(shaped, signer_org, other, view)
            elif kept_at is None:
                signed_at = self._partners_end(shaped, signer_org, other, root)
        except (StatementError, PartnerRefused) as exc:
            self._refuse(partner, f"end statement ignored: {exc}")
            return None
        if kept_at is not None:
            return kept_at
        return self._dated(partner, signed_at, begun, unpinned and named is not None)

    def _dated(self, partner: str, signed_at: int | None, begun: int | None, quiet: bool) -> int:
        """An end first seen now: dated by its signature only if not before the partnership began
        as verified here (``begun``); otherwise now, reported when that moves it unless ``quiet``
        (the end of our pending invitation, on a device that never pinned that partner)."""
        now = self.trust.now()
        if signed_at is not None and (begun is None or signed_at + STATEMENT_CLOCK_SKEW < begun):
            if begun is not None:
                self._refuse(partner, "its end is dated before the partnership began: dated when first seen")
            elif signed_at + STATEMENT_CLOCK_SKEW < now and not quiet:
                self._refuse(partner, f"{UNVERIFIED_BEGIN}: its end is dated when first seen")
            signed_at = None
        return now if signed_at is None else min(now, signed_at)

    def _signed_end(self, end: dict[str, Any], signer_org: str, other: str, view: TrustView) -> int:
        """The end's ``issued_at``, once checked signed by a device of an admin of its side."""
        key = self._admin_signer(str(end["by_device"]), int(end["issued_at"]), view)
        verify_end(end, org_id=signer_org, partner_org_id=other, signer_key=key)
        return int(end["issued_at"])

    def _partners_end(self, end: dict[str, Any], partner: str, us: str, root: object) -> int | None:
        """The partner's end's ``issued_at`` if one of its admins signed it, up to the root we
        pinned (its listing names the end's signers); None when that cannot be shown."""
        if not isinstance(root, str) or not root:
            return None
        try:
            members, devices = self.trust.partner_listing(partner)
            return self._signed_end(end, partner, us, TrustView(partner, root, members, devices))
        except ApiError:
            return None
        except (StatementError, PartnerRefused) as exc:
            self._refuse(partner, f"its end does not verify ({exc}): dated when this device first saw it")
            return None

    def _refuse(self, partner: str, message: str) -> None:
        self.trust.warn(TrustWarning("invalid_partnership", f"partnership with {partner}: {message}"))


def _begun(*verified: dict[str, Any] | None) -> int:
    """The latest date among the partnership's statements that verified (ours, theirs; the ticket
    and the acceptance are older): an honest end is never signed before them, and a statement
    the server made up cannot push that date later."""
    return max((int(s["issued_at"]) for s in verified if s is not None), default=0)


def _ticket_key_of(entry: dict[str, Any]) -> str:
    ticket = entry.get("ticket")
    return str(ticket.get("ticket_key")) if isinstance(ticket, dict) else ""
