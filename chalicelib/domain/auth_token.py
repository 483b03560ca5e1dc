"""The device-signed request token: the one wire format both client and server use.

A token is ``base64url(claims JSON) "." base64url(Ed25519 signature of those bytes)``.
The claims bind it to one device, a short lifetime, a single-use nonce and one
request (method, path, query and a hash of the body), so a stolen token is useless
for anything else and for long. No shared secret exists: the server holds only
public keys.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from chalicelib.domain.encoding import b64d, b64e

VERSION = 1
SCHEME = "Bocage"
MAX_TOKEN_CHARS = 2048
SUBJECT = re.compile(r"(d|op)_[a-z2-7]{16}")  # a device id or an operator key id
NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")


def request_digest(method: str, path: str, query: Mapping[str, str] | None, body: bytes) -> str:
    """Hash of the canonical request: method, path, sorted query and body hash."""
    canonical_query = urlencode(sorted((query or {}).items()))
    canonical = "\n".join([method.upper(), path, canonical_query, hashlib.sha256(body).hexdigest()])
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Claims:
    subject: str  # a device id, or an operator key id
    issued_at: int
    expires_at: int
    nonce: str
    digest: str

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "v": VERSION,
                "sub": self.subject,
                "iat": self.issued_at,
                "exp": self.expires_at,
                "nonce": self.nonce,
                "req": self.digest,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode("utf-8")


def encode_token(claims_bytes: bytes, signature: bytes) -> str:
    return f"{b64e(claims_bytes)}.{b64e(signature)}"


def decode_token(token: str) -> tuple[Claims, bytes, bytes]:
    """Split and parse a token; ValueError with a reason when it is malformed.

    Returns the claims, the exact signed bytes, and the signature.
    """
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise ValueError("malformed token")
    head, sig = token.split(".")
    signed = b64d(head)
    signature = b64d(sig)
    try:
        raw = json.loads(signed)
    except ValueError as exc:
        raise ValueError("malformed token claims") from exc
    if not isinstance(raw, dict) or raw.get("v") != VERSION:
        raise ValueError("unsupported token version")
    subject, nonce, digest = raw.get("sub"), raw.get("nonce"), raw.get("req")
    issued_at, expires_at = raw.get("iat"), raw.get("exp")
    if not all(isinstance(v, str) for v in (subject, nonce, digest)) or not all(
        _is_epoch(v) for v in (issued_at, expires_at)
    ):
        raise ValueError("incomplete token claims")
    assert isinstance(subject, str) and isinstance(nonce, str) and isinstance(digest, str)
    if not SUBJECT.fullmatch(subject):
        raise ValueError("bad token subject")
    if not NONCE.fullmatch(nonce):
        raise ValueError("bad token nonce")
    claims = Claims(subject, int(issued_at), int(expires_at), nonce, digest)  # type: ignore[arg-type]
    return claims, signed, signature


def _is_epoch(value: object) -> bool:
    """Whole seconds in a sane range: JSON also allows floats, booleans and huge numbers."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**40


def parse_authorization(header: str | None) -> str | None:
    """The token from ``Authorization: Bocage <token>``, or None when absent."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme != SCHEME or not token:
        raise ValueError(f"expected 'Authorization: {SCHEME} <token>'")
    return token.strip()
