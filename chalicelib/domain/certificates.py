"""What the server checks of certificates, tickets and statements (docs/protocol.md, 13.3-13.9).

Defence in depth: clients verify every chain themselves (bocage/client/certs.py); the server
refuses, with a clear 400, what no honest client would send, so that a bug or an old client
cannot store an unverifiable organisation. Pure: the services pass in the records.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.encoding import b64d
from chalicelib.domain.ids import device_id_for
from chalicelib.domain.invitation import Invitation
from chalicelib.domain.organisation import Device, Member
from chalicelib.domain.statements import (
    DEVICE_CERT,
    MEMBER_CERT,
    REMOVAL,
    REVOCATION,
    ROLE,
    TICKET,
    V1_MESSAGE,
    StatementError,
    check_shape,
    verify_statement,
)
from chalicelib.domain.x25519 import UnsafeBoxKey, check_box_public_key
from chalicelib.errors import BadRequest

TICKET_CLOCK_SKEW = 300
MAX_TICKET_SECONDS = 30 * 86400


def _verified(statement: object, purpose: str, key: str, what: str) -> dict[str, Any]:
    if statement is None:
        raise BadRequest(f"{what} is required: {V1_MESSAGE}")
    try:
        return verify_statement(statement, purpose, key)
    except StatementError as exc:
        raise BadRequest(f"{what}: {exc}") from exc


def _signer_key(statement: object, purpose: str, field: str, what: str) -> str:
    """The key a statement names as its own signer (checked for shape first)."""
    try:
        return str(check_shape(statement, purpose)[field])
    except StatementError as exc:
        raise BadRequest(f"{what}: {exc}") from exc


def check_ticket(
    ticket: object, issuer: Device, now: int, *, role: str | None = None, display_name: str | None = None
) -> dict[str, Any]:
    """A ticket posted by ``issuer``'s device: for a member invitation (``role`` given) or a link."""
    checked = _verified(ticket, TICKET, issuer.sign_public_key, "ticket")
    grant = "member" if role is not None else "device"
    if (
        checked["grant"] != grant
        or checked["org_id"] != issuer.org_id
        or checked["issuer_device"] != issuer.device_id
    ):
        raise BadRequest(
            f"ticket: expected a {grant} ticket of this organisation, signed by the calling device"
        )
    if grant == "member" and (checked["role"] != role or checked["display_name"] != display_name):
        raise BadRequest("ticket: its role and display_name must be the invitation's")
    if grant == "device" and checked["member_id"] != issuer.member_id:
        raise BadRequest("ticket: a device link names the calling member")
    issued, expires = int(checked["issued_at"]), int(checked["expires_at"])
    if abs(issued - now) > TICKET_CLOCK_SKEW or not now < expires <= issued + MAX_TICKET_SECONDS:
        raise BadRequest("ticket: issued_at must be now and expires_at later, within 30 days")
    return checked


def check_box_key(box_public_key: str) -> None:
    try:
        check_box_public_key(box_public_key)
    except UnsafeBoxKey as exc:
        raise BadRequest(str(exc)) from exc


def check_member_cert(invitation: Invitation, member_cert: object, *, first_owner: bool) -> dict[str, Any]:
    """The new member's certificate, against the invitation (13.5)."""
    ticket = invitation.ticket
    signer = (
        str(ticket["ticket_key"])
        if ticket
        else _signer_key(member_cert, MEMBER_CERT, "identity_key", "member_cert")
    )
    cert = _verified(member_cert, MEMBER_CERT, signer, "member_cert")
    if (cert["org_id"], cert["member_id"]) != (invitation.org_id, invitation.member_id):
        raise BadRequest("member_cert: it names another organisation or member")
    expected_ticket = None if ticket is None else ticket["ticket_key"]
    if cert["ticket_key"] != expected_ticket or cert["root"] is not first_owner:
        kind = "a root certificate" if first_owner else ("the invitation's ticket" if ticket else "no ticket")
        raise BadRequest(f"member_cert: this invitation needs {kind}")
    return cert


def check_device_cert(
    device_cert: object,
    *,
    org_id: str,
    member_id: str,
    identity_key: str,
    sign_public_key: str,
    box_public_key: str,
    ticket: dict[str, Any] | None,
) -> dict[str, Any]:
    """The activating device's certificate: its own keys, signed by its member's IK or the link ticket."""
    signer = identity_key if ticket is None else str(ticket["ticket_key"])
    cert = _verified(device_cert, DEVICE_CERT, signer, "device_cert")
    expected = {
        "org_id": org_id,
        "member_id": member_id,
        "identity_key": identity_key,
        "sign_public_key": sign_public_key,
        "box_public_key": box_public_key,
        "device_id": device_id_for(b64d(sign_public_key)),
        "ticket_key": None if ticket is None else ticket["ticket_key"],
    }
    wrong = sorted(name for name, value in expected.items() if cert[name] != value)
    if wrong:
        raise BadRequest(f"device_cert: {', '.join(wrong)} do not match this device and invitation")
    return cert


def check_role_statement(
    statement: object, target: Member, by: Device, role: str, serial_floor: int
) -> dict[str, Any]:
    checked = _by_device(statement, ROLE, target, by, "statement")
    if checked["role"] != role:
        raise BadRequest("statement: its role must be the request's")
    if int(checked["serial"]) <= serial_floor:
        raise BadRequest(f"statement: serial must be above {serial_floor}")
    return checked


def check_removal(statement: object, target: Member, by: Device) -> dict[str, Any]:
    return _by_device(statement, REMOVAL, target, by, "statement")


def check_revocation(statement: object, device: Device, by: Device) -> dict[str, Any]:
    checked = _verified(statement, REVOCATION, by.sign_public_key, "statement")
    fields = (checked["org_id"], checked["member_id"], checked["device_id"], checked["sign_public_key"])
    if fields != (device.org_id, device.member_id, device.device_id, device.sign_public_key):
        raise BadRequest("statement: it names another device")
    if checked["by_device"] != by.device_id:
        raise BadRequest("statement: by_device must be the calling device")
    return checked


def _by_device(statement: object, purpose: str, target: Member, by: Device, what: str) -> dict[str, Any]:
    checked = _verified(statement, purpose, by.sign_public_key, what)
    if (checked["org_id"], checked["member_id"]) != (target.org_id, target.member_id):
        raise BadRequest(f"{what}: it names another member")
    if target.identity_key is None or checked["identity_key"] != target.identity_key:
        raise BadRequest(f"{what}: identity_key is not the member's")
    if checked["by_device"] != by.device_id:
        raise BadRequest(f"{what}: by_device must be the calling device")
    return checked
