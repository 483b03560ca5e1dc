"""Invitations: one-time activation codes, kept by the server only as a hash."""

from __future__ import annotations

import base64
import hashlib
import secrets
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.organisation import Role

CODE_BYTES = 20  # 160 bits of entropy, over the 128 the threat model asks for
CODE_GROUP = 4
#: How long a spent or lapsed invitation is kept after its validity, so that a
#: late attempt gets "expired" (410) rather than "unknown" (404).
GRACE_SECONDS = 30 * 86400


class InvitationStatus(StrEnum):
    PENDING = "pending"
    USED = "used"


def new_code() -> str:
    """A human-copyable code: base32 in dash-separated groups, e.g. ``ABCD-EFGH-...``."""
    raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii").rstrip("=")
    return "-".join(raw[i : i + CODE_GROUP] for i in range(0, len(raw), CODE_GROUP))


def normalise_code(code: str) -> str:
    """Codes are compared without case, dashes or spaces, so a retyped code still works."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    """SHA-256 is enough: the code has 160 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(normalise_code(code).encode("ascii")).hexdigest()


class Invitation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    code_hash: str
    org_id: str
    member_id: str
    display_name: str
    role: Role
    invited_by: str  # a member id, or "operator"
    invited_by_device: str | None = None
    created_at: int
    valid_until: int
    status: InvitationStatus = InvitationStatus.PENDING
    used_by_device: str | None = None
    used_at: int | None = None
    # The signed ticket of a QR or link invitation (docs/protocol.md, 13.3); None when e-mailed
    # or for an organisation's first owner.
    ticket: dict[str, Any] | None = None
    emailed: bool = False

    @property
    def expires_at(self) -> int:
        return self.valid_until + GRACE_SECONDS

    def is_valid_at(self, now: int) -> bool:
        return now < self.valid_until


def activation_proof_message(code: str, box_public_key: str) -> bytes:
    """What a device signs at activation to prove it holds the signing key it registers."""
    return f"bocage-activation\n{code_hash(code)}\n{box_public_key}".encode()
