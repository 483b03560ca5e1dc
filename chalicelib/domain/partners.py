"""Partner organisations (docs/protocol.md, section 22): the invitation, the two signed
partnership statements that pin each side's root in the other, and the end.

Pure and shared by the server (which refuses with a 400 what no honest client sends) and the
Python client (which pins a partner's root only through a statement of its own organisation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.encoding import b64d
from chalicelib.domain.ids import looks_like
from chalicelib.domain.statements import (
    PARTNER_ACCEPT,
    PARTNERSHIP,
    PARTNERSHIP_END,
    PARTNERSHIP_END_V2,
    TICKET,
    StatementError,
    check_shape,
    verify_checked,
    verify_statement,
)

#: How long a partner invitation lasts by default, and at most (as a member ticket, 13.3).
PARTNER_TICKET_SECONDS = 7 * 86400
MAX_PARTNER_TICKET_SECONDS = 30 * 86400
CODE_PREFIX = "bocage-partner:v2:"


class PartnerStatus(StrEnum):
    PENDING = "pending"  # accepted by the partner, not yet countersigned by the inviter
    ACTIVE = "active"
    ENDED = "ended"


class PartnerInvitation(BaseModel):
    """An admin's partner invitation: the ticket the server keeps (never its private half)."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    code: str
    org_id: str
    ticket: dict[str, Any]
    created_by: str
    created_at: int

    @property
    def expires_at(self) -> int:
        return int(self.ticket["expires_at"])


class Partnership(BaseModel):
    """Two organisations' partnership as stored: the inviter's ticket, the acceptance signed with
    its key, each side's partnership statement and, once ended, the end statement."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    inviter: str  # org id of the side that made the invitation
    accepter: str
    ticket: dict[str, Any]
    acceptance: dict[str, Any]
    statements: dict[str, dict[str, Any]]  # org id -> that organisation's partnership statement
    end: dict[str, Any] | None = None
    created_at: int
    ended_at: int | None = None
    #: Bumped by each write, which is made on condition that it did not move since the read: an
    #: end and a countersignature racing, or two acceptances for one pair, cannot undo each other.
    version: int = 0

    @property
    def status(self) -> PartnerStatus:
        if self.end is not None:
            return PartnerStatus.ENDED
        if self.inviter in self.statements and self.accepter in self.statements:
            return PartnerStatus.ACTIVE
        return PartnerStatus.PENDING

    def other(self, org_id: str) -> str:
        return self.accepter if org_id == self.inviter else self.inviter

    def allows_tribes(self, host_org: str) -> bool:
        """Whether the host's own statement lets the partner's members into its tribes."""
        own = self.statements.get(host_org)
        return bool(own and own["allow_tribes"])


def partner_url(app_url: str, api_url: str, invitation: PartnerInvitation) -> str:
    """The invitation's link without its secret: the inviting client appends ``ticket`` and ``root``."""
    query = f"server={quote(api_url, safe='')}&code={invitation.code}&org={invitation.org_id}"
    return f"{app_url}/#/partner?{query}"


@dataclass(frozen=True)
class PartnerTarget:
    """What an accepting admin's device reads from a partner code or link."""

    code: str
    org: str
    ticket_seed: bytes
    root: str
    server: str | None = None


def partner_code(code: str, org_id: str, ticket_seed: str, root: str) -> str:
    """The invitation as one line to paste (the link's content without the server)."""
    return f"{CODE_PREFIX}{code}:{org_id}:{ticket_seed}:{root}"


def parse_partner(text: str) -> PartnerTarget:
    """A partner code or link; ValueError naming what is wrong."""
    text = text.strip()
    server: str | None = None
    if text.startswith(CODE_PREFIX):
        parts = text[len(CODE_PREFIX) :].split(":")
        if len(parts) != 4:
            raise ValueError("a partner code has four parts after bocage-partner:v2:")
        params = dict(zip(("code", "org", "ticket", "root"), parts, strict=True))
    else:
        fragment = urlsplit(text).fragment
        if not fragment.startswith("/partner?"):
            raise ValueError("not a partner invitation: give its code (bocage-partner:v2:...) or link")
        params = {name: values[0] for name, values in parse_qs(fragment.split("?", 1)[1]).items()}
        server = params.get("server", "").rstrip("/") or None
    missing = [n for n in ("code", "org", "ticket", "root") if not params.get(n)]
    if missing:
        raise ValueError(f"this partner invitation lacks {', '.join(missing)}: copy all of it")
    if not looks_like(params["org"], "o") or not looks_like(params["code"], "p"):
        raise ValueError("this partner invitation names no organisation or code")
    try:
        seed, root = b64d(params["ticket"]), b64d(params["root"])
    except ValueError as exc:
        raise ValueError("this partner invitation's ticket or root is not base64url") from exc
    if len(seed) != 32 or len(root) != 32:
        raise ValueError("this partner invitation's ticket and root must be 32 bytes each")
    return PartnerTarget(params["code"], params["org"], seed, params["root"], server)


@dataclass(frozen=True)
class ContactCard:
    """A partner's member's contact card (22.6): who they are, by their own device's say. The
    ``fingerprint`` (of their identity key, 13.2) is what the adding device checks the server's
    listing against; the name is only a hint until that check passes."""

    org_id: str
    member_id: str
    name: str
    fingerprint: str


def card_url(app_url: str, card: ContactCard) -> str:
    query = urlencode(
        {"org": card.org_id, "member": card.member_id, "name": card.name, "fp": card.fingerprint}
    )
    return f"{app_url.rstrip('/')}/#/card?{query}"


def parse_card(text: str) -> ContactCard:
    """A contact card's link, as pasted or scanned; ValueError naming what is wrong."""
    fragment = urlsplit(text.strip()).fragment
    if not fragment.startswith("/card?"):
        raise ValueError("not a contact card: paste the whole link (…/#/card?org=…)")
    params = {name: values[0] for name, values in parse_qs(fragment.split("?", 1)[1]).items()}
    missing = [n for n in ("org", "member", "fp") if not params.get(n)]
    if missing:
        raise ValueError(f"this contact card lacks {', '.join(missing)}: copy all of it")
    if not looks_like(params["org"], "o") or not looks_like(params["member"], "m"):
        raise ValueError("this contact card names no organisation or member")
    try:
        key_hash = b64d(params["fp"])
    except ValueError as exc:
        raise ValueError("this contact card's fingerprint is not base64url") from exc
    if len(key_hash) != 32:
        raise ValueError("this contact card's fingerprint must be 32 bytes")
    return ContactCard(params["org"], params["member"], params.get("name", ""), params["fp"])


# -- checks shared by the server and the clients ----------------------------------------------------


def verify_partner_ticket(ticket: object, *, org_id: str, issuer_sign_key: str) -> dict[str, Any]:
    checked = verify_statement(ticket, TICKET, issuer_sign_key)
    if checked["grant"] != "partner" or checked["org_id"] != org_id:
        raise StatementError("expected a partner ticket of this organisation")
    issued, expires = int(checked["issued_at"]), int(checked["expires_at"])
    if not issued < expires <= issued + MAX_PARTNER_TICKET_SECONDS:
        raise StatementError("a partner ticket expires after it is issued, within 30 days")
    return checked


def verify_acceptance(acceptance: object, ticket: dict[str, Any], accepter: str) -> dict[str, Any]:
    """The acceptance must be signed by the ticket's key: only whoever held the code could."""
    checked = check_shape(acceptance, PARTNER_ACCEPT)
    if checked["ticket_key"] != ticket["ticket_key"]:
        raise StatementError("the acceptance names another ticket")
    verify_checked(checked, str(ticket["ticket_key"]))
    if checked["org_id"] != accepter or checked["partner_org_id"] != ticket["org_id"]:
        raise StatementError("the acceptance names other organisations")
    if int(checked["issued_at"]) > int(ticket["expires_at"]):
        raise StatementError("the acceptance was signed after the invitation expired")
    return checked


def verify_partnership(
    statement: object, *, org_id: str, partner_org_id: str, ticket_key: str, signer_key: str
) -> dict[str, Any]:
    """One side's partnership statement, signed by a device whose key is ``signer_key``."""
    checked = verify_statement(statement, PARTNERSHIP, signer_key)
    if (checked["org_id"], checked["partner_org_id"]) != (org_id, partner_org_id):
        raise StatementError("the partnership statement names other organisations")
    if checked["ticket_key"] != ticket_key:
        raise StatementError("the partnership statement names another invitation")
    return checked


def end_shape(statement: object) -> dict[str, Any]:
    """An end statement, its shape checked: a v3 one names its invitation (``ticket_key``); a v2
    one, signed before ends did, names none (clients still read those stored, 22.7)."""
    purpose = statement.get("purpose") if isinstance(statement, Mapping) else None
    return check_shape(statement, PARTNERSHIP_END_V2 if purpose == PARTNERSHIP_END_V2 else PARTNERSHIP_END)


def verify_end(statement: object, *, org_id: str, partner_org_id: str, signer_key: str) -> dict[str, Any]:
    checked = verify_checked(end_shape(statement), signer_key)
    if (checked["org_id"], checked["partner_org_id"]) != (org_id, partner_org_id):
        raise StatementError("the end statement names other organisations")
    return checked
