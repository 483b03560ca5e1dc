"""Safety numbers (docs/protocol.md, section 15): two people compare 60 digits, or scan a QR code,
to check out of band that they hold each other's true identity keys."""

from __future__ import annotations

import hashlib

from chalicelib.domain.encoding import b64d

DOMAIN = b"bocage/safety/v2"
GROUPS = 12
GROUP_BYTES = 5


def safety_digits(identity_a: str, identity_b: str) -> str:
    """60 digits, the same whichever side computes them (the two keys are ordered bytewise)."""
    low, high = sorted([b64d(identity_a), b64d(identity_b)])
    digest = hashlib.sha512(DOMAIN + low + high).digest()
    chunks = (digest[i * GROUP_BYTES : (i + 1) * GROUP_BYTES] for i in range(GROUPS))
    return "".join(f"{int.from_bytes(chunk, 'big') % 100000:05d}" for chunk in chunks)


def grouped(digits: str) -> str:
    """As shown: 12 groups of 5 digits."""
    return " ".join(digits[i : i + 5] for i in range(0, len(digits), 5))


def normalise(number: str) -> str:
    """A typed or scanned number, spaces and the QR payload's prefix dropped."""
    text = number.strip()
    if text.startswith("bocage-verify:"):
        text = text.rsplit(":", 1)[-1]
    return "".join(ch for ch in text if ch.isdigit())


def qr_payload(org_id: str, shower_member_id: str, digits: str) -> str:
    return f"bocage-verify:v2:{org_id}:{shower_member_id}:{digits}"
