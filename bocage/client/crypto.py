"""End-to-end group encryption with ratcheted sender keys (docs/protocol.md, sections 6 and 7),
pure and I/O-free.

Each sending device holds one chain per (channel, epoch) (``bocage.client.ratchet``). It hands
the chain's current state to every member device in a NaCl Box (``seal_sender_key``); every
message is then one SecretBox ciphertext under the next message key of the chain, wrapped in an
``Envelope`` signed by the device's Ed25519 key (``seal_message``). The sealed plaintext repeats
the envelope's clear ``kind`` and ``target``, so a reader drops a message whose clear labels,
on which the server acted, say something else than its content (``open_message``). The server
relays all of it and can read none. Bumping the epoch on removal means the next send uses a
fresh chain the removed member never receives.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

import nacl.exceptions
from nacl.public import Box, PublicKey
from nacl.secret import SecretBox
from nacl.signing import VerifyKey
from pydantic import ValidationError

from bocage.client.profile import DeviceKeys
from bocage.client.results import SealedKey
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.envelope import MAX_CIPHERTEXT_BYTES, MAX_INDEX, Envelope, Kind
from chalicelib.domain.ids import device_id_for
from chalicelib.domain.x25519 import check_box_public_key

PAD_BLOCK = 256
# The largest padded plaintext whose ciphertext (plus the 16-byte MAC) fits in an envelope.
MAX_PADDED_BYTES = (MAX_CIPHERTEXT_BYTES - SecretBox.MACBYTES) // PAD_BLOCK * PAD_BLOCK
# One byte goes to the padding marker, so this is the largest sealed JSON we can send (the
# content wrapped with its kind and target).
MAX_CONTENT_BYTES = MAX_PADDED_BYTES - 1
SENDER_KEY_PURPOSE = "bocage/sender-key/v2"
KEY_BYTES = 32
#: The content ``type`` each envelope kind carries: a reader refuses any other pairing.
CONTENT_TYPES = {
    Kind.MESSAGE: "text",
    Kind.POLL: "poll",
    Kind.VOTE: "vote",
    Kind.POLL_CLOSE: "close",
    Kind.REACTION: "reaction",
    Kind.DELETE: "delete",
    Kind.EDIT: "edit",
}
#: Where a targeted kind's content names its target: it must be the envelope's clear target.
CONTENT_TARGETS = {Kind.POLL_CLOSE: "poll_id", Kind.DELETE: "target", Kind.EDIT: "target"}
_PAD_MARKER = 0x80
_PLACEHOLDER_SIGNATURE = b64e(bytes(64))


class CryptoError(Exception):
    """A message or key that cannot be trusted or read: never show its content."""


class ForgedMessage(CryptoError):
    """The envelope's signature does not verify for the claimed sender device."""


class MislabelledMessage(CryptoError):
    """The clear kind or target (what the server acted on) differs from the sealed content."""


def _canonical(value: dict[str, Any]) -> bytes:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def new_message_id() -> str:
    """A client-chosen id (128 random bits, base64url): retries of a send reuse it.

    Never starting with "-", so that it can follow a command on a command line."""
    while True:
        message_id = b64e(secrets.token_bytes(16))
        if not message_id.startswith("-"):
            return message_id


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INDEX


# --- sender key distribution -------------------------------------------------------------------


def seal_sender_key(
    sender: DeviceKeys,
    recipient_device_id: str,
    recipient_box_public_key: str,
    channel_id: str,
    epoch: int,
    chain_key: bytes,
    index: int,
) -> SealedKey:
    """Box a chain state (``chain_key`` at ``index``) to one recipient device.

    The boxed payload repeats channel, epoch and both device ids, so the (clear) routing fields
    cannot be rewritten to replay the state into another channel or epoch or to another device.
    UnsafeBoxKey (a ValueError) if the recipient's key is all zero or of small order: whatever
    is sealed to such a key, anyone can open.
    """
    if len(chain_key) != KEY_BYTES:
        raise ValueError(f"a chain key is {KEY_BYTES} bytes")
    if not _is_index(index):
        raise ValueError("a chain index is an integer from 0 to 2**31 - 1")
    recipient_key = check_box_public_key(recipient_box_public_key)
    payload = _canonical(
        {
            "purpose": SENDER_KEY_PURPOSE,
            "channel_id": channel_id,
            "epoch": epoch,
            "sender_device": sender.device_id,
            "recipient_device": recipient_device_id,
            "chain_key": b64e(chain_key),
            "index": index,
        }
    )
    box = Box(sender.box, PublicKey(recipient_key))
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
) -> tuple[bytes, int]:
    """Open a chain state sealed to this device, checking every bound field: (chain key, index)."""
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
        sender_key = check_box_public_key(sender_box_public_key)
        box = Box(recipient.box, PublicKey(sender_key))
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
        raise CryptoError("sealed key is bound to another channel, epoch or device (or is not a v2 key)")
    if isinstance(payload["epoch"], bool) or not _is_index(payload.get("index")):
        raise CryptoError("malformed sealed key")
    try:
        chain_key = b64d(payload["chain_key"])
    except (KeyError, ValueError) as exc:
        raise CryptoError("malformed sealed key") from exc
    if len(chain_key) != KEY_BYTES:
        raise CryptoError("malformed sealed key")
    return chain_key, payload["index"]


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


def check_labels(kind: str, target: str | None, sealed: Mapping[str, Any]) -> dict[str, Any]:
    """The content inside a sealed plaintext, if its labels agree with the clear ones.

    The server enforces who may send which kind and acts on targets, reading only the clear
    labels; a sender (with or without the server) could label a post as a reaction, or close a
    poll in clear while the content names another. Readers refuse both (MislabelledMessage).
    """
    content = sealed.get("content")
    if set(sealed) != {"kind", "target", "content"} or not isinstance(content, dict):
        raise MislabelledMessage("the sealed content does not carry its kind and target")
    if sealed["kind"] != kind or sealed["target"] != target:
        raise MislabelledMessage(
            f"the clear labels ({kind}, {target}) differ from the sealed ones "
            f"({sealed['kind']}, {sealed['target']})"
        )
    if kind not in CONTENT_TYPES or content.get("type") != CONTENT_TYPES[Kind(kind)]:
        raise MislabelledMessage(f"a {kind} envelope carries content of type {content.get('type')!r}")
    named = CONTENT_TARGETS.get(Kind(kind))
    if named is not None and content.get(named) != target:
        raise MislabelledMessage(f"the clear target {target} differs from the content's {named}")
    return content


def seal_message(
    sender: DeviceKeys,
    message_key: bytes,
    *,
    index: int,
    channel_id: str,
    epoch: int,
    message_id: str,
    content: dict[str, Any],
    kind: str = "message",
    sent_at_ms: int,
    target: str | None = None,
) -> Envelope:
    """Encrypt ``content`` (with its kind and target) under message key ``index`` and sign it all.

    ValueError, before anything is sent, if the content is too large for one envelope or does
    not match its kind (a reader would drop it).
    """
    try:
        check_labels(kind, target, {"kind": kind, "target": target, "content": content})
    except MislabelledMessage as exc:
        raise ValueError(f"readers would drop this message: {exc}") from exc
    plaintext = _canonical({"kind": kind, "target": target, "content": content})
    if len(plaintext) > MAX_CONTENT_BYTES:
        raise ValueError(
            f"message content is {len(plaintext)} bytes encoded; at most {MAX_CONTENT_BYTES} fit in one "
            "envelope (send large data as an attachment)"
        )
    if len(message_key) != KEY_BYTES:
        raise ValueError(f"a message key is {KEY_BYTES} bytes")
    encrypted = SecretBox(message_key).encrypt(pad(plaintext))
    unsigned = Envelope(
        channel_id=channel_id,
        message_id=message_id,
        sender_device=sender.device_id,
        epoch=epoch,
        index=index,
        kind=Kind(kind),
        target=target,
        sent_at=sent_at_ms,
        nonce=b64e(encrypted.nonce),
        ciphertext=b64e(encrypted.ciphertext),
        signature=_PLACEHOLDER_SIGNATURE,
    )
    signature = sender.signing.sign(unsigned.signing_bytes()).signature
    return unsigned.model_copy(update={"signature": b64e(signature)})


def parse_envelope(envelope: Envelope | Mapping[str, Any]) -> Envelope:
    """The signed envelope in a stored message (server-added fields dropped); CryptoError if malformed."""
    if isinstance(envelope, Envelope):
        return envelope
    try:
        return Envelope.model_validate({k: v for k, v in envelope.items() if k in Envelope.model_fields})
    except ValidationError as exc:
        raise CryptoError("malformed envelope") from exc


def verify_envelope(envelope: Envelope | Mapping[str, Any], sender_sign_public_key: str) -> Envelope:
    """The signed envelope, once its signature verifies with the sender device's key
    (ForgedMessage if not): checked before any verdict on the sender, so a server's rewrite is
    called a forgery rather than blamed on the member.

    A dict may carry server-added fields (seq, stored_at, ...): they are not signed and ignored.
    The signing key must belong to the envelope's ``sender_device`` (ids derive from the key).
    """
    envelope = parse_envelope(envelope)
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
    return envelope


def open_message(
    envelope: Envelope | Mapping[str, Any], message_key: bytes, sender_sign_public_key: str
) -> dict[str, Any]:
    """Verify the signature first (``verify_envelope``), then decrypt, unpad and check the
    labels; returns the content."""
    return open_verified(verify_envelope(envelope, sender_sign_public_key), message_key)


def open_verified(envelope: Envelope, message_key: bytes) -> dict[str, Any]:
    """Decrypt, unpad and check the labels of an envelope ``verify_envelope`` returned (and only
    such a one: nothing here checks the signature); the read path verifies before its verdict on
    the sender, then opens with this, so each message costs one Ed25519 verification."""
    try:
        padded = SecretBox(message_key).decrypt(b64d(envelope.ciphertext), b64d(envelope.nonce))
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise CryptoError("message does not decrypt with this key") from exc
    try:
        sealed = json.loads(unpad(padded).decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CryptoError("message content is not JSON") from exc
    if not isinstance(sealed, dict):
        raise CryptoError("message content is not a JSON object")
    return check_labels(envelope.kind.value, envelope.target, sealed)


# --- call signals (docs/protocol.md, section 19) -----------------------------------------------

CALL_SIGNAL_PURPOSE = "bocage/call-signal/v1"


def _call_binding(
    channel_id: str, call_id: str, signal: str, sender_device: str, recipient_device: str
) -> dict[str, Any]:
    return {
        "purpose": CALL_SIGNAL_PURPOSE,
        "channel_id": channel_id,
        "call_id": call_id,
        "signal": signal,
        "sender_device": sender_device,
        "recipient_device": recipient_device,
    }


def seal_call_signal(
    sender: DeviceKeys,
    recipient_device_id: str,
    recipient_box_public_key: str,
    channel_id: str,
    call_id: str,
    signal: str,
    data: Mapping[str, Any],
    *,
    nonce: bytes | None = None,
) -> str:
    """Box an offer, an answer or a candidate (``data``) to one device, bound to the channel, the
    call, the signal and both devices, so the server cannot replay it elsewhere. ``nonce``: for
    test vectors only (24 random bytes otherwise)."""
    recipient_key = check_box_public_key(recipient_box_public_key)
    payload = _canonical(
        {
            **_call_binding(channel_id, call_id, signal, sender.device_id, recipient_device_id),
            "data": dict(data),
        }
    )
    box = Box(sender.box, PublicKey(recipient_key))
    return b64e(bytes(box.encrypt(payload, nonce)))


def open_call_signal(
    recipient: DeviceKeys,
    sealed: str,
    sender_device: str,
    sender_box_public_key: str,
    channel_id: str,
    call_id: str,
    signal: str,
) -> dict[str, Any]:
    """The ``data`` of a sealed signal, once every bound field is checked (CryptoError if not)."""
    try:
        sender_key = check_box_public_key(sender_box_public_key)
        box = Box(recipient.box, PublicKey(sender_key))
        payload = json.loads(box.decrypt(b64d(sealed)).decode("utf-8"))
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise CryptoError("call signal does not open") from exc
    expected = _call_binding(channel_id, call_id, signal, sender_device, recipient.device_id)
    if not isinstance(payload, dict) or any(payload.get(k) != v for k, v in expected.items()):
        raise CryptoError("call signal is bound to another channel, call, signal or device")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise CryptoError("malformed call signal")
    return data
