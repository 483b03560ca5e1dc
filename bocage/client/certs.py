"""Chain evaluation: which members and devices of an organisation this client can trust.

Pure and I/O-free (docs/protocol.md, sections 13 and 15). Given what ``GET /members`` returns
(every member certificate, ticket, role statement and removal; every device certificate, link
ticket and revocation), the root fingerprint pinned at activation and what the viewer verified
itself, it decides, statement by statement, who is certified, with which role at which time,
and which devices may receive sender keys. Nothing is half-trusted: a statement that fails any
check is ignored and reported. The server's own fields (role, status, keys) are only compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from chalicelib.domain.encoding import b64d
from chalicelib.domain.ids import device_id_for
from chalicelib.domain.statements import (
    DEVICE_CERT,
    MEMBER_CERT,
    REMOVAL,
    REVOCATION,
    ROLE,
    TICKET,
    StatementError,
    check_shape,
    fingerprint,
    sign_statement,
    statement_hash,
    verify_checked,
    verify_statement,
)
from chalicelib.domain.x25519 import is_small_order

T = TypeVar("T")

__all__ = ["TrustView", "TrustWarning", "sign_statement", "verify_statement"]

MAX_DEPTH = 16
FOREVER = 2**53
ADMIN_ROLES = ("admin", "owner")
_GRANTS = {"admin": ("guest", "member", "admin"), "owner": ("guest", "member", "admin", "owner")}
GUEST = "guest"


@dataclass(frozen=True)
class TrustWarning:
    """Something refused or suspicious, reported to the user (``warnings`` in ``--json``)."""

    code: str
    message: str
    member_id: str | None = None
    device_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "member_id": self.member_id,
            "device_id": self.device_id,
            "message": self.message,
        }


@dataclass(frozen=True)
class MemberTrust:
    member_id: str
    identity_key: str
    display_name: str
    base_role: str | None  # None: vouched by the server only (an e-mail invitee)
    via: str  # "root", "ticket", "server"


@dataclass(frozen=True)
class DeviceTrust:
    device_id: str
    member_id: str
    sign_public_key: str
    box_public_key: str


class _Untrusted(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TrustView:
    """The organisation as this client can verify it, evaluated lazily and memoised."""

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
    ) -> None:
        self.org_id = org_id
        self.root = root
        self._members = {str(m["member_id"]): m for m in members}
        self._devices = {str(d["device_id"]): d for d in devices}
        self._verified = dict(verified or {})
        self._seen = dict(seen or {})
        #: Revocations and removals this viewer verified before (device / member id -> date): a
        #: listing without them, or with a later date, cannot bring the device or member back.
        self._kept_revoked = dict(revoked or {})
        self._kept_removed = dict(removed or {})
        #: (member id, device id or None, kept date) per revocation or removal the listing dropped.
        self.rollbacks: list[tuple[str | None, str | None, int]] = []
        self._member_memo: dict[str, MemberTrust | _Untrusted] = {}
        self._device_memo: dict[str, DeviceTrust | _Untrusted] = {}
        self._roles_memo: dict[str, list[dict[str, Any]]] = {}
        self._removed_memo: dict[str, int | None] = {}
        self._revoked_memo: dict[str, int | None] = {}
        self._busy: set[str] = set()
        self._ticket_uses = _ticket_uses(self._members.values(), self._devices.values())

    def listed_members(self) -> list[Mapping[str, Any]]:
        """The listing's members as given (checked or not)."""
        return list(self._members.values())

    def listed_devices(self) -> list[Mapping[str, Any]]:
        return list(self._devices.values())

    def lists_member(self, member_id: str) -> bool:
        """Whether the listing names this member (checked or not)."""
        return member_id in self._members

    # -- members -------------------------------------------------------------------------------

    def member(self, member_id: str) -> MemberTrust | None:
        """The member if certified, endorsed, or verified by the viewer; else None."""
        found = self._member(member_id, 0)
        return None if isinstance(found, _Untrusted) else found

    def certified(self, member_id: str) -> bool:
        """Certified by the organisation (not merely verified by this viewer)."""
        found = self.member(member_id)
        return found is not None and (found.base_role is not None or bool(self._role_statements(found, 0)))

    def vouched_only(self, member_id: str) -> bool:
        found = self._member(member_id, 0)
        return isinstance(found, MemberTrust) and found.via == "server" and not self.certified(member_id)

    def identity_key(self, member_id: str) -> str | None:
        """The identity key the member's certificate names, checked or not (for verification)."""
        raw = self._members.get(member_id, {}).get("member_cert")
        return str(raw["identity_key"]) if isinstance(raw, Mapping) and "identity_key" in raw else None

    def _member(self, member_id: str, depth: int) -> MemberTrust | _Untrusted:
        return self._memoised(
            self._member_memo, member_id, "uncertified_member", depth, self._evaluate_member
        )

    def _memoised(
        self,
        memo: dict[str, T | _Untrusted],
        subject: str,
        code: str,
        depth: int,
        evaluate: Callable[[str, int], T],
    ) -> T | _Untrusted:
        """``evaluate`` once per subject (its verdict kept), refusing chains that loop or go deeper
        than MAX_DEPTH: a server could otherwise make a client recurse without end."""
        if subject in memo:
            return memo[subject]
        key = f"{code}:{subject}"
        if depth > MAX_DEPTH or key in self._busy:
            return _Untrusted(code, f"{subject}: the certificate chain loops or is too deep")
        self._busy.add(key)
        try:
            result: T | _Untrusted = evaluate(subject, depth)
        except _Untrusted as exc:
            result = exc
        finally:
            self._busy.discard(key)
        memo[subject] = result
        return result

    def _evaluate_member(self, member_id: str, depth: int) -> MemberTrust:
        raw = self._members.get(member_id)
        if raw is None:
            raise _Untrusted("uncertified_member", f"{member_id} is not a member of this organisation")
        cert = _checked(raw.get("member_cert"), MEMBER_CERT, member_id)
        if cert["org_id"] != self.org_id or cert["member_id"] != member_id:
            raise _Untrusted(
                "invalid_statement", f"{member_id}: the member certificate names another org or member"
            )
        identity = str(cert["identity_key"])
        self._check_identity(member_id, identity)
        trust = MemberTrust(member_id, identity, str(cert["display_name"]), None, "server")
        if cert["ticket_key"] is None:
            _verify(cert, MEMBER_CERT, identity, member_id)
            if cert["root"]:
                if fingerprint(identity) != self.root:
                    raise _Untrusted(
                        "invalid_statement", f"{member_id}: a root certificate that is not the pinned root"
                    )
                return MemberTrust(member_id, identity, trust.display_name, "owner", "root")
            return trust
        if cert["root"]:
            raise _Untrusted("invalid_statement", f"{member_id}: a root certificate signed by a ticket")
        ticket = self._ticket(raw.get("ticket"), cert, "member", member_id, depth)
        return MemberTrust(member_id, identity, trust.display_name, str(ticket["role"]), "ticket")

    def _check_identity(self, member_id: str, identity: str) -> None:
        expected = self._verified.get(member_id) or self._seen.get(member_id)
        if expected is not None and expected != identity:
            verified = member_id in self._verified
            raise _Untrusted(
                "identity_changed",
                f"{member_id}'s identity key changed{' since you verified it' if verified else ''}: "
                "verify their safety number again (bocage verify)",
            )

    def _ticket(
        self, raw: object, cert: Mapping[str, Any], grant: str, member_id: str, depth: int
    ) -> dict[str, Any]:
        """The ticket behind a certificate signed by a ticket key, checked up the chain."""
        ticket = _checked(raw, TICKET, member_id)
        if (
            ticket["grant"] != grant
            or ticket["ticket_key"] != cert["ticket_key"]
            or ticket["org_id"] != self.org_id
        ):
            raise _Untrusted("invalid_statement", f"{member_id}: the ticket does not match the certificate")
        if self._ticket_uses.get(str(ticket["ticket_key"]), 0) > 1:
            raise _Untrusted(
                "ticket_reused", f"{member_id}: this ticket certified more than one member or device"
            )
        _verify(cert, str(cert["purpose"]), str(cert["ticket_key"]), member_id)
        if int(cert["issued_at"]) > int(ticket["expires_at"]):
            raise _Untrusted("invalid_statement", f"{member_id}: certified after the ticket expired")
        issuer = self._signer(str(ticket["issuer_device"]), int(ticket["issued_at"]), depth + 1)
        _verify(ticket, TICKET, issuer.sign_public_key, member_id)
        if grant == "device":
            if ticket["member_id"] != member_id or issuer.member_id != member_id:
                raise _Untrusted(
                    "uncertified_device", f"{member_id}: a device linked by another member's device"
                )
            return ticket
        allowed = _GRANTS.get(self._role_at(issuer.member_id, int(ticket["issued_at"]), depth + 1) or "", ())
        if ticket["role"] not in allowed:
            raise _Untrusted(
                "uncertified_member", f"{member_id}: invited by someone who could not grant that role"
            )
        return ticket

    # -- roles, removals -----------------------------------------------------------------------

    def role(self, member_id: str, at: int = FOREVER) -> str | None:
        """The member's organisation role at ``at`` (now by default); None if not certified."""
        return self._role_at(member_id, at, 0)

    def _role_at(self, member_id: str, at: int, depth: int) -> str | None:
        trust = self._member(member_id, depth)
        if isinstance(trust, _Untrusted):
            return None
        best: dict[str, Any] | None = None
        for statement in self._role_statements(trust, depth):
            if int(statement["issued_at"]) <= at and (best is None or _ranks_before(statement, best)):
                best = statement
        if best is not None:
            return str(best["role"])
        if trust.base_role is None and member_id in self._verified and at == FOREVER:
            return "member"
        return trust.base_role

    def _role_statements(self, trust: MemberTrust, depth: int) -> list[dict[str, Any]]:
        if trust.member_id in self._roles_memo:
            return self._roles_memo[trust.member_id]
        valid = []
        for raw in self._members[trust.member_id].get("role_statements") or []:
            try:
                valid.append(self._role_statement(raw, trust, depth))
            except _Untrusted:
                continue
        valid = _same_side(valid, trust.base_role)
        self._roles_memo[trust.member_id] = valid
        return valid

    def _role_statement(self, raw: object, trust: MemberTrust, depth: int) -> dict[str, Any]:
        statement = _checked(raw, ROLE, trust.member_id)
        if (statement["org_id"], statement["member_id"], statement["identity_key"]) != (
            self.org_id,
            trust.member_id,
            trust.identity_key,
        ):
            raise _Untrusted("invalid_statement", f"{trust.member_id}: a role statement for someone else")
        at = int(statement["issued_at"])
        signer = self._signer(str(statement["by_device"]), at, depth + 1)
        if signer.member_id == trust.member_id:
            raise _Untrusted("invalid_statement", f"{trust.member_id}: a member cannot sign their own role")
        need = ("owner",) if statement["role"] == "owner" else ADMIN_ROLES
        if self._role_at(signer.member_id, at, depth + 1) not in need:
            raise _Untrusted(
                "invalid_statement", f"{trust.member_id}: a role statement by someone not entitled"
            )
        return _verify(statement, ROLE, signer.sign_public_key, trust.member_id)

    def removed_at(self, member_id: str) -> int | None:
        """When a valid removal statement removed the member, if one did."""
        if member_id not in self._removed_memo:
            self._removed_memo[member_id] = None
            listed = self._removal(member_id, 0)
            self._removed_memo[member_id] = self._kept((member_id, None), listed, self._kept_removed)
        return self._removed_memo[member_id]

    def _kept(
        self, who: tuple[str | None, str | None], listed: int | None, kept: Mapping[str, int]
    ) -> int | None:
        """The earlier of the listed date and the one kept for ``who`` (member id, and device id
        for a revocation); a kept one the listing lost, or dates later, is a rollback."""
        before = kept.get(who[1] or str(who[0]))
        if before is None:
            return listed
        if listed is None or listed > before:
            self.rollbacks.append((*who, before))
            return before
        return listed

    def _removal(self, member_id: str, depth: int) -> int | None:
        raw = self._members.get(member_id, {}).get("removal")
        trust = self._member(member_id, depth)
        if raw is None or isinstance(trust, _Untrusted):
            return None
        try:
            statement = _checked(raw, REMOVAL, member_id)
            at = int(statement["issued_at"])
            signer = self._signer(str(statement["by_device"]), at, depth + 1)
            need = ("owner",) if self._role_at(member_id, at, depth + 1) == "owner" else ADMIN_ROLES
            if (statement["org_id"], statement["identity_key"]) != (self.org_id, trust.identity_key) or (
                self._role_at(signer.member_id, at, depth + 1) not in need
            ):
                return None
            _verify(statement, REMOVAL, signer.sign_public_key, member_id)
        except _Untrusted:
            return None
        return at

    # -- devices ---------------------------------------------------------------------------------

    def device(self, device_id: str) -> DeviceTrust | None:
        """The device if its certificate chains to a trusted member (revoked or not)."""
        found = self._device(device_id, 0)
        return None if isinstance(found, _Untrusted) else found

    def why_not(self, device_id: str) -> TrustWarning | None:
        """Why a device is not trusted (None if it is)."""
        found = self._device(device_id, 0)
        if not isinstance(found, _Untrusted):
            return None
        member_id = self._devices.get(device_id, {}).get("member_id")
        return TrustWarning(found.code, str(found), str(member_id) if member_id else None, device_id)

    def why_not_member(self, member_id: str) -> TrustWarning | None:
        found = self._member(member_id, 0)
        if isinstance(found, _Untrusted):
            return TrustWarning(found.code, str(found), member_id)
        if found.via == "server" and self._role_at(member_id, FOREVER, 0) is None:
            message = (
                f"{member_id} ({found.display_name}) is vouched by the server only: verify or endorse them"
            )
            return TrustWarning("server_vouched", message, member_id)
        return None

    def usable(self, device_id: str, at: int = FOREVER) -> DeviceTrust | None:
        """A trusted device that is neither revoked nor of a removed member at ``at``."""
        found = self.device(device_id)
        if found is None or not self._active(found, at):
            return None
        return found

    def _active(self, device: DeviceTrust, at: int) -> bool:
        revoked = self.revoked_at(device.device_id)
        removed = self.removed_at(device.member_id)
        if self._role_at(device.member_id, FOREVER, 0) is None:
            return False
        return (revoked is None or at < revoked) and (removed is None or at < removed)

    def _signer(self, device_id: str, at: int, depth: int) -> DeviceTrust:
        found = self._device(device_id, depth)
        if isinstance(found, _Untrusted):
            raise _Untrusted(found.code, f"signed by {device_id}, not a certified device: {found}")
        revoked, removed = self.revoked_at(device_id), self.removed_at(found.member_id)
        if (revoked is not None and at >= revoked) or (removed is not None and at >= removed):
            raise _Untrusted("invalid_statement", f"signed by {device_id} after its revocation or removal")
        return found

    def _device(self, device_id: str, depth: int) -> DeviceTrust | _Untrusted:
        return self._memoised(
            self._device_memo, device_id, "uncertified_device", depth, self._evaluate_device
        )

    def _evaluate_device(self, device_id: str, depth: int) -> DeviceTrust:
        raw = self._devices.get(device_id)
        if raw is None:
            raise _Untrusted("uncertified_device", f"{device_id} is not a device of this organisation")
        cert = _checked(raw.get("device_cert"), DEVICE_CERT, str(raw.get("member_id")), device_id)
        member_id = str(cert["member_id"])
        _same_device(raw, cert, self.org_id)
        member = self._member(member_id, depth + 1)
        if isinstance(member, _Untrusted):
            raise _Untrusted("uncertified_device", f"{device_id}: its member is not trusted: {member}")
        if cert["identity_key"] != member.identity_key:
            raise _Untrusted("uncertified_device", f"{device_id}: certified by another identity key")
        if cert["ticket_key"] is None:
            _verify(cert, DEVICE_CERT, member.identity_key, member_id, device_id)
        else:
            self._ticket(raw.get("ticket"), cert, "device", member_id, depth)
        return DeviceTrust(device_id, member_id, str(cert["sign_public_key"]), str(cert["box_public_key"]))

    def revoked_at(self, device_id: str) -> int | None:
        if device_id not in self._revoked_memo:
            self._revoked_memo[device_id] = None
            member_id = self._devices.get(device_id, {}).get("member_id")
            owner = (str(member_id) if member_id else None, device_id)
            self._revoked_memo[device_id] = self._kept(owner, self._revocation(device_id), self._kept_revoked)
        return self._revoked_memo[device_id]

    def _revocation(self, device_id: str) -> int | None:
        raw = self._devices.get(device_id, {}).get("revocation")
        device = self.device(device_id)
        if raw is None or device is None:
            return None
        try:
            statement = _checked(raw, REVOCATION, device.member_id, device_id)
            at = int(statement["issued_at"])
            signer = self._signer(str(statement["by_device"]), at, 1)
            ok_signer = (
                signer.member_id == device.member_id or self._role_at(signer.member_id, at, 1) in ADMIN_ROLES
            )
            fields = (
                statement["org_id"],
                statement["member_id"],
                statement["device_id"],
                statement["sign_public_key"],
            )
            if not ok_signer or fields != (self.org_id, device.member_id, device_id, device.sign_public_key):
                return None
            _verify(statement, REVOCATION, signer.sign_public_key, device.member_id, device_id)
        except _Untrusted:
            return None
        return at

    # -- the membership log's view of the organisation (chalicelib.domain.membership_log) ----

    def signer(self, device_id: str, at: int) -> tuple[str, str] | None:
        found = self.usable(device_id, at)
        return None if found is None else (found.member_id, found.sign_public_key)

    def org_role(self, member_id: str, at: int) -> str | None:
        removed = self.removed_at(member_id)
        if removed is not None and at >= removed:
            return None
        return self._role_at(member_id, at, 0)

    def device_ids(self) -> list[str]:
        """Every device the listing named (trusted or not: ``usable`` decides)."""
        return list(self._devices)

    def may_join(self, member_id: str, at: int) -> bool:
        """Certified, and not yet removed at ``at`` (an entry's date: section 14)."""
        removed = self.removed_at(member_id)
        return self._role_at(member_id, FOREVER, 0) is not None and (removed is None or at < removed)

    def tribes_open_to(self, member_id: str) -> bool:
        return True  # the organisation's own members; a partner's are judged by bocage/client/shared.py

    def unplaced(self, member_id: str) -> bool:
        return False  # a follower's view says otherwise (bocage/client/shared.py)

    def now(self) -> int:
        return int(time.time())  # a follower's view is given the client's clock (shared.py)


def _same_side(statements: list[dict[str, Any]], base_role: str | None) -> list[dict[str, Any]]:
    """A guest stays a guest and a member never becomes one (docs/protocol.md, 21): the role the
    invitation's ticket signed, or for an e-mail invitee their first role statement, fixes the
    side; a later statement across it is ignored, whoever signed it."""
    side = None if base_role is None else base_role == GUEST
    kept = []
    for statement in sorted(statements, key=lambda s: (int(s["serial"]), statement_hash(s))):
        if side is None:
            side = statement["role"] == GUEST
        if (statement["role"] == GUEST) == side:
            kept.append(statement)
    return kept


def _ranks_before(statement: Mapping[str, Any], best: Mapping[str, Any]) -> bool:
    """Highest serial wins; equal serials: the hash that sorts first."""
    if statement["serial"] != best["serial"]:
        return int(statement["serial"]) > int(best["serial"])
    return statement_hash(statement) < statement_hash(best)


def _checked(
    raw: object, purpose: str, member_id: str | None, device_id: str | None = None
) -> dict[str, Any]:
    try:
        return check_shape(raw, purpose)
    except StatementError as exc:
        code = "uncertified_device" if device_id else "uncertified_member"
        raise _Untrusted(
            code if raw is None else "invalid_statement", f"{device_id or member_id}: {exc}"
        ) from exc


def _verify(
    statement: Mapping[str, Any], purpose: str, key: str, member_id: str, device_id: str | None = None
) -> dict[str, Any]:
    try:
        return verify_checked(dict(statement), key)  # every caller checked the shape first
    except StatementError as exc:
        raise _Untrusted("invalid_statement", f"{device_id or member_id}: {exc}") from exc


def _same_device(raw: Mapping[str, Any], cert: Mapping[str, Any], org_id: str) -> None:
    """The certificate is for this device, with the keys the server lists, in this org."""
    device_id = str(raw.get("device_id"))
    if (
        cert["org_id"] != org_id
        or cert["device_id"] != device_id
        or cert["member_id"] != raw.get("member_id")
    ):
        raise _Untrusted(
            "invalid_statement", f"{device_id}: the certificate names another org, member or device"
        )
    if device_id_for(b64d(str(cert["sign_public_key"]))) != device_id:
        raise _Untrusted("uncertified_device", f"{device_id}: the id is not derived from the certified key")
    if (
        raw.get("sign_public_key") != cert["sign_public_key"]
        or raw.get("box_public_key") != cert["box_public_key"]
    ):
        raise _Untrusted("uncertified_device", f"{device_id}: its keys differ from its certificate")
    if is_small_order(b64d(str(cert["box_public_key"]))):
        raise _Untrusted("uncertified_device", f"{device_id}: a low-order box key")


def _ticket_uses(
    members: Iterable[Mapping[str, Any]], devices: Iterable[Mapping[str, Any]]
) -> dict[str, int]:
    """How many certificates name each ticket key (more than one: all of them are refused)."""
    uses: dict[str, int] = {}
    for holder, field in [*((m, "member_cert") for m in members), *((d, "device_cert") for d in devices)]:
        cert = holder.get(field)
        if isinstance(cert, Mapping) and isinstance(cert.get("ticket_key"), str):
            uses[cert["ticket_key"]] = uses.get(cert["ticket_key"], 0) + 1
    return uses
