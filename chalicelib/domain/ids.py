"""Identifiers: short, unguessable, fixed length (so sort-key prefixes never collide)."""

from __future__ import annotations

import base64
import hashlib
import secrets

_ID_BYTES = 10  # 80 bits: 16 base32 characters


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def new_id(prefix: str) -> str:
    """A random id such as ``m_k3v...``; the prefix tells what it names."""
    return f"{prefix}_{_b32(secrets.token_bytes(_ID_BYTES))}"


def device_id_for(sign_public_key: bytes) -> str:
    """A device's id is derived from its signing key, so a retried activation is recognised."""
    return f"d_{_b32(hashlib.sha256(sign_public_key).digest()[:_ID_BYTES])}"


def follower_id_for(sign_public_key: bytes) -> str:
    """A follower is their one device: their id is derived from its key like the device's."""
    return f"f_{_b32(hashlib.sha256(sign_public_key).digest()[:_ID_BYTES])}"


def operator_id_for(sign_public_key: bytes) -> str:
    """An operator key's id, derived the same way: rotation is adding and removing keys."""
    return f"op_{_b32(hashlib.sha256(sign_public_key).digest()[:_ID_BYTES])}"


def b32_id(prefix: str, digest: bytes) -> str:
    """An id derived from a digest (its first 80 bits), in the same form as the random ones."""
    return f"{prefix}_{_b32(digest[:_ID_BYTES])}"


def is_follower_id(member_id: str) -> bool:
    """A follower of a public tribe (docs/protocol.md, 16), never a member."""
    return looks_like(member_id, "f")


def looks_like(value: str, prefix: str) -> bool:
    return value.startswith(f"{prefix}_") and len(value) == len(prefix) + 1 + 16
