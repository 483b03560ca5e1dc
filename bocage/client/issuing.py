"""What this device signs (docs/protocol.md, sections 13 and 14): pure builders, no I/O.

Every statement the Python client makes comes from here, signed with the device key, the
member's identity key or a one-time ticket key, so the CLI, the Messenger and the tests build
the exact shapes chalicelib/domain/statements.py checks.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from nacl.signing import SigningKey

from chalicelib.domain.activation_link import ActivationTarget
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.followers import JoinTarget
from chalicelib.domain.ids import device_id_for, follower_id_for, looks_like
from chalicelib.domain.partners import PARTNER_TICKET_SECONDS, PartnerTarget
from chalicelib.domain.statements import (
    DEVICE_CERT,
    FOLLOWER_CERT,
    HISTORY,
    MEMBER_CERT,
    MEMBERSHIP,
    NOTIFY,
    PARTNER_ACCEPT,
    PARTNERSHIP,
    PARTNERSHIP_END,
    REMOVAL,
    REVOCATION,
    ROLE,
    TICKET,
    fingerprint,
    public_key_of,
    sign_statement,
    statement_hash,
)

MEMBER_TICKET_SECONDS = 7 * 86400
DEVICE_TICKET_SECONDS = 86400


class EnrolmentError(ValueError):
    """An activation URL or code that lacks what this kind of activation needs."""


@dataclass(frozen=True)
class Ticket:
    """A ticket and its private seed: the statement goes to the server, the seed in the fragment."""

    statement: dict[str, Any]
    seed: bytes

    @property
    def fragment_seed(self) -> str:
        return b64e(self.seed)


def seed_of(key: SigningKey) -> bytes:
    return bytes(key)


def new_identity() -> SigningKey:
    """A member's identity key (IK), made on their first device at activation."""
    return SigningKey.generate()


def member_ticket(
    device: SigningKey, device_id: str, org_id: str, role: str, display_name: str, now: int
) -> Ticket:
    seed = secrets.token_bytes(32)
    body = {
        "purpose": TICKET,
        "org_id": org_id,
        "grant": "member",
        "ticket_key": public_key_of(seed),
        "role": role,
        "display_name": display_name,
        "issuer_device": device_id,
        "issued_at": now,
        "expires_at": now + MEMBER_TICKET_SECONDS,
    }
    return Ticket(sign_statement(body, bytes(device)), seed)


def device_ticket(device: SigningKey, device_id: str, org_id: str, member_id: str, now: int) -> Ticket:
    seed = secrets.token_bytes(32)
    body = {
        "purpose": TICKET,
        "org_id": org_id,
        "grant": "device",
        "ticket_key": public_key_of(seed),
        "member_id": member_id,
        "issuer_device": device_id,
        "issued_at": now,
        "expires_at": now + DEVICE_TICKET_SECONDS,
    }
    return Ticket(sign_statement(body, bytes(device)), seed)


@dataclass(frozen=True)
class Enrolment:
    """What an activating device presents (13.5), and the identity key it keeps (None if linked)."""

    member_cert: dict[str, Any] | None
    device_cert: dict[str, Any]
    identity: SigningKey | None
    root: str  # the fingerprint to pin


def enrol(
    target: ActivationTarget,
    *,
    device_id: str,
    sign_public_key: str,
    box_public_key: str,
    display_name: str | None,
    now: int,
    identity: SigningKey | None = None,
) -> Enrolment:
    """The certificates for an activation, from what the URL's fragment carried (13.4).

    ``identity``: the identity key of an earlier attempt whose answer was lost (a retry)."""
    if (
        not target.org
        or not target.member
        or not looks_like(target.org, "o")
        or not looks_like(target.member, "m")
    ):
        raise EnrolmentError("the activation URL carries no org and member: use the full URL (protocol v2)")
    keys = {"sign_public_key": sign_public_key, "box_public_key": box_public_key}
    if target.ticket and target.ik:
        return _linked(target, device_id, keys, now)
    identity = identity or new_identity()
    ik = public_key_of(bytes(identity))
    first_owner = not target.ticket and not target.root
    ticket_seed = b64d(target.ticket) if target.ticket else None
    if target.ticket and not target.root:
        raise EnrolmentError("the activation URL carries a ticket but no root fingerprint")
    name = _display_name(target, display_name)
    body = {
        "purpose": MEMBER_CERT,
        "org_id": target.org,
        "member_id": target.member,
        "identity_key": ik,
        "display_name": name,
        "ticket_key": None if ticket_seed is None else public_key_of(ticket_seed),
        "root": first_owner,
        "issued_at": now,
    }
    member_cert = sign_statement(body, ticket_seed or bytes(identity))
    device_cert = _device_cert(target, device_id, keys, ik, None, now, bytes(identity))
    root = fingerprint(ik) if first_owner else str(target.root)
    return Enrolment(member_cert, device_cert, identity, root)


def _display_name(target: ActivationTarget, proposed: str | None) -> str:
    """The admin's choice from the link stands (13.5); only the first owner names themselves."""
    chosen, name = (target.name or "").strip(), (proposed or "").strip()
    if chosen and name and name != chosen:
        raise EnrolmentError(
            f"your admin named you {chosen!r} and that name stands: leave out --name, or ask an admin"
            " to invite you again under another name"
        )
    if not (chosen or name):
        raise EnrolmentError("a display name is needed (--name)")
    return chosen or name


def _linked(target: ActivationTarget, device_id: str, keys: dict[str, str], now: int) -> Enrolment:
    seed = b64d(str(target.ticket))
    device_cert = _device_cert(target, device_id, keys, str(target.ik), public_key_of(seed), now, seed)
    if not target.root:
        raise EnrolmentError("the link URL carries no root fingerprint")
    return Enrolment(None, device_cert, None, target.root)


def _device_cert(
    target: ActivationTarget,
    device_id: str,
    keys: dict[str, str],
    identity_key: str,
    ticket_key: str | None,
    now: int,
    signer: bytes,
) -> dict[str, Any]:
    body = {
        "purpose": DEVICE_CERT,
        "org_id": target.org,
        "member_id": target.member,
        "device_id": device_id,
        **keys,
        "identity_key": identity_key,
        "ticket_key": ticket_key,
        "issued_at": now,
    }
    return sign_statement(body, signer)


def role_statement(
    device: SigningKey, device_id: str, member: dict[str, Any], role: str, serial: int, now: int
) -> dict[str, Any]:
    """``member``: the target's ``GET /members`` entry (its certificate names the IK)."""
    body = {
        "purpose": ROLE,
        "org_id": member["org_id"],
        "member_id": member["member_id"],
        "identity_key": member["member_cert"]["identity_key"],
        "role": role,
        "serial": serial,
        "issued_at": now,
        "by_device": device_id,
    }
    return sign_statement(body, bytes(device))


def removal(device: SigningKey, device_id: str, member: dict[str, Any], now: int) -> dict[str, Any]:
    body = {
        "purpose": REMOVAL,
        "org_id": member["org_id"],
        "member_id": member["member_id"],
        "identity_key": member["member_cert"]["identity_key"],
        "issued_at": now,
        "by_device": device_id,
    }
    return sign_statement(body, bytes(device))


def revocation(device: SigningKey, device_id: str, target: dict[str, Any], now: int) -> dict[str, Any]:
    """``target``: the revoked device's ``GET /members`` entry."""
    body = {
        "purpose": REVOCATION,
        "org_id": target["org_id"],
        "member_id": target["member_id"],
        "device_id": target["device_id"],
        "sign_public_key": target["sign_public_key"],
        "issued_at": now,
        "by_device": device_id,
    }
    return sign_statement(body, bytes(device))


def notify_choice(
    device: SigningKey,
    device_id: str,
    *,
    org_id: str,
    channel_id: str,
    member_id: str,
    mentions_only: bool,
    now: int,
) -> dict[str, Any]:
    """This member's "@mention me only" choice for one channel (protocol section 17)."""
    body = {
        "purpose": NOTIFY,
        "org_id": org_id,
        "channel_id": channel_id,
        "member_id": member_id,
        "mentions_only": mentions_only,
        "issued_at": now,
        "by_device": device_id,
    }
    return sign_statement(body, bytes(device))


def history_choice(
    device: SigningKey, device_id: str, *, org_id: str, channel_id: str, days: int, now: int
) -> dict[str, Any]:
    """A manager's choice of how many days of a public tribe new followers read (section 23)."""
    body = {
        "purpose": HISTORY,
        "org_id": org_id,
        "channel_id": channel_id,
        "days": days,
        "issued_at": now,
        "by_device": device_id,
    }
    return sign_statement(body, bytes(device))


def membership_entry(
    device: SigningKey,
    device_id: str,
    *,
    org_id: str,
    channel_id: str,
    previous: dict[str, Any] | None,
    op: str,
    member_id: str,
    role: str | None,
    kind: str | None = None,
    now: int,
) -> dict[str, Any]:
    """The next entry of a channel's log after ``previous`` (None: the creation, entry 0)."""
    body = {
        "purpose": MEMBERSHIP,
        "org_id": org_id,
        "channel_id": channel_id,
        "seq": 0 if previous is None else int(previous["seq"]) + 1,
        "prev": None if previous is None else statement_hash(previous),
        "op": op,
        "member_id": member_id,
        "role": role,
        "kind": kind,
        "by_device": device_id,
        "issued_at": now,
    }
    return sign_statement(body, bytes(device))


# -- public tribes and followers (docs/protocol.md, 16) ------------------------------------------

#: A poster's default lifetime; a join ticket may last up to five years.
FOLLOWER_TICKET_SECONDS = 365 * 86400


def follower_ticket(
    device: SigningKey, device_id: str, org_id: str, channel_id: str, now: int, *, lifetime: int
) -> Ticket:
    """A tribe's multi-use join ticket, signed by a manager's device: its seed goes on the poster."""
    seed = secrets.token_bytes(32)
    body = {
        "purpose": TICKET,
        "org_id": org_id,
        "grant": "follower",
        "ticket_key": public_key_of(seed),
        "channel_id": channel_id,
        "issuer_device": device_id,
        "issued_at": now,
        "expires_at": now + lifetime,
    }
    return Ticket(sign_statement(body, bytes(device)), seed)


def follower_cert(
    target: JoinTarget, *, sign_public_key: str, box_public_key: str, display_name: str, now: int
) -> dict[str, Any]:
    """A joining device's certificate, signed with the join link's ticket key (16.2)."""
    raw = b64d(sign_public_key)
    body = {
        "purpose": FOLLOWER_CERT,
        "org_id": target.org,
        "channel_id": target.channel,
        "follower_id": follower_id_for(raw),
        "device_id": device_id_for(raw),
        "sign_public_key": sign_public_key,
        "box_public_key": box_public_key,
        "display_name": display_name,
        "ticket_key": public_key_of(target.ticket_seed),
        "issued_at": now,
    }
    return sign_statement(body, target.ticket_seed)


# -- partner organisations (docs/protocol.md, 22) ----------------------------------------------


def partner_ticket(
    device: SigningKey, device_id: str, org_id: str, now: int, *, allow_tribes: bool
) -> Ticket:
    """An admin's partner invitation: its seed goes only into the code and link."""
    seed = secrets.token_bytes(32)
    body = {
        "purpose": TICKET,
        "org_id": org_id,
        "grant": "partner",
        "ticket_key": public_key_of(seed),
        "allow_tribes": allow_tribes,
        "issuer_device": device_id,
        "issued_at": now,
        "expires_at": now + PARTNER_TICKET_SECONDS,
    }
    return Ticket(sign_statement(body, bytes(device)), seed)


def partner_acceptance(
    target: PartnerTarget, org_id: str, root: str, device_id: str, now: int
) -> dict[str, Any]:
    """The accepting organisation's root, signed with the code's ticket key: the inviter's proof
    that this root came from whoever held the code."""
    body = {
        "purpose": PARTNER_ACCEPT,
        "org_id": org_id,
        "partner_org_id": target.org,
        "root": root,
        "ticket_key": public_key_of(target.ticket_seed),
        "by_device": device_id,
        "issued_at": now,
    }
    return sign_statement(body, target.ticket_seed)


def partnership(
    device: SigningKey,
    device_id: str,
    org_id: str,
    partner_org_id: str,
    partner_root: str,
    ticket_key: str,
    now: int,
    *,
    allow_tribes: bool,
) -> dict[str, Any]:
    """This organisation's statement pinning a partner's root (signed by an admin's device)."""
    body = {
        "purpose": PARTNERSHIP,
        "org_id": org_id,
        "partner_org_id": partner_org_id,
        "partner_root": partner_root,
        "allow_tribes": allow_tribes,
        "ticket_key": ticket_key,
        "by_device": device_id,
        "issued_at": now,
    }
    return sign_statement(body, bytes(device))


def partnership_end(
    device: SigningKey, device_id: str, org_id: str, partner_org_id: str, ticket_key: str, now: int
) -> dict[str, Any]:
    """The end of the partnership made by the invitation ``ticket_key`` (22.7: it names it)."""
    body = {
        "purpose": PARTNERSHIP_END,
        "org_id": org_id,
        "partner_org_id": partner_org_id,
        "ticket_key": ticket_key,
        "by_device": device_id,
        "issued_at": now,
    }
    return sign_statement(body, bytes(device))
