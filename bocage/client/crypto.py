"""End-to-end group encryption with sender keys (docs/protocol.md, section 6), pure and I/O-free.

Each sending device holds one random symmetric key per (channel, epoch). It hands that key once
to every member device in a NaCl Box (``seal_sender_key``); every message is then one SecretBox
ciphertext under it, wrapped in an ``Envelope`` signed by the device's Ed25519 key
(``seal_message``). The server relays both and can read neither. Bumping the epoch on removal
means the next send uses a fresh key the removed member never receives.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.utils
from nacl.public import Box, PublicKey
from nacl.secret import SecretBox
from nacl.signing import VerifyKey
from pydantic import ValidationError

from bocage.client.profile import DeviceKeys, write_private
from bocage.client.results import SealedKey
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.envelope import MAX_CIPHERTEXT_BYTES, Envelope, Kind
from chalicelib.domain.ids import device_id_for

PAD_BLOCK = 256
# The largest padded plaintext whose ciphertext (plus the 16-byte MAC) fits in an envelope.
MAX_PADDED_BYTES = (MAX_CIPHERTEXT_BYTES - SecretBox.MACBYTES) // PAD_BLOCK * PAD_BLOCK
# One byte goes to the padding marker, so this is the largest JSON content we can send.
MAX_CONTENT_BYTES = MAX_PADDED_BYTES - 1
SENDER_KEY_PURPOSE = "bocage/sender-key/v1"
_PAD_MARKER = 0x80
_PLACEHOLDER_SIGNATURE = b64e(bytes(64))


class CryptoError(Exception):
    """A message or key that cannot be trusted or read: never show its content."""


class ForgedMessage(CryptoError):
    """The envelope's signature does not verify for the claimed sender device."""


def _canonical(value: dict[str, Any]) -> bytes:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def new_sender_key() -> bytes:
    """A fresh symmetric key for one (channel, epoch, sending device)."""
    key: bytes = nacl.utils.random(SecretBox.KEY_SIZE)
    return key


def new_message_id() -> str:
    """A client-chosen id (128 random bits, base64url): retries of a send reuse it.

    Never starting with "-", so that it can follow a command on a command line."""
    while True:
        message_id = b64e(secrets.token_bytes(16))
        if not message_id.startswith("-"):
            return message_id


# --- sender key distribution -------------------------------------------------------------------


def seal_sender_key(
    sender: DeviceKeys,
    recipient_device_id: str,
    recipient_box_public_key: str,
    channel_id: str,
    epoch: int,
    sender_key: bytes,
) -> SealedKey:
    """Box a sender key to one recipient device.

    The boxed payload repeats channel, epoch and both device ids, so the (clear) routing fields
    cannot be rewritten to replay the key into another channel or epoch or to another device.
    """
    if len(sender_key) != SecretBox.KEY_SIZE:
        raise ValueError(f"a sender key is {SecretBox.KEY_SIZE} bytes")
    payload = _canonical(
        {
            "purpose": SENDER_KEY_PURPOSE,
            "channel_id": channel_id,
            "epoch": epoch,
            "sender_device": sender.device_id,
            "recipient_device": recipient_device_id,
            "key": b64e(sender_key),
        }
    )
    box = Box(sender.box, PublicKey(b64d(recipient_box_public_key)))
    return {
        "recipient_device": recipient_device_id,
        "sender_device": sender.device_id,
        "epoch": epoch,
        "sealed": b64e(bytes(box.encrypt(payload))),  # 24-byte nonce + ciphertext
    }


def open_sender_key(
    recipient: DeviceKeys,
    sealed_envelope: Mapping[str, Any],
    sender_box_public_key: str,
    channel_id: str,
) -> bytes:
    """Open a sealed sender key addressed to this device, checking every bound field."""
    try:
        sender_device = sealed_envelope["sender_device"]
        epoch = sealed_envelope["epoch"]
        recipient_device = sealed_envelope["recipient_device"]
        sealed = b64d(sealed_envelope["sealed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CryptoError("malformed sealed key") from exc
    if not (isinstance(sender_device, str) and isinstance(recipient_device, str)):
        raise CryptoError("malformed sealed key")
    if not isinstance(epoch, int) or isinstance(epoch, bool):  # bool is an int: True must not be 1
        raise CryptoError("malformed sealed key")
    if recipient_device != recipient.device_id:
        raise CryptoError("sealed key is addressed to another device")
    try:
        box = Box(recipient.box, PublicKey(b64d(sender_box_public_key)))
        payload = json.loads(box.decrypt(sealed).decode("utf-8"))
    except (nacl.exceptions.CryptoError, ValueError) as exc:  # JSON/Unicode errors are ValueErrors
        raise CryptoError("sealed key does not open") from exc
    expected = {
        "purpose": SENDER_KEY_PURPOSE,
        "channel_id": channel_id,
        "epoch": epoch,
        "sender_device": sender_device,
        "recipient_device": recipient.device_id,
    }
    if not isinstance(payload, dict) or any(payload.get(k) != v for k, v in expected.items()):
        raise CryptoError("sealed key is bound to another channel, epoch or device")
    if isinstance(payload["epoch"], bool):
        raise CryptoError("malformed sealed key")
    try:
        key = b64d(payload["key"])
    except (KeyError, ValueError) as exc:
        raise CryptoError("malformed sealed key") from exc
    if len(key) != SecretBox.KEY_SIZE:
        raise CryptoError("malformed sealed key")
    return key


# --- messages ----------------------------------------------------------------------------------


def pad(data: bytes) -> bytes:
    """ISO/IEC 7816-4 padding to a multiple of PAD_BLOCK: one 0x80 byte, then zeros.

    Ciphertext lengths then reveal only a size bucket, not the exact length of a message.
    """
    padded_len = (len(data) // PAD_BLOCK + 1) * PAD_BLOCK
    return data + bytes([_PAD_MARKER]) + bytes(padded_len - len(data) - 1)


def unpad(data: bytes) -> bytes:
    """Undo ``pad``; CryptoError if the padding is not exactly what ``pad`` writes."""
    if not data or len(data) % PAD_BLOCK:
        raise CryptoError("bad padding length")
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != _PAD_MARKER or len(data) - len(stripped) >= PAD_BLOCK:
        raise CryptoError("bad padding")
    return stripped[:-1]


def seal_message(
    sender: DeviceKeys,
    sender_key: bytes,
    *,
    channel_id: str,
    epoch: int,
    message_id: str,
    content: dict[str, Any],
    kind: str = "message",
    sent_at_ms: int,
    target: str | None = None,
) -> Envelope:
    """Encrypt ``content`` under the sender key and sign the whole envelope.

    ValueError, before anything is sent, if the content is too large for one envelope.
    """
    plaintext = _canonical(content)
    if len(plaintext) > MAX_CONTENT_BYTES:
        raise ValueError(
            f"message content is {len(plaintext)} bytes encoded; at most {MAX_CONTENT_BYTES} fit in one "
            "envelope (send large data as an attachment)"
        )
    encrypted = SecretBox(sender_key).encrypt(pad(plaintext))
    unsigned = Envelope(
        channel_id=channel_id,
        message_id=message_id,
        sender_device=sender.device_id,
        epoch=epoch,
        kind=Kind(kind),
        target=target,
        sent_at=sent_at_ms,
        nonce=b64e(encrypted.nonce),
        ciphertext=b64e(encrypted.ciphertext),
        signature=_PLACEHOLDER_SIGNATURE,
    )
    signature = sender.signing.sign(unsigned.signing_bytes()).signature
    return unsigned.model_copy(update={"signature": b64e(signature)})


def open_message(
    envelope: Envelope | dict[str, Any], sender_key: bytes, sender_sign_public_key: str
) -> dict[str, Any]:
    """Verify the signature first, then decrypt and unpad; returns the content.

    A dict may carry server-added fields (seq, stored_at, ...): they are not signed and ignored.
    The signing key must belong to the envelope's ``sender_device`` (ids derive from the key).
    """
    if not isinstance(envelope, Envelope):
        try:
            envelope = Envelope.model_validate(
                {k: v for k, v in envelope.items() if k in Envelope.model_fields}
            )
        except ValidationError as exc:
            raise CryptoError("malformed envelope") from exc
    try:
        verify_key_bytes = b64d(sender_sign_public_key)
        verify_key = VerifyKey(verify_key_bytes)
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise CryptoError("invalid sender signing key") from exc
    if device_id_for(verify_key_bytes) != envelope.sender_device:
        raise ForgedMessage("the signing key is not the sender device's key")
    try:
        verify_key.verify(envelope.signing_bytes(), b64d(envelope.signature))
    except nacl.exceptions.BadSignatureError as exc:
        raise ForgedMessage("envelope signature does not verify") from exc
    try:
        padded = SecretBox(sender_key).decrypt(b64d(envelope.ciphertext), b64d(envelope.nonce))
    except nacl.exceptions.CryptoError as exc:
        raise CryptoError("message does not decrypt with this sender key") from exc
    try:
        content = json.loads(unpad(padded).decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CryptoError("message content is not JSON") from exc
    if not isinstance(content, dict):
        raise CryptoError("message content is not a JSON object")
    return content


# --- the client's key ring ---------------------------------------------------------------------


class SenderKeyRing:
    """Sender keys a device holds: its own, those received, and where its own were sent.

    Kept in the profile (mode 0600) so a restart neither loses old epochs' keys nor
    redistributes keys to devices that already have them.
    """

    VERSION = 1

    def __init__(self) -> None:
        self._own: dict[tuple[str, int], bytes] = {}
        self._received: dict[tuple[str, int, str], bytes] = {}
        self._distributed: dict[tuple[str, int], set[str]] = {}

    def own_key(self, channel_id: str, epoch: int) -> bytes:
        """My key for (channel, epoch), created on first use."""
        slot = (channel_id, epoch)
        if slot not in self._own:
            self._own[slot] = new_sender_key()
        return self._own[slot]

    def has_own(self, channel_id: str, epoch: int | None = None) -> bool:
        """Whether I hold my own key for this channel (for this epoch, or for any)."""
        return any(c == channel_id and epoch in (None, e) for c, e in self._own)

    def add_received(self, channel_id: str, epoch: int, sender_device: str, key: bytes) -> None:
        """Remember another device's key; a newer one for the same slot replaces the old."""
        if len(key) != SecretBox.KEY_SIZE:
            raise ValueError(f"a sender key is {SecretBox.KEY_SIZE} bytes")
        self._received[(channel_id, epoch, sender_device)] = key

    def received(self, channel_id: str, epoch: int, sender_device: str) -> bytes | None:
        return self._received.get((channel_id, epoch, sender_device))

    def mark_distributed(self, channel_id: str, epoch: int, device_ids: list[str] | set[str]) -> None:
        self._distributed.setdefault((channel_id, epoch), set()).update(device_ids)

    def undistributed(self, channel_id: str, epoch: int, device_ids: list[str] | set[str]) -> list[str]:
        """Devices (in the given order, without duplicates) that still need my key."""
        done = self._distributed.get((channel_id, epoch), set())
        return [d for d in dict.fromkeys(device_ids) if d not in done]

    def to_json(self) -> str:
        data = {
            "v": self.VERSION,
            "own": [{"channel_id": c, "epoch": e, "key": b64e(k)} for (c, e), k in sorted(self._own.items())],
            "received": [
                {"channel_id": c, "epoch": e, "sender_device": d, "key": b64e(k)}
                for (c, e, d), k in sorted(self._received.items())
            ],
            "distributed": [
                {"channel_id": c, "epoch": e, "devices": sorted(ds)}
                for (c, e), ds in sorted(self._distributed.items())
            ],
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SenderKeyRing:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != cls.VERSION:
            raise ValueError("not a sender key ring (or an unsupported version)")
        ring = cls()
        try:
            for item in data["own"]:
                key = b64d(item["key"])
                if len(key) != SecretBox.KEY_SIZE:
                    raise ValueError(f"a sender key is {SecretBox.KEY_SIZE} bytes")
                ring._own[(str(item["channel_id"]), int(item["epoch"]))] = key
            for item in data["received"]:
                ring.add_received(
                    str(item["channel_id"]), int(item["epoch"]), str(item["sender_device"]), b64d(item["key"])
                )
            for item in data["distributed"]:
                ring.mark_distributed(
                    str(item["channel_id"]), int(item["epoch"]), [str(d) for d in item["devices"]]
                )
        except (KeyError, TypeError) as exc:
            raise ValueError("malformed sender key ring") from exc
        return ring

    def save(self, path: str | Path) -> None:
        write_private(Path(path), self.to_json().encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path) -> SenderKeyRing:
        """The ring at ``path``, or an empty one if there is none yet (a new device)."""
        p = Path(path)
        try:
            mode = os.stat(p).st_mode
        except FileNotFoundError:
            return cls()
        if mode & 0o077:
            raise PermissionError(f"{p} must not be readable by others (chmod 600)")
        return cls.from_json(p.read_text(encoding="utf-8"))
