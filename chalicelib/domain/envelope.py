"""The message envelope: what the server stores and relays, and all it ever sees.

Content is one SecretBox ciphertext under the message key at ``index`` of the
sender device's ratchet for the channel's epoch (docs/protocol.md, sections 6
and 7); the envelope is signed by the sender device's Ed25519 key. The server
checks shape and sizes and stamps order and expiry; it cannot read or forge the
content. The same model serves the client (bocage.client.crypto).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chalicelib.domain.encoding import b64d

VERSION = 2
#: The ratchet index is a 31-bit counter: a sender device never sends 2**31 messages in one epoch.
MAX_INDEX = 2**31 - 1
MAX_CIPHERTEXT_BYTES = 64 * 1024
NONCE_BYTES = 24
SIGNATURE_BYTES = 64
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


class Kind(StrEnum):
    """What an envelope is, in clear: the server enforces who may send which kind.

    Everything else (text, a reply's quoted id, a poll's question and options, a
    vote's choices, a reaction's emoji and target) is inside the ciphertext.
    """

    MESSAGE = "message"  # text, or a reply quoting another message
    POLL = "poll"
    VOTE = "vote"
    POLL_CLOSE = "poll_close"  # target: the poll
    REACTION = "reaction"
    DELETE = "delete"  # target: the message to delete for everyone
    EDIT = "edit"  # target: the sender's own text message, whose text it replaces


#: Kinds that name their target in clear, because the server acts on it.
TARGETED = frozenset({Kind.POLL_CLOSE, Kind.DELETE, Kind.EDIT})
#: What a tribe's plain members may send: they read, react and vote.
AUDIENCE_KINDS = frozenset({Kind.REACTION, Kind.VOTE})


class Envelope(BaseModel):
    """An envelope as the sender builds and signs it."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    v: int = VERSION
    channel_id: str = Field(min_length=3, max_length=40)
    message_id: str = Field(pattern=MESSAGE_ID_PATTERN)
    sender_device: str = Field(min_length=3, max_length=40)
    epoch: int = Field(ge=0, le=2**31)
    index: int = Field(ge=0, le=MAX_INDEX, strict=True)  # the message key's place in the sender's ratchet
    kind: Kind = Kind.MESSAGE
    target: str | None = Field(default=None, pattern=MESSAGE_ID_PATTERN)
    sent_at: int = Field(ge=0, le=2**42)  # client clock, epoch milliseconds: display only
    nonce: str
    ciphertext: str
    signature: str

    @field_validator("v")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != VERSION:
            raise ValueError(f"unsupported envelope version {value}")
        return value

    @field_validator("nonce")
    @classmethod
    def _nonce(cls, value: str) -> str:
        return _b64_of_size(value, "nonce", exact=NONCE_BYTES)

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        return _b64_of_size(value, "signature", exact=SIGNATURE_BYTES)

    @field_validator("ciphertext")
    @classmethod
    def _ciphertext(cls, value: str) -> str:
        if len(value) > (MAX_CIPHERTEXT_BYTES * 4) // 3 + 4:
            raise ValueError(f"ciphertext over {MAX_CIPHERTEXT_BYTES} bytes")
        return _b64_of_size(value, "ciphertext", maximum=MAX_CIPHERTEXT_BYTES, minimum=16)

    @model_validator(mode="after")
    def _target_for_targeted_kinds(self) -> Envelope:
        if (self.kind in TARGETED) != (self.target is not None):
            raise ValueError("target is required for poll_close, delete and edit, and only for them")
        return self

    def signing_bytes(self) -> bytes:
        return signing_bytes(self.model_dump(mode="json"))


def signing_bytes(fields: dict[str, Any]) -> bytes:
    """The exact bytes a sender signs: every envelope field but the signature, canonical JSON."""
    unsigned = {k: v for k, v in fields.items() if k in Envelope.model_fields and k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _b64_of_size(
    value: str, name: str, *, exact: int | None = None, maximum: int = 0, minimum: int = 0
) -> str:
    try:
        raw = b64d(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be base64url") from exc
    if exact is not None and len(raw) != exact:
        raise ValueError(f"{name} must be {exact} bytes")
    if exact is None and not minimum <= len(raw) <= maximum:
        raise ValueError(f"{name} must be {minimum} to {maximum} bytes")
    return value


def parse_envelope(raw: object) -> Envelope:
    """Validate a client's envelope: 413 over the ciphertext limit, 400 for anything else."""
    from pydantic import ValidationError

    from chalicelib.errors import BadRequest, PayloadTooLarge

    if not isinstance(raw, dict):
        raise BadRequest("envelope must be a JSON object")
    if raw.get("v") != VERSION and isinstance(raw.get("v"), int):
        raise BadRequest(
            f"envelope version {raw['v']} is not accepted: this server speaks protocol version "
            f"{VERSION} only; update the client"
        )
    ciphertext = raw.get("ciphertext")
    if isinstance(ciphertext, str) and len(ciphertext) > (MAX_CIPHERTEXT_BYTES * 4 + 2) // 3:
        raise PayloadTooLarge(f"ciphertext over {MAX_CIPHERTEXT_BYTES} bytes (64 KiB)")
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'envelope'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise BadRequest(f"invalid envelope: {problems}") from exc
