"""X25519 public keys no one should seal to: the all-zero key and the other small-order points.

A box sealed to such a key is not secret: whatever the sender's private key, the shared secret
is the all-zero point (or one of a handful of values), so anyone can open it. A malicious server
could hand one out as a device's box key. Pure and dependency-free, so the server (activation)
and the Python client (before sealing) share it; web/js/wire.js holds the same list.
"""

from __future__ import annotations

from chalicelib.domain.encoding import b64d

KEY_BYTES = 32
_P = 2**255 - 19
#: The u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519 and its twist, reduced
#: modulo p: 0, 1, p - 1 and the two points of order 8. X25519 ignores the top bit and reads
#: non-canonical encodings (u >= p) modulo p, so every encoding of these is refused.
_SMALL_ORDER_U = frozenset(
    {
        0,
        1,
        _P - 1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
    }
)


class UnsafeBoxKey(ValueError):
    """A box public key that is malformed, all zero or of small order."""


def is_small_order(public_key: bytes) -> bool:
    """Whether an X25519 public key (32 bytes) is one of the small-order points."""
    if len(public_key) != KEY_BYTES:
        raise UnsafeBoxKey(f"an X25519 public key is {KEY_BYTES} bytes")
    u = int.from_bytes(public_key, "little") & ((1 << 255) - 1)
    return u % _P in _SMALL_ORDER_U


def check_box_public_key(value: str) -> bytes:
    """The 32 bytes of a b64url X25519 public key that is safe to seal to; UnsafeBoxKey otherwise."""
    try:
        raw = b64d(value)
    except (TypeError, ValueError) as exc:
        raise UnsafeBoxKey("box_public_key must be base64url") from exc
    if is_small_order(raw):
        raise UnsafeBoxKey(
            "box_public_key is all zero or of small order: nothing sealed to it would be secret"
        )
    return raw
