"""The small-order X25519 check (chalicelib/domain/x25519.py), against the curve's own arithmetic."""

from __future__ import annotations

import secrets

import nacl.bindings
import nacl.exceptions
import pytest
from nacl.public import PrivateKey

from chalicelib.domain.encoding import b64e
from chalicelib.domain.x25519 import _SMALL_ORDER_U, UnsafeBoxKey, check_box_public_key, is_small_order

P = 2**255 - 19
A24 = 121665


def x25519(scalar: bytes, u_bytes: bytes) -> int:
    """RFC 7748's Montgomery ladder, written out so the test does not trust the code it checks."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    n = int.from_bytes(k, "little")
    x1 = int.from_bytes(u_bytes, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (n >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3, z3 = (da + cb) ** 2 % P, x1 * (da - cb) ** 2 % P
        x2, z2 = aa * bb % P, e * (aa + A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return x2 * pow(z2, P - 2, P) % P


def encodings(u: int) -> list[bytes]:
    """Every 32-byte string X25519 reads as u: canonical, + p when it fits, each with the top bit set."""
    values = [u] + ([u + P] if u + P < 2**255 else [])
    return [(v | bit).to_bytes(32, "little") for v in values for bit in (0, 1 << 255)]


@pytest.mark.parametrize("u", sorted(_SMALL_ORDER_U))
def test_every_listed_point_gives_a_shared_secret_anyone_knows(u: int) -> None:
    for encoded in encodings(u):
        assert is_small_order(encoded)
        with pytest.raises(UnsafeBoxKey):
            check_box_public_key(b64e(encoded))
        secrets_seen = {x25519(secrets.token_bytes(32), encoded) for _ in range(4)}
        assert secrets_seen == {0}  # whatever the sender's key: the all-zero shared secret
        with pytest.raises(nacl.exceptions.RuntimeError):  # libsodium refuses them too
            nacl.bindings.crypto_scalarmult(secrets.token_bytes(32), encoded)


def test_the_list_is_every_point_of_order_dividing_eight() -> None:
    """No other small u (nor p - u) is sent to zero by a clamped scalar, a multiple of 8."""
    candidates = {u for u in range(0, 64)} | {P - u for u in range(1, 64)} | set(_SMALL_ORDER_U)
    found = {u for u in candidates if x25519(bytes([8]) + bytes(31), u.to_bytes(32, "little")) == 0}
    assert found == set(_SMALL_ORDER_U)


def test_real_keys_pass_and_agree_with_libsodium() -> None:
    for _ in range(20):
        public = bytes(PrivateKey.generate().public_key)
        assert not is_small_order(public)
        assert check_box_public_key(b64e(public)) == public
        scalar = secrets.token_bytes(32)
        assert x25519(scalar, public) == int.from_bytes(
            nacl.bindings.crypto_scalarmult(scalar, public), "little"
        )


@pytest.mark.parametrize(
    "value", ["", "AAAA", b64e(bytes(31)), b64e(bytes(33)), "not base64!", b64e(bytes(32))]
)
def test_malformed_or_zero_keys_are_refused_with_a_clear_message(value: str) -> None:
    with pytest.raises(UnsafeBoxKey, match=r"box_public_key|32 bytes"):
        check_box_public_key(value)
