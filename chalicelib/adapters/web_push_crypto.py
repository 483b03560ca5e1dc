"""Web Push's cryptography, from the RFCs, on ``cryptography`` alone.

RFC 8291 (message encryption, ``aes128gcm`` of RFC 8188): an ephemeral P-256 key agreed with
the subscription's key, mixed with its auth secret, seals the payload so that only the device
opens it; the push service sees ciphertext of a fixed size. RFC 8292 (VAPID): a short-lived
ES256 JWT for the push service's origin proves the pushes come from the holder of the key
the device subscribed with.

Imported only where a push is sent (chalicelib/adapters/web_push.py): the send route's cold
start does not load ``cryptography``.
"""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RECORD_SIZE = 4096
#: Every payload is padded to this many bytes before sealing: its size tells nothing.
PADDED = 256
JWT_LIFETIME = 12 * 3600  # RFC 8292: at most 24 hours


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def encrypt(payload: bytes, p256dh: str, auth: str, *, salt: bytes | None = None) -> bytes:
    """The request body for one subscription: RFC 8188 header, then one sealed record."""
    if len(payload) >= PADDED:
        raise ValueError(f"a push payload must be under {PADDED} bytes")
    device_public = unb64url(p256dh)
    device_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), device_public)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    server_public = _point(ephemeral.public_key())
    shared = ephemeral.exchange(ec.ECDH(), device_key)
    ikm = _hkdf(unb64url(auth), shared, b"WebPush: info\x00" + device_public + server_public, 32)
    salt = salt or os.urandom(16)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    # The last (only) record: the payload, the 0x02 delimiter, then zeros up to the fixed size.
    padded = payload + b"\x02" + b"\x00" * (PADDED - len(payload) - 1)
    sealed = AESGCM(cek).encrypt(nonce, padded, None)
    header = salt + RECORD_SIZE.to_bytes(4, "big") + bytes([len(server_public)]) + server_public
    return header + sealed


class VapidKey:
    """The server's VAPID key pair: the private scalar as unpadded base64url (a setting), the
    public key as the uncompressed point clients pass to ``pushManager.subscribe``."""

    def __init__(self, private: ec.EllipticCurvePrivateKey) -> None:
        self._private = private
        self.public_key = b64url(_point(private.public_key()))

    @classmethod
    def generate(cls) -> VapidKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_text(cls, text: str) -> VapidKey:
        """The private key as base64url (32 bytes) or PEM (what ``openssl ecparam`` writes)."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
                raise ValueError("the VAPID key must be a P-256 key")
            return cls(key)
        raw = unb64url(text)
        if len(raw) != 32:
            raise ValueError("a base64url VAPID key is 32 bytes")
        return cls(ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()))

    def private_text(self) -> str:
        return b64url(self._private.private_numbers().private_value.to_bytes(32, "big"))

    def authorization(self, endpoint: str, subject: str, now: int) -> str:
        """The ``Authorization`` header for a push to ``endpoint`` (RFC 8292, section 3)."""
        url = urlsplit(endpoint)
        claims = {"aud": f"{url.scheme}://{url.netloc}", "exp": now + JWT_LIFETIME, "sub": subject}
        head = b64url(json.dumps({"typ": "JWT", "alg": "ES256"}, separators=(",", ":")).encode())
        body = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signed = f"{head}.{body}".encode("ascii")
        r, s = decode_dss_signature(self._private.sign(signed, ec.ECDSA(hashes.SHA256())))
        signature = b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return f"vapid t={head}.{body}.{signature}, k={self.public_key}"
