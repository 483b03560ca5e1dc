"""This device's trust in its organisation: who gets sender keys, who a message is from, and the
statements it signs (docs/protocol.md, sections 13 to 15).

It holds the profile's ``TrustState`` (pinned root, verified members, identity keys seen, role
serials seen, each channel's last verified membership state), builds a ``TrustView`` from what
``GET /members`` returns (kept while the listing is unchanged: a warm client re-verifies
nothing), and collects ``warnings`` for the caller to report. The Messenger asks it for the
recipient list before sealing and for the sender shown on a message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from bocage.client import issuing
from bocage.client.api import ApiError, BocageClient, Statement
from bocage.client.certs import TrustView, TrustWarning
from bocage.client.followers import is_follower_device, verified_follower
from bocage.client.membership import MembershipRefused, sync
from bocage.client.profile import DeviceKeys, Profile, TrustState, write_private
from bocage.client.shared import HostAuthority, PartnerView, SharedView, kept_ends
from bocage.client.verification import grouped, normalise, qr_payload, safety_digits
from chalicelib.domain.activation_link import ActivationTarget, with_fragment_params
from chalicelib.domain.direct import channel_id_from_seed, direct_channel_id
from chalicelib.domain.followers import JoinTarget
from chalicelib.domain.ids import is_follower_id
from chalicelib.domain.membership_log import LogState, created_state, refuses_ended_device, replay
from chalicelib.domain.statements import canonical

__all__ = ["MembershipRefused", "Trust", "TrustError", "activate", "join"]

_NOT_IN = "not a member of this channel"
RECHECK_SECONDS = 2.0  # a refusal judged on a kept log asks the log again at most this often (as the web)


def warning_key(warning: TrustWarning) -> tuple[str, str | None, str | None, str]:
    """What makes a warning a repeat: its code and whom it is about; one about no member and no
    device (``invalid_history``, ``invalid_partnership``) is told apart by its message, which
    names the channel or partnership, so one never hides another."""
    about_nobody = warning.member_id is None and warning.device_id is None
    return warning.code, warning.member_id, warning.device_id, warning.message if about_nobody else ""


class TrustError(Exception):
    """An action this device refuses because it cannot verify what it would rely on."""


class Trust:
    def __init__(
        self, profile: Profile, client: BocageClient, keys: DeviceKeys, clock: Callable[[], float]
    ) -> None:
        self.profile = profile
        self.client = client
        self.keys = keys
        self.clock = clock
        info = profile.info()
        self.org_id: str = str(info["org_id"])
        self.member_id: str = str(info["member_id"])
        self.state = profile.trust()
        self._date_old_ends()
        self.warnings: list[TrustWarning] = []
        self._view: TrustView | None = None
        self._shared: SharedView | None = None
        self._shared_base: tuple[TrustView, str] | None = None  # what the shared view was built on
        self._listing: str = ""
        # Partners' listings asked within one refresh of the partners: one GET each (L7).
        self._partner_listings: dict[str, tuple[list[Any], list[Any]]] | None = None
        self._device_certs: dict[str, str] = {}  # device id -> hash of its certificate in the view
        self._synced: set[str] = set()  # channels whose log was fetched since the last change heard
        self._rechecked: dict[str, float] = {}  # channel id -> when a refusal last asked the log again
        self._stale: set[str] = set()  # channels a change was heard in (or a page read) since a fetch
        # Followers of public tribes verified from rosters (docs/protocol.md, 16.3), per channel:
        # a follower is certified by one tribe's ticket, never for the organisation's other tribes.
        self.followers: dict[str, dict[str, dict[str, str]]] = {}  # channel id -> device id -> keys
        self._follower_seen: dict[tuple[str, str], tuple[Any, ...]] = {}  # what each was verified from
        self.listing_path = profile.dir / "members.json"

    # -- warnings ----------------------------------------------------------------------------------

    def warn(self, warning: TrustWarning | None) -> None:
        if warning is None:
            return
        if all(warning_key(w) != warning_key(warning) for w in self.warnings):
            self.warnings.append(warning)

    def take_warnings(self) -> list[dict[str, Any]]:
        """The warnings collected so far, as ``--json`` prints them, and forget them."""
        taken, self.warnings = [w.to_json() for w in self.warnings], []
        return taken

    # -- the organisation ------------------------------------------------------------------------

    def view(self, *, refresh: bool = False, partners: bool | None = None) -> SharedView:
        """The organisation, and its active partners (22.6), as verified from the member listings
        (kept while unchanged). ``refresh`` asks the server again, and ``partners`` (by default as
        ``refresh``) the partnerships and partners' listings too when this device has pinned a
        partner (``partners=True``: even when none is pinned yet, as one listing): an end it sees
        takes the partner's members out at once."""
        own = self.own_view(refresh=refresh)
        ask_partners = refresh if partners is None else partners
        pinned = json.dumps(self.state.partners, sort_keys=True)  # an end seen since changes it
        if self._shared is not None and not ask_partners and self._shared_base == (own, pinned):
            return self._shared
        with self.one_listing_per_partner():
            if ask_partners and (self.state.partners or partners):
                self.learn_partners()
            found = self._partner_views(refresh=ask_partners)
        self._shared = SharedView(
            own.org_id,
            own.root,
            own.listed_members(),
            own.listed_devices(),
            verified=self.state.verified,
            seen=self.state.seen,
            revoked=self.state.revoked.get(self.org_id),
            removed=self.state.removed.get(self.org_id),
            partners=found,
            follower=self.is_follower,
            clock=self.clock,
        )
        self._shared_base = (own, json.dumps(self.state.partners, sort_keys=True))
        self._pin_partners(self._shared)
        return self._shared

    def _pin_partners(self, shared: SharedView) -> None:
        """Partners' members' identity keys, seen for the first time, are kept per partner like
        our own members' (a later change is ``identity_changed``, 22.6), and so are their
        revocations and removals; only for the ids the shared view gives that partner (chained
        to its pinned root, listed by no other organisation): a partner's listing never speaks
        for our ids, nor for another partner's."""
        changed = False
        for partner in shared.partners.values():

            def theirs(kind: str, subject: str, partner: PartnerView = partner) -> bool:
                owner = (
                    shared.partner_of_device(subject)
                    if kind == "device"
                    else shared.partner_of_member(subject)
                )
                return owner is partner

            self._keep_endings(partner.view, theirs)
            seen = self.state.partner_seen.setdefault(partner.org_id, {})
            for raw in partner.view.listed_members() if partner.active else ():
                member_id = str(raw["member_id"])
                trusted = partner.view.member(member_id)
                if trusted is None or member_id in seen:
                    continue
                if theirs("member", member_id) and partner.view.certified(member_id):
                    seen[member_id] = trusted.identity_key
                    changed = True
        if changed:
            self.save()

    def pin_identity(self, org_id: str, member_id: str, identity_key: str) -> None:
        """Keep this identity key as the one seen for a partner's member (a contact card whose
        fingerprint matched, 22.6): a later different key is ``identity_changed``."""
        self.state.partner_seen.setdefault(org_id, {})[member_id] = identity_key
        self.save()
        self._view = None

    def _met_host(self, org_id: str) -> None:
        """A channel of another organisation: a partner's shared group this device may not know."""
        self.view(refresh=True, partners=True)

    def _date_old_ends(self) -> None:
        """Partnership ends kept before they had dates (22.7) are dated now, as first seen, and
        kept so: the replay then takes the ended partner's entries from before that date."""
        old = {
            org: p
            for org, p in self.state.partners.items()
            if "ends" not in p and (p.get("ended") or p.get("ended_keys"))
        }
        for kept in old.values():
            kept["ends"] = kept_ends(kept, int(self.clock()))
            kept.pop("ended_keys", None)
        if old:
            self.save()

    def learn_partners(self) -> None:
        """Ask for the partnerships and verify them (bocage/client/partners.py), without signing.

        Followers and guests have none (the route answers them 403, 22.4): a partner's member in
        their channel is then someone they cannot verify, not a reason to fail the read. Any other
        failure keeps what was verified before and is reported: our own channels still work."""
        from bocage.client.partners import Partners  # it builds on this module

        if self.is_follower:
            return
        try:
            Partners(self, "").listing(confirm=False)
        except ApiError as exc:
            if exc.status != 403:
                self.warn(_partners_unavailable("the partnerships", exc))

    @contextmanager
    def one_listing_per_partner(self) -> Iterator[None]:
        """Within it, each partner's listing is asked once (``partner_listing``): checking the
        partnership and building the shared view read the same answer."""
        outer = self._partner_listings is None
        if outer:
            self._partner_listings = {}
        try:
            yield
        finally:
            if outer:
                self._partner_listings = None

    def partner_listing(self, org_id: str) -> tuple[list[Any], list[Any]]:
        """GET /partners/{org_id}/members, once per partner within ``one_listing_per_partner``."""
        if self._partner_listings is None:
            return self.client.partner_listing(org_id)
        if org_id not in self._partner_listings:
            self._partner_listings[org_id] = self.client.partner_listing(org_id)
        return self._partner_listings[org_id]

    def _partner_views(self, *, refresh: bool) -> list[PartnerView]:
        """Each partner pinned in this device's view, checked up to the root our statement pins;
        their listings kept in the profile beside ours. An ended one's is kept and never asked
        again, except once by a device that kept none: the log's entries from before the end
        are verified with it (22.7)."""
        kept_path = self.profile.dir / "partner_members.json"
        kept = json.loads(kept_path.read_text()) if kept_path.exists() else {}
        pinned = {org: p for org, p in self.state.partners.items() if p.get("root")}
        listings: dict[str, Any] = {}
        for org_id, partner in pinned.items():
            active = bool(partner.get("active")) and not partner.get("ended")
            if (active and refresh) or org_id not in kept:
                try:
                    members, devices = self.partner_listing(org_id)
                    listings[org_id] = {"members": members, "devices": devices}
                    continue
                except ApiError as exc:  # the last listing verified stays; our own channels work
                    if exc.status == 403:
                        raise
                    self.warn(_partners_unavailable(f"the listing of {org_id}", exc))
            if org_id in kept:  # an ended (or unreadable) partner's last listing: who wrote what
                listings[org_id] = kept[org_id]
        if listings != kept:
            write_private(kept_path, json.dumps(listings).encode())
        return [
            PartnerView(
                org_id,
                str(pinned[org_id].get("name") or org_id),
                bool(pinned[org_id].get("allow_tribes")),
                TrustView(
                    org_id,
                    str(pinned[org_id]["root"]),
                    listing["members"],
                    listing["devices"],
                    verified=self.state.verified,
                    seen=self.state.partner_seen.get(org_id),
                    revoked=self.state.revoked.get(org_id),
                    removed=self.state.removed.get(org_id),
                ),
                bool(pinned[org_id].get("their_allow_tribes")),
                active=bool(pinned[org_id].get("active")) and not pinned[org_id].get("ended"),
                ends=tuple(sorted(int(v) for v in dict(pinned[org_id].get("ends") or {}).values())),
            )
            for org_id, listing in listings.items()
        ]

    def own_view(self, *, refresh: bool = False) -> TrustView:
        """The organisation as verified from the member listing (kept while unchanged).

        The last listing is kept in the profile and verified again locally at start, so a message
        from a known device opens without asking the server; ``refresh`` asks it.
        """
        if self._view is not None and not refresh:
            return self._view
        if not refresh and self.listing_path.exists():
            kept = json.loads(self.listing_path.read_text())
            members, devices = list(kept["members"]), list(kept["devices"])
        else:
            members, devices = self.client.member_listing()
        listing = hashlib.sha256(canonical({"m": members, "d": devices})).hexdigest()
        if self._view is not None and listing == self._listing:
            return self._view
        write_private(self.listing_path, json.dumps({"members": members, "devices": devices}).encode())
        if not self.state.root:
            raise TrustError("this profile has no pinned root: activate it again with protocol v2")
        view = TrustView(
            self.org_id,
            self.state.root,
            members,
            devices,
            verified=self.state.verified,
            seen=self.state.seen,
            revoked=self.state.revoked.get(self.org_id),
            removed=self.state.removed.get(self.org_id),
        )
        self._view, self._listing = view, listing
        self._device_certs = {
            str(d["device_id"]): _hash(d.get("device_cert")) for d in devices if d.get("device_cert")
        }
        self._remember(view, members)
        self._keep_endings(view, lambda kind, subject: True)
        return view

    def view_for(self, devices: list[dict[str, Any]]) -> SharedView:
        """A view that knows these devices (with these certificates), refreshed if it did not."""
        view = self.view()
        for d in devices:
            if self._device_certs.get(str(d["device_id"])) != _hash(d.get("device_cert")):
                return self.view(refresh=True)
        return view

    def _remember(self, view: TrustView, members: list[dict[str, Any]]) -> None:
        """Identity keys seen and role serials seen: later changes and rollbacks are reported."""
        changed = False
        for raw in members:
            member_id = str(raw["member_id"])
            trusted = view.member(member_id)
            if trusted is not None and member_id not in self.state.seen:
                self.state.seen[member_id] = trusted.identity_key
                changed = True
            self.warn(view.why_not_member(member_id) if raw.get("status") != "invited" else None)
            serials = [
                int(s.get("serial", 0)) for s in raw.get("role_statements") or [] if isinstance(s, dict)
            ]
            highest = max(serials, default=0)
            if highest < self.state.role_serials.get(member_id, 0):
                self.warn(
                    TrustWarning(
                        "role_rollback",
                        f"{member_id}: the server shows an older role than one seen",
                        member_id,
                    )
                )
            elif highest > self.state.role_serials.get(member_id, 0):
                self.state.role_serials[member_id] = highest
                changed = True
        if changed:
            self.save()

    def _keep_endings(self, view: TrustView, speaks_for: Callable[[str, str], bool]) -> None:
        """Revocations and removals this listing proves are kept (13.7), under its organisation,
        for the ids it ``speaks_for`` ("device"/"member", id); one a later listing drops, or
        dates later, is reported (``revocation_rollback``) and stays: a server cannot bring a
        stolen device back into the keys by serving an older listing."""
        revoked = self.state.revoked.setdefault(view.org_id, {})
        removed = self.state.removed.setdefault(view.org_id, {})
        devices = [d for d in view.listed_devices() if speaks_for("device", str(d["device_id"]))]
        members = [m for m in view.listed_members() if speaks_for("member", str(m["member_id"]))]
        changed = _keep(devices, "device_id", "revocation", revoked, view.revoked_at)
        changed |= _keep(members, "member_id", "removal", removed, view.removed_at)
        for member_id, device_id, at in view.rollbacks:
            what = f"device {device_id}" if device_id else f"member {member_id}"
            message = (
                f"the server no longer shows the {'revocation' if device_id else 'removal'} of {what} "
                f"this device verified (dated {at}): kept"
            )
            self.warn(TrustWarning("revocation_rollback", message, member_id, device_id))
        if changed:
            self.save()

    def save(self) -> None:
        self.profile.save_trust(self.state)

    # -- channels ------------------------------------------------------------------------------

    def changed(self, channel_id: str) -> None:
        """A frame announced a membership change (or a page is read with nothing listening):
        fetch the log again before relying on it."""
        self._synced.discard(channel_id)
        self._stale.add(channel_id)

    def membership(self, channel_id: str, *, watched: bool = False) -> LogState:
        """The channel's verified membership state; MembershipRefused on a rollback or a fork.

        ``watched``: a live connection would have announced a change, so the state kept since the
        last fetch is current."""
        kept_json = self.state.logs.get(channel_id)
        kept = LogState.from_json(kept_json) if kept_json else None
        if kept is not None and not kept.org_id:  # kept before 22.6: only our own channels were read
            kept = dataclasses.replace(kept, org_id=self.org_id)
        if watched and kept is not None and channel_id in self._synced:
            return kept
        # The host is the creation's organisation, kept with the state; never a later entry's.
        host: dict[str, str] = {"org_id": kept.org_id} if kept is not None else {}

        def fetch(start: int) -> tuple[list[dict[str, Any]], Any]:
            entries, head = self.client.membership_log(channel_id, start)
            if start == 0 and entries and kept is None:
                host["org_id"] = str(entries[0].get("org_id"))
            return entries, head

        # Kept before it kept who left, and who of them were authors (14.2): replayed from entry 0.
        rebuild = kept is not None and not kept.former_known
        try:
            authority = HostAuthority(host, self.view, self._met_host)
            state, warnings = sync(channel_id, kept, fetch, authority, rebuild=rebuild)
            if warnings:  # perhaps only a member who joined since the kept listing: look again
                self.view(refresh=True)
                state, warnings = sync(
                    channel_id, kept, fetch, HostAuthority(host, self.view), rebuild=rebuild
                )
            if warnings and not self.state.partners:  # or a partner's member: learn our partners
                self.view(refresh=True, partners=True)
                state, warnings = sync(
                    channel_id, kept, fetch, HostAuthority(host, self.view), rebuild=rebuild
                )
        except MembershipRefused as refused:
            self.warn(refused.warning)
            raise
        for warning in warnings:
            self.warn(warning)
        self._synced.add(channel_id)
        self._stale.discard(channel_id)
        if kept is None or state.to_json() != kept_json:
            self.state.logs[channel_id] = state.to_json()
            self.save()
        return state

    def events(self, channel_id: str) -> dict[str, Any]:
        """The channel's membership history as verified from entry 0: who added whom, and when."""
        entries, _ = self.client.membership_log(channel_id, 0)
        view = self.view(refresh=True)
        host = {"org_id": str(entries[0].get("org_id"))} if entries else {}
        state, error = replay(entries, HostAuthority(host, lambda: view), channel_id)
        if error is not None:
            self.warn(TrustWarning("membership_invalid", f"{channel_id}: {error}; later entries ignored"))
        verified = entries[: (state.seq + 1) if state else 0]
        events = []
        for entry in verified:
            signer = view.device(str(entry["by_device"]))
            events.append(
                {
                    "seq": entry["seq"],
                    "op": entry["op"],
                    "member_id": entry["member_id"],
                    "role": entry["role"],
                    "by_member": signer.member_id if signer else None,
                    "issued_at": entry["issued_at"],
                }
            )
        members = dict(state.members) if state else {}
        names = {}
        for member_id in members:
            trusted = view.member(member_id)
            partner = view.partner_of_member(member_id)
            names[member_id] = {
                "display_name": trusted.display_name if trusted else None,  # "Name (Organisation)"
                "org_id": partner.org_id if partner else self.org_id,
            }
        return {"channel_id": channel_id, "members": members, "names": names, "events": events}

    def partner_members(self) -> list[dict[str, Any]]:
        """The members of active partners this device knows (those of its shared groups and the
        partners' signers), each with its organisation and the name shown: "Name (Organisation)"."""
        view = self.view()
        found = []
        for partner in view.partners.values():
            if not partner.active:
                continue
            devices = partner.view.listed_devices()
            for raw in partner.view.listed_members():
                member_id = str(raw["member_id"])
                trusted = view.member(member_id)
                found.append(
                    {
                        **raw,
                        "role": "partner",
                        "org_id": partner.org_id,
                        "organisation": partner.name,
                        "display_name": trusted.display_name if trusted else f"{raw['display_name']} (?)",
                        "devices": [d for d in devices if d.get("member_id") == member_id],
                        **self.standing(member_id),
                    }
                )
        return found

    def standing(self, member_id: str) -> dict[str, Any]:
        """How this device sees a member: certified, verified, or vouched by the server only."""
        view = self.view()
        return {
            "certified": view.certified(member_id),
            "verified": self.state.verified.get(member_id) == view.identity_key(member_id),
            "vouched_by_server_only": view.vouched_only(member_id),
            # The role the signed ticket and role statements give (13.8), not the server's `role`.
            "certified_role": view.role(member_id),
        }

    def recipients(
        self, channel_id: str, devices: list[dict[str, Any]], *, watched: bool = False
    ) -> dict[str, str]:
        """Device id -> certified box key of every roster device that may receive a sender key.

        Not ``watched`` (no live connection to hear of changes), the listing is asked for again:
        an unchanged one is not verified again."""
        state = self._judged(self.membership(channel_id, watched=watched))
        # The partnerships are asked again only for a channel with someone outside our listing:
        # a send in our own groups costs nothing more.
        view = (
            self.view_for([d for d in devices if not is_follower_device(d)])
            if watched
            else self.view(refresh=True, partners=self._beyond_own(state))
        )
        chosen: dict[str, str] = {}
        for d in devices:
            device_id, member_id = str(d["device_id"]), str(d["member_id"])
            if device_id == self.keys.device_id:
                continue
            if is_follower_device(d):
                # A follower's own votes and reactions go to the tribe's members only; a partner's
                # member seals nothing to the host's followers, who cannot verify them (16.3).
                theirs = state.org_id not in ("", self.org_id)
                found = None if self.is_follower or theirs else self._follower(channel_id, d, view, state)
                if found is not None:
                    chosen[device_id] = found["box_public_key"]
                continue
            trusted = view.usable(device_id)
            if trusted is None or trusted.member_id != member_id:
                # The device's reason first, then its member's: the web client's order (membership.js).
                self.warn(
                    view.why_not(device_id)
                    or view.why_not_member(member_id)
                    or _revoked(device_id, member_id)
                )
                continue
            if member_id not in state.members:
                self.warn(
                    TrustWarning(
                        "not_in_membership",
                        f"{device_id}: its member is not in the channel's signed membership",
                        member_id,
                        device_id,
                    )
                )
                continue
            chosen[device_id] = trusted.box_public_key
        return chosen

    @property
    def is_follower(self) -> bool:
        return is_follower_id(self.member_id)

    def _follower(
        self, channel_id: str, device: dict[str, Any], view: SharedView, state: LogState
    ) -> dict[str, str] | None:
        # In a partner's tribe (22.6), the host's ticket is checked with the host's roles.
        host = state.org_id or self.org_id
        seen = (
            channel_id,
            _hash(device.get("device_cert")),
            _hash(device.get("ticket")),
            device.get("box_public_key"),
            state.head,  # the tribe's log and the listings as verified (ours, and the host
            self._listing,  # partner's in its tribe): a change there (an author removed, a device
            _partner_listing_hash(view, host),  # revoked, the link's signer) checks them again
        )
        kept = self.followers.get(channel_id, {}).get(str(device["device_id"]))
        if kept is not None and self._follower_seen.get((channel_id, kept["device_id"])) == seen:
            return kept  # verified already from these very statements: a town's tribe checks each once
        roles = HostAuthority({"org_id": host}, lambda: view).org_role
        found = verified_follower(device, channel_id, host, view, state, roles)
        if isinstance(found, TrustWarning):
            self.warn(found)
            self.followers.get(channel_id, {}).pop(str(device["device_id"]), None)  # no longer certified
            return None
        self.followers.setdefault(channel_id, {})[found["device_id"]] = found
        self._follower_seen[(channel_id, found["device_id"])] = seen
        return found

    def learn_followers(self, channel_id: str, devices: list[dict[str, Any]]) -> None:
        """Verify the followers a roster lists, so that their votes and reactions are shown as theirs."""
        state, view = self.membership(channel_id), self.view()
        for d in devices:
            if is_follower_device(d) and str(d["device_id"]) not in self.followers.get(channel_id, {}):
                self._follower(channel_id, d, view, state)

    def sender(
        self, device_id: str, server_member: str | None, channel_id: str
    ) -> tuple[dict[str, str] | None, bool]:
        """(the certified sender's device keys, member id and name, or None; whether the server lied).

        A follower is one only in the channel whose ticket certified them."""
        follower = self.followers.get(channel_id, {}).get(device_id)
        if follower is None and self.is_follower and device_id == self.keys.device_id:
            # A follower's own device is in no member listing: its own messages verify with its own keys.
            name = str(self.profile.info().get("display_name", ""))
            follower = {
                "device_id": device_id,
                "member_id": self.member_id,
                "sign_public_key": self.keys.sign_public_key,
                "box_public_key": self.keys.box_public_key,
                "display_name": name,
            }
        if follower is not None:
            return self._found(follower, server_member)
        view = self.view()
        if (
            is_follower_id(server_member or "")
            and channel_id in self.followers
            and view.device(device_id) is None
        ):
            # Stamped a follower's the tribe's verified roster no longer holds (one who left, most
            # days in a town): not placed, quietly, with no listing reload (as the web app).
            return None, False
        if view.device(device_id) is None:
            view = self.view(refresh=True)
        if view.device(device_id) is None and not self.state.partners:
            view = self.view(refresh=True, partners=True)  # perhaps a partner's member (22.6)
        trusted = view.device(device_id)
        if trusted is None:
            self.warn(view.why_not(device_id))
            return None, True
        member = view.member(trusted.member_id)
        found = {
            "device_id": device_id,
            "member_id": trusted.member_id,
            "sign_public_key": trusted.sign_public_key,
            "box_public_key": trusted.box_public_key,
            "display_name": member.display_name if member else "?",
        }
        return self._found(found, server_member)

    def refuses_sender(
        self, channel_id: str, member_id: str, device_id: str, sent_at_ms: object, kind: str
    ) -> str | None:
        """Why the channel's verified membership refuses a message of ``member_id``'s device
        (section 14.2), or None. The log is asked again first when a change was heard since it was
        fetched, or a page is read with nothing listening (``changed``); else the kept state
        judges, and asks the log again only when it refuses: at once if this session has not
        fetched it yet, else at most once per channel per RECHECK_SECONDS (a change made while no
        connection listened, a reconnection's gap, was announced to nobody), never per message.
        A server can always withhold a removal from a device that has not fetched it (14.2).
        First, whatever the log says: nothing the device signed after its revocation, or its
        member's removal from the organisation (ours or a partner's, kept dates included), counts
        (13.7)."""
        view = self.view()
        why = refuses_ended_device(sent_at_ms, view.revoked_at(device_id), view.removed_at(member_id))
        if why is not None:
            self._refused(channel_id, member_id, device_id, why)
            return why
        kept_json = self.state.logs.get(channel_id)
        state = LogState.from_json(kept_json) if kept_json else None
        if channel_id in self._stale:
            state = self._resynced(channel_id, state)
        why = self._judged(state).refuses_sender(member_id, sent_at_ms, kind) if state else _NOT_IN
        now = self.clock()
        fresh = channel_id in self._synced
        if why is not None and (
            not fresh or now - self._rechecked.get(channel_id, -RECHECK_SECONDS) >= RECHECK_SECONDS
        ):
            if fresh:
                self._rechecked[channel_id] = now
            state = self._resynced(channel_id, state)
            why = self._judged(state).refuses_sender(member_id, sent_at_ms, kind) if state else _NOT_IN
        if why is not None:
            self._refused(channel_id, member_id, device_id, why)
        return why

    def _refused(self, channel_id: str, member_id: str, device_id: str, why: str) -> None:
        message = f"{channel_id}: a message from {device_id}: {why}"
        self.warn(TrustWarning("not_a_member", message, member_id, device_id))

    def members_now(self, channel_id: str) -> Mapping[str, str]:
        """The channel's members as a live act (a call) is judged with: the verified state cut at
        the partnership ends this device saw (22.7)."""
        return self._judged(self.membership(channel_id)).members

    def judged_fresh(self, channel_id: str) -> LogState:
        """The verified state cut at the ends (as ``members_now``), for a tally (read rarely):
        the partnerships are asked again first when someone outside our listing is in the
        channel, as a send does, so an end another device of ours signed is seen here too."""
        state = self.membership(channel_id)
        if self._beyond_own(state):
            self.view(refresh=True, partners=True)
        return self._judged(state)

    def _beyond_own(self, state: LogState) -> bool:
        """Whether a verified state holds someone outside our own listing (a partner's member,
        or a newcomer): only then are the partnerships worth asking again."""
        own = self.own_view()
        return any(not own.lists_member(m) for m in state.members)

    def _judged(self, state: LogState) -> LogState:
        """The state senders and recipients are judged on: cut at the partnership ends this
        device saw (22.7); as it is when it saw none, without building a view."""
        if not any(p.get("ends") or p.get("ended") for p in self.state.partners.values()):
            return state
        return state.cut_at_ends(self.view().ends_of)

    def _resynced(self, channel_id: str, kept: LogState | None) -> LogState | None:
        """The log asked again; the kept state when it is refused (reported) or no longer ours."""
        try:
            return self.membership(channel_id)
        except (MembershipRefused, ApiError):
            self._synced.add(channel_id)
            self._stale.discard(channel_id)
            return kept

    def _found(self, found: dict[str, str], server_member: str | None) -> tuple[dict[str, str], bool]:
        lied = server_member is not None and server_member != found["member_id"]
        if lied:
            self.warn(
                TrustWarning(
                    "forged_sender",
                    f"the server says {server_member} sent from {found['device_id']}, whose certificate "
                    f"names {found['member_id']}",
                    found["member_id"],
                    found["device_id"],
                )
            )
        return found, lied

    # -- statements this device signs ----------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def new_channel_entry(self, kind: str, id_seed: str) -> Statement:
        return issuing.membership_entry(
            self.keys.signing,
            self.keys.device_id,
            org_id=self.org_id,
            channel_id=channel_id_from_seed(id_seed),
            previous=None,
            op="create",
            member_id=self.member_id,
            role="author",
            kind=kind,
            now=self.now(),
        )

    def direct_entries(self, member_id: str) -> list[Statement]:
        """The creation of this member's direct conversation with ``member_id`` and the addition of
        the other member: its id is the pair's (docs/protocol.md, 14.1)."""
        channel_id, now = direct_channel_id(self.org_id, self.member_id, member_id), self.now()
        creation = issuing.membership_entry(
            self.keys.signing,
            self.keys.device_id,
            org_id=self.org_id,
            channel_id=channel_id,
            previous=None,
            op="create",
            member_id=self.member_id,
            role="author",
            kind="direct",
            now=now,
        )
        addition = issuing.membership_entry(
            self.keys.signing,
            self.keys.device_id,
            org_id=self.org_id,
            channel_id=channel_id,
            previous=creation,
            op="add",
            member_id=member_id,
            role="author",
            now=now,
        )
        return [creation, addition]

    def created(self, entry: Statement) -> None:
        """Keep the state of a channel this device just created."""
        self.state.logs[str(entry["channel_id"])] = created_state(entry, self.member_id).to_json()
        self.save()

    def next_entry(self, channel_id: str, op: str, member_id: str, role: str | None) -> Statement:
        """The entry that extends the channel's log as this device verified it, naming the
        channel's host (ours, or the partner's whose group this is: 22.6)."""
        state = self.membership(channel_id)
        entries, _ = self.client.membership_log(channel_id, state.seq)
        return issuing.membership_entry(
            self.keys.signing,
            self.keys.device_id,
            org_id=state.org_id,
            channel_id=channel_id,
            previous=entries[0],
            op=op,
            member_id=member_id,
            role=role,
            now=self.now(),
        )

    def member_ticket(self, role: str, display_name: str) -> issuing.Ticket:
        return issuing.member_ticket(
            self.keys.signing, self.keys.device_id, self.org_id, role, display_name, self.now()
        )

    def device_ticket(self) -> issuing.Ticket:
        return issuing.device_ticket(
            self.keys.signing, self.keys.device_id, self.org_id, self.member_id, self.now()
        )

    def member_entry(self, member_id: str) -> dict[str, Any]:
        members, _ = self.client.member_listing()
        for member in members:
            if member["member_id"] == member_id:
                return member
        raise TrustError(f"no member {member_id} in this organisation")

    def role_statement(self, member_id: str, role: str) -> Statement:
        member = self._certified_entry(member_id)
        serials = [int(s["serial"]) for s in member.get("role_statements") or []]
        serial = max([*serials, self.state.role_serials.get(member_id, 0)], default=0) + 1
        return issuing.role_statement(
            self.keys.signing, self.keys.device_id, member, role, serial, self.now()
        )

    def removal(self, member_id: str) -> Statement:
        return issuing.removal(
            self.keys.signing, self.keys.device_id, self._certified_entry(member_id), self.now()
        )

    def revocation(self, device_id: str) -> Statement:
        _, devices = self.client.member_listing()
        for device in devices:
            if device["device_id"] == device_id:
                return issuing.revocation(self.keys.signing, self.keys.device_id, device, self.now())
        raise TrustError(f"no device {device_id} in this organisation")

    def _certified_entry(self, member_id: str) -> dict[str, Any]:
        member = self.member_entry(member_id)
        if not isinstance(member.get("member_cert"), dict):
            raise TrustError(f"{member_id} has no member certificate (not activated with protocol v2)")
        identity = self.view(refresh=True).identity_key(member_id)
        if identity != member["member_cert"]["identity_key"]:
            raise TrustError(f"{member_id}'s certificate could not be read")
        return member

    # -- invitations and administration -------------------------------------------------------------

    def invite(self, display_name: str, *, role: str = "member", email: str | None = None) -> dict[str, Any]:
        """An invitation; unless e-mailed, its ticket's secret and the root ride in the URL fragment."""
        if email:
            return dict(self.client.invite(display_name, role=role, email=email))
        ticket = self.member_ticket(role, display_name)
        result = dict(self.client.invite(display_name, role=role, ticket=ticket.statement))
        url = with_fragment_params(
            str(result["activation_url"]), ticket=ticket.fragment_seed, root=self.state.root
        )
        return {**result, "activation_url": url}

    def link_device(self) -> dict[str, Any]:
        """A link for another device of this member: it will sign its certificate with the ticket."""
        identity = self.my_identity_key()
        ticket = self.device_ticket()
        result = dict(self.client.link_device(ticket.statement))
        url = with_fragment_params(
            str(result["activation_url"]), ticket=ticket.fragment_seed, root=self.state.root, ik=identity
        )
        return {**result, "activation_url": url}

    def set_role(self, member_id: str, role: str) -> dict[str, Any]:
        """Never across the guest line (docs/protocol.md, 21): an honest server refuses it, and a
        dishonest one could keep the signed statement and serve it alone. The side is the
        certified role, else (an e-mail invitee not yet endorsed) the listed one."""
        side = self.view(refresh=True).role(member_id) or self.member_entry(member_id).get("role")
        if side is not None and (side == "guest") != (role == "guest"):
            raise TrustError("a guest stays a guest and a member never becomes one (docs/protocol.md, 21)")
        return dict(self.client.set_role(member_id, role, self.role_statement(member_id, role)))

    def endorse(self, member_id: str) -> dict[str, Any]:
        """Vouch, as an admin, for a member the server alone vouched for (an e-mail invitee)."""
        member = self.member_entry(member_id)
        return {**self.set_role(member_id, str(member["role"])), "endorsed": True}

    def remove(self, member_id: str) -> dict[str, Any]:
        return dict(self.client.remove_member(member_id, self.removal(member_id)))

    def revoke(self, device_id: str) -> dict[str, Any]:
        return dict(self.client.revoke_device(device_id, self.revocation(device_id)))

    # -- verification --------------------------------------------------------------------------

    def my_identity_key(self) -> str:
        view = self.view(refresh=True)
        mine = view.member(self.member_id)
        if mine is None:
            raise TrustError("this device cannot verify its own member certificate")
        return mine.identity_key

    def safety(self, member_id: str) -> dict[str, Any]:
        """What ``bocage verify MEMBER`` prints: the number, the QR payload, and the member's standing."""
        mine = self.my_identity_key()
        view = self.view()
        theirs = view.identity_key(member_id)
        if theirs is None:
            raise TrustError(f"{member_id} has no identity key (not activated with protocol v2)")
        digits = safety_digits(mine, theirs)
        member = view.member(member_id)
        return {
            "member_id": member_id,
            "display_name": member.display_name if member else None,
            "identity_key": theirs,
            "safety_number": grouped(digits),
            "qr_payload": qr_payload(self.org_id, self.member_id, digits),
            "verified": self.state.verified.get(member_id) == theirs,
            "certified": view.certified(member_id),
            "vouched_by_server_only": view.vouched_only(member_id),
        }

    def confirm(self, member_id: str, number: str) -> dict[str, Any]:
        """Mark the member verified if ``number`` is the safety number; TrustError otherwise."""
        shown = self.safety(member_id)
        if normalise(number) != shown["safety_number"].replace(" ", ""):
            raise TrustError(
                "the safety numbers differ: do not trust this member's keys until you find out why"
            )
        self.state.verified[member_id] = shown["identity_key"]
        self.state.seen[member_id] = shown["identity_key"]
        self.save()
        self._view = None
        return {**shown, "verified": True}


def _partner_listing_hash(view: SharedView, org_id: str) -> str:
    """The partner's listing this view verified, and whether it is still a partner ("" for us)."""
    partner = view.partners.get(org_id)
    if partner is None:
        return ""
    listed = {"m": partner.view.listed_members(), "d": partner.view.listed_devices()}
    return _hash({**listed, "active": partner.active, "ends": list(partner.ends)})


def _hash(statement: object) -> str:
    if not isinstance(statement, dict):
        return ""
    return hashlib.sha256(canonical(statement)).hexdigest()


def _keep(
    listed: list[Mapping[str, Any]],
    key: str,
    field_name: str,
    kept: dict[str, int],
    date_of: Callable[[str], int | None],
) -> bool:
    """Record in ``kept`` the date of each listed item's valid ``field_name`` statement (and
    check again the ones kept); whether anything changed."""
    changed = False
    for raw in listed:
        subject = str(raw[key])
        if raw.get(field_name) is None and subject not in kept:
            continue
        at = date_of(subject)
        if at is not None and kept.get(subject) != at:
            kept[subject] = at
            changed = True
    return changed


def _revoked(device_id: str, member_id: str) -> TrustWarning:
    return TrustWarning(
        "uncertified_device", f"{device_id} is revoked or its member removed", member_id, device_id
    )


def activate(
    client: BocageClient,
    profile: Profile,
    target: ActivationTarget,
    keys: DeviceKeys,
    *,
    device_name: str,
    display_name: str | None,
    now: int,
) -> dict[str, Any]:
    """Activate with the certificates the URL's fragment allows, keep the identity key and pin the root.

    The identity key is saved before the call, so a retry after a lost answer presents the same one.
    """
    enrolment = issuing.enrol(
        target,
        device_id=keys.device_id,
        sign_public_key=keys.sign_public_key,
        box_public_key=keys.box_public_key,
        display_name=display_name,
        now=now,
        identity=profile.identity(),
    )
    if enrolment.identity is not None:
        profile.save_identity(enrolment.identity)
    result = dict(
        client.activate(
            target.code,
            keys,
            device_name=device_name,
            display_name=enrolment.member_cert["display_name"] if enrolment.member_cert else None,
            member_cert=enrolment.member_cert,
            device_cert=enrolment.device_cert,
        )
    )
    profile.save_trust(TrustState(root=enrolment.root))
    warnings = []
    if result.get("root") and result["root"] != enrolment.root:
        message = "the server names another organisation root than the one your invitation carried"
        warnings.append(TrustWarning("root_mismatch", message).to_json())
    return {**result, "root": enrolment.root, "warnings": warnings}


def join(
    client: BocageClient,
    profile: Profile,
    target: JoinTarget,
    keys: DeviceKeys,
    *,
    display_name: str,
    device_name: str,
    now: int,
) -> dict[str, Any]:
    """Activate this device as a follower (docs/protocol.md, 16.2) and pin the link's root."""
    keys_of = {"sign_public_key": keys.sign_public_key, "box_public_key": keys.box_public_key}
    cert = issuing.follower_cert(target, **keys_of, display_name=display_name, now=now)
    result = dict(client.join(target.link, keys, cert, device_name=device_name))
    profile.save_trust(TrustState(root=target.root))
    warnings = []
    if result.get("root") and result["root"] != target.root:
        message = "the server names another organisation root than the one the join link carried"
        warnings.append(TrustWarning("root_mismatch", message).to_json())
    return {**result, "member_id": result["follower_id"], "root": target.root, "warnings": warnings}


def _partners_unavailable(what: str, exc: ApiError) -> TrustWarning:
    return TrustWarning(
        "partners_unavailable",
        f"{what} could not be read ({exc}): the last verified are kept, partners' "
        "members added since are not known yet",
    )
