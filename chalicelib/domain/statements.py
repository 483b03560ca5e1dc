"""Signed statements (docs/protocol.md, section 13.1): certificates, tickets, roles, removals,
revocations, membership-log entries, notification choices (section 17), partnerships (section
22) and a public tribe's recent-history choice (section 23), all one shape.

A statement is a JSON object with a ``purpose``, a fixed set of fields for that purpose and
``sig``, an Ed25519 signature over the ASCII canonical JSON of the rest. The server and the
Python client share this module, so a field list or a canonical form never differs between
them; it is pure (no I/O) and knows nothing of who may sign what (that is chain evaluation,
bocage/client/certs.py, and the services).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.ids import looks_like

MEMBER_CERT = "bocage/member-cert/v2"
DEVICE_CERT = "bocage/device-cert/v2"
TICKET = "bocage/ticket/v2"
ROLE = "bocage/role/v2"
REMOVAL = "bocage/removal/v2"
REVOCATION = "bocage/revocation/v2"
MEMBERSHIP = "bocage/membership/v2"
FOLLOWER_CERT = "bocage/follower-cert/v2"
NOTIFY = "bocage/notify/v2"
PARTNER_ACCEPT = "bocage/partner-accept/v2"
PARTNERSHIP = "bocage/partnership/v2"
#: An end names its invitation (``ticket_key``), so an earlier partnership's end cannot pass
#: for the current one's (22.7); v2, which named none, is only read where it is stored.
PARTNERSHIP_END = "bocage/partnership-end/v3"
PARTNERSHIP_END_V2 = "bocage/partnership-end/v2"
HISTORY = "bocage/history/v2"
#: How far a signed statement's ``issued_at`` may be from a clock (the server's, or a reading
#: device's) and still be taken as "now": two honest devices' clocks differ by less, and the
#: request tokens' own window is the same (section 4). One allowance for every statement kind.
STATEMENT_CLOCK_SKEW = 300
#: The longest window of recent posts a public tribe may open to new followers (section 23).
MAX_HISTORY_DAYS = 30
MAX_STATEMENT_BYTES = 2048
KEY_BYTES = 32
HASH_CHARS = 43  # b64url of a SHA-256 digest
V1_MESSAGE = "this client speaks protocol v1: update it"

_ORG_ROLES = ("owner", "admin", "member", "guest")
_CHANNEL_ROLES = ("author", "member")


class StatementError(ValueError):
    """A statement that cannot be trusted: wrong shape, wrong purpose or a bad signature."""


def _id(prefix: str) -> Callable[[object], bool]:
    return lambda v: isinstance(v, str) and looks_like(v, prefix)


#: 32 bytes in unpadded base64url: 42 characters, then one whose two low bits are zero.
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def _key(value: object) -> bool:
    return isinstance(value, str) and _KEY_PATTERN.fullmatch(value) is not None


def _int(minimum: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and minimum <= v < 2**53


def _one_of(*values: str) -> Callable[[object], bool]:
    return lambda v: v in values


def _name(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 120 and value == value.strip()


def _nullable(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or check(v)


def _bool(value: object) -> bool:
    return isinstance(value, bool)


_TIME = _int(0)
_FIELDS: dict[str, dict[str, Callable[[object], bool]]] = {
    MEMBER_CERT: {
        "org_id": _id("o"),
        "member_id": _id("m"),
        "identity_key": _key,
        "display_name": _name,
        "ticket_key": _nullable(_key),
        "root": _bool,
        "issued_at": _TIME,
    },
    DEVICE_CERT: {
        "org_id": _id("o"),
        "member_id": _id("m"),
        "device_id": _id("d"),
        "sign_public_key": _key,
        "box_public_key": _key,
        "identity_key": _key,
        "ticket_key": _nullable(_key),
        "issued_at": _TIME,
    },
    TICKET + "#member": {
        "org_id": _id("o"),
        "grant": _one_of("member"),
        "ticket_key": _key,
        "role": _one_of(*_ORG_ROLES),
        "display_name": _name,
        "issuer_device": _id("d"),
        "issued_at": _TIME,
        "expires_at": _TIME,
    },
    TICKET + "#device": {
        "org_id": _id("o"),
        "grant": _one_of("device"),
        "ticket_key": _key,
        "member_id": _id("m"),
        "issuer_device": _id("d"),
        "issued_at": _TIME,
        "expires_at": _TIME,
    },
    TICKET + "#follower": {
        "org_id": _id("o"),
        "grant": _one_of("follower"),
        "ticket_key": _key,
        "channel_id": _id("c"),
        "issuer_device": _id("d"),
        "issued_at": _TIME,
        "expires_at": _TIME,
    },
    TICKET + "#partner": {
        "org_id": _id("o"),
        "grant": _one_of("partner"),
        "ticket_key": _key,
        "allow_tribes": _bool,
        "issuer_device": _id("d"),
        "issued_at": _TIME,
        "expires_at": _TIME,
    },
    PARTNER_ACCEPT: {
        "org_id": _id("o"),
        "partner_org_id": _id("o"),
        "root": _key,
        "ticket_key": _key,
        "by_device": _id("d"),
        "issued_at": _TIME,
    },
    PARTNERSHIP: {
        "org_id": _id("o"),
        "partner_org_id": _id("o"),
        "partner_root": _key,
        "allow_tribes": _bool,
        "ticket_key": _key,
        "by_device": _id("d"),
        "issued_at": _TIME,
    },
    PARTNERSHIP_END_V2: {
        "org_id": _id("o"),
        "partner_org_id": _id("o"),
        "by_device": _id("d"),
        "issued_at": _TIME,
    },
    PARTNERSHIP_END: {
        "org_id": _id("o"),
        "partner_org_id": _id("o"),
        "ticket_key": _key,
        "by_device": _id("d"),
        "issued_at": _TIME,
    },
    FOLLOWER_CERT: {
        "org_id": _id("o"),
        "channel_id": _id("c"),
        "follower_id": _id("f"),
        "device_id": _id("d"),
        "sign_public_key": _key,
        "box_public_key": _key,
        "display_name": _name,
        "ticket_key": _key,
        "issued_at": _TIME,
    },
    ROLE: {
        "org_id": _id("o"),
        "member_id": _id("m"),
        "identity_key": _key,
        "role": _one_of(*_ORG_ROLES),
        "serial": _int(1),
        "issued_at": _TIME,
        "by_device": _id("d"),
    },
    REMOVAL: {
        "org_id": _id("o"),
        "member_id": _id("m"),
        "identity_key": _key,
        "issued_at": _TIME,
        "by_device": _id("d"),
    },
    REVOCATION: {
        "org_id": _id("o"),
        "member_id": _id("m"),
        "device_id": _id("d"),
        "sign_public_key": _key,
        "issued_at": _TIME,
        "by_device": _id("d"),
    },
    MEMBERSHIP: {
        "org_id": _id("o"),
        "channel_id": _id("c"),
        "seq": _int(0),
        "prev": _nullable(lambda v: isinstance(v, str) and len(v) == HASH_CHARS),
        "op": _one_of("create", "add", "remove", "role", "leave"),
        "member_id": _id("m"),
        "role": _nullable(_one_of(*_CHANNEL_ROLES)),
        "kind": _nullable(_one_of("tribe", "group", "direct")),
        "by_device": _id("d"),
        "issued_at": _TIME,
    },
    NOTIFY: {
        "org_id": _id("o"),
        "channel_id": _id("c"),
        "member_id": _id("m"),
        "mentions_only": _bool,
        "issued_at": _TIME,
        "by_device": _id("d"),
    },
    HISTORY: {
        "org_id": _id("o"),
        "channel_id": _id("c"),
        "days": lambda v: _int(0)(v) and isinstance(v, int) and v <= MAX_HISTORY_DAYS,
        "issued_at": _TIME,
        "by_device": _id("d"),
    },
}


def canonical(value: Mapping[str, Any]) -> bytes:
    """ASCII canonical JSON: what gets signed and hashed (docs/protocol.md, "Conventions")."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def signing_bytes(statement: Mapping[str, Any]) -> bytes:
    return canonical({k: v for k, v in statement.items() if k != "sig"})


def statement_hash(statement: Mapping[str, Any]) -> str:
    """b64url SHA-256 of the whole statement, signature included: what log entries chain by."""
    return b64e(hashlib.sha256(canonical(statement)).digest())


def fingerprint(public_key: str) -> str:
    """A public key's fingerprint: b64url(SHA-256(key)), 43 characters (the pinned root is one)."""
    return b64e(hashlib.sha256(b64d(public_key)).digest())


def _shape_key(statement: Mapping[str, Any]) -> str:
    purpose = statement.get("purpose")
    if not isinstance(purpose, str):
        raise StatementError("a statement needs a purpose")
    if purpose.endswith("/v1"):
        raise StatementError(f"{purpose}: {V1_MESSAGE}")
    if purpose == TICKET:
        return f"{TICKET}#{statement.get('grant')}"
    return purpose


def check_shape(statement: object, purpose: str) -> dict[str, Any]:
    """The statement as a plain dict if it has exactly the fields of ``purpose``, well typed."""
    if not isinstance(statement, Mapping):
        raise StatementError(f"{purpose} must be a JSON object")
    found = _shape_key(statement)
    fields = _FIELDS.get(found)
    if fields is None or not found.startswith(purpose):
        raise StatementError(f"expected a {purpose} statement, got {statement.get('purpose')!r}")
    expected = {"purpose", "sig", *fields}
    if set(statement) != expected:
        missing, extra = sorted(expected - set(statement)), sorted(set(statement) - expected)
        raise StatementError(f"{purpose}: missing fields {missing}, unknown fields {extra}")
    bad = sorted(name for name, check in fields.items() if not check(statement[name]))
    if bad:
        raise StatementError(f"{purpose}: invalid {', '.join(bad)}")
    if not isinstance(statement["sig"], str):
        raise StatementError(f"{purpose}: sig must be base64url")
    if len(canonical(statement)) > MAX_STATEMENT_BYTES:
        raise StatementError(f"{purpose}: larger than {MAX_STATEMENT_BYTES} bytes")
    return dict(statement)


def sign_statement(body: Mapping[str, Any], seed: bytes) -> dict[str, Any]:
    """``body`` (without ``sig``) signed by the Ed25519 key of this 32-byte seed, checked first."""
    signed = {**body, "sig": b64e(bytes(SigningKey(seed).sign(signing_bytes(body)).signature))}
    return check_shape(signed, str(body.get("purpose")))


def verify_statement(statement: object, purpose: str, public_key: str) -> dict[str, Any]:
    """The statement if it has the shape of ``purpose`` and ``public_key`` signed it."""
    return verify_checked(check_shape(statement, purpose), public_key)


def verify_checked(checked: dict[str, Any], public_key: str) -> dict[str, Any]:
    """``checked`` (already through ``check_shape``) if ``public_key`` signed it."""
    try:
        VerifyKey(b64d(public_key)).verify(signing_bytes(checked), b64d(checked["sig"]))
    except (BadSignatureError, ValueError) as exc:
        raise StatementError(f"{checked['purpose']}: the signature does not verify") from exc
    return checked


def public_key_of(seed: bytes) -> str:
    """The b64url Ed25519 public key of a 32-byte seed (identity and ticket keys)."""
    return b64e(bytes(SigningKey(seed).verify_key))
