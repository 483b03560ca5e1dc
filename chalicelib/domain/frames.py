"""WebSocket frames, one model each: what the server pushes and what clients send.

The server builds these and never a bare dict; the Python client parses every frame it
receives with ``parse_frame``, and docs/protocol.md describes the same shapes for the web
client. A frame is one JSON object whose ``type`` (server to client) or ``action`` (client
to server) names its model.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from chalicelib.domain.calls import MAX_SEALED_CHARS, MAX_TARGETS, Signal
from chalicelib.domain.envelope import Kind
from chalicelib.errors import BocageError


class _Model(BaseModel):
    # Unknown fields are ignored, so a client keeps working when a later server adds one.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    def wire(self) -> dict[str, Any]:
        """The JSON object that goes on the wire."""
        return self.model_dump(mode="json")


class StoredMessage(_Model):
    """A message as readers receive it: the sender's signed envelope plus what the server stamped.

    The envelope fields are exactly the signed ones (``target`` stays present when null, since
    the signature covers it); ``nonce``, ``ciphertext`` and ``signature`` are gone once a
    message is deleted for everyone. ``seq``, ``sender_member``, ``stored_at`` and
    ``expires_at`` come from the server and are not signed.
    """

    v: int
    channel_id: str
    message_id: str
    sender_device: str
    epoch: int
    index: int
    kind: Kind
    target: str | None = None
    sent_at: int
    nonce: str | None = None
    ciphertext: str | None = None
    signature: str | None = None
    seq: int
    sender_member: str
    stored_at: int
    expires_at: int
    deleted: bool | None = None
    deleted_at: int | None = None
    deleted_by: str | None = None

    def wire(self) -> dict[str, Any]:
        """The JSON object clients get: the envelope fields always, server extras when set."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if v is not None or k in _ALWAYS_SENT}


_ALWAYS_SENT = frozenset({"target"})


# -- server to client -------------------------------------------------------------------------


class Frame(_Model):
    """What the server pushes: one JSON object whose ``type`` names the model."""


class MessageFrame(Frame):
    type: Literal["message"] = "message"
    message: StoredMessage

    def wire(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message.wire()}


class JoinedFrame(Frame):
    """A member joined the channel; ``roster`` is the device roster's new version."""

    type: Literal["joined"] = "joined"
    channel_id: str
    member_id: str
    roster: int


class LeftFrame(Frame):
    """A member left or was removed; the channel moved to ``epoch`` without their devices."""

    type: Literal["left"] = "left"
    channel_id: str
    member_id: str
    epoch: int


class DeviceFrame(Frame):
    """A member of the channel linked a new device: senders share their key with it."""

    type: Literal["device"] = "device"
    channel_id: str
    roster: int


class RevokedFrame(Frame):
    """A device was revoked; the channel moved to ``epoch`` without it."""

    type: Literal["revoked"] = "revoked"
    channel_id: str
    device_id: str
    epoch: int


class RotatedFrame(Frame):
    """The channel's keys aged past one retention and moved to ``epoch``."""

    type: Literal["rotated"] = "rotated"
    channel_id: str
    epoch: int


class RoleFrame(Frame):
    type: Literal["role"] = "role"
    channel_id: str
    member_id: str
    role: str


class ChannelFrame(Frame):
    """The channel was renamed."""

    type: Literal["channel"] = "channel"
    channel_id: str
    name: str


class Receipt(_Model):
    """Where a message was stored; ``duplicate`` for a resend, ``online``: devices pushed to.

    The REST answer to a send (``SendResult``) and the WebSocket ``ack`` share these fields.
    """

    message_id: str
    channel_id: str
    seq: int
    expires_at: int
    duplicate: bool
    online: int


class AckFrame(Frame, Receipt):
    """The answer to a ``send`` action: its receipt, tied to the action's ``ref``."""

    type: Literal["ack"] = "ack"
    ref: str | None = None


class ErrorFrame(Frame):
    """An action failed: the same status, code and message as the REST error body."""

    type: Literal["error"] = "error"
    status: int
    error: str
    message: str
    ref: str | None = None

    @classmethod
    def of(cls, error: BocageError, ref: str | None = None) -> ErrorFrame:
        return cls.model_validate({"status": error.status, **error.to_body(), "ref": ref})

    def wire(self) -> dict[str, Any]:
        """``ref`` only when the failed action had one."""
        data = self.model_dump(mode="json")
        return data if self.ref is not None else {k: v for k, v in data.items() if k != "ref"}


class PongFrame(Frame):
    type: Literal["pong"] = "pong"
    ref: str | None = None


class CallFrame(Frame):
    """A call signal from one device of the channel (docs/protocol.md, 19). ``sealed``: the
    SDP or candidate boxed to the receiving device; ``reason`` on a hang-up the server sends."""

    type: Literal["call"] = "call"
    channel_id: str
    call_id: str
    signal: str
    from_device: str
    from_member: str
    sealed: str | None = None
    reason: str | None = None
    at: int

    def wire(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if v is not None}


class CallAckFrame(Frame):
    """The answer to a ``call`` action: relayed to ``delivered`` connections; the call's
    participants (device ids) once the signal is applied."""

    type: Literal["call_ack"] = "call_ack"
    ref: str | None = None
    call_id: str
    signal: str
    delivered: int
    participants: list[str]
    ended: bool


class BatchFrame(Frame):
    """Several frames for one connection in one WebSocket message (docs/protocol.md, 9): API
    Gateway bills a message per 32 KB, and about 17 message frames fit in one. The inner frames
    stay raw objects so a client skips an inner kind it does not know, not the whole batch;
    a batch never holds a batch."""

    type: Literal["batch"] = "batch"
    frames: list[dict[str, Any]]


ServerFrame = Annotated[
    MessageFrame
    | JoinedFrame
    | LeftFrame
    | DeviceFrame
    | RevokedFrame
    | RotatedFrame
    | RoleFrame
    | ChannelFrame
    | AckFrame
    | ErrorFrame
    | PongFrame
    | CallFrame
    | CallAckFrame
    | BatchFrame,
    Field(discriminator="type"),
]

#: Frames that change a channel's membership or keys: clients refresh their roster on them.
MembershipFrame = (
    JoinedFrame | LeftFrame | DeviceFrame | RevokedFrame | RotatedFrame | RoleFrame | ChannelFrame
)


#: Close codes of the application's range (docs/protocol.md, section 9). API Gateway's close
#: (the @connections DELETE) carries no code, so the server first sends an ``error`` frame with
#: the same meaning (``replaced``, ``rate_limited``): clients act on either.
CLOSE_REPLACED = 4008  # the device opened newer connections past its cap: do not reconnect
CLOSE_RATE_LIMITED = 4029  # frames kept coming past the rate limit: reconnect, but slowly


# -- client to server -------------------------------------------------------------------------


class PingAction(_Model):
    action: Literal["ping"] = "ping"
    ref: str | None = Field(default=None, max_length=64)


class SendAction(_Model):
    """Send a message over the open socket; answered by an ``ack`` or an ``error`` with ``ref``."""

    action: Literal["send"] = "send"
    ref: str | None = Field(default=None, max_length=64)
    envelope: dict[str, Any]
    # The members in "mentions only" mode the text mentions (section 17); checked by messaging.
    notify: Any = None


_CALL_ID = r"^k_[a-z2-7]{16}$"
_DEVICE_ID = r"^d_[a-z2-7]{16}$"
_SEALED = r"^[A-Za-z0-9_-]+={0,2}$"  # base64url, as b64e writes it


class CallTarget(_Model):
    device_id: str = Field(pattern=_DEVICE_ID)
    sealed: str | None = Field(default=None, max_length=MAX_SEALED_CHARS, pattern=_SEALED)


class CallAction(_Model):
    """A call signal to named devices of a channel's members; answered by a ``call_ack``."""

    action: Literal["call"] = "call"
    ref: str | None = Field(default=None, max_length=64)
    channel_id: str = Field(max_length=64)
    call_id: str = Field(pattern=_CALL_ID)
    signal: Signal
    to: list[CallTarget] = Field(default=[], max_length=MAX_TARGETS)


ClientAction = Annotated[PingAction | SendAction | CallAction, Field(discriminator="action")]


@cache
def _server_frames() -> TypeAdapter[ServerFrame]:
    return TypeAdapter(ServerFrame)


@cache
def _client_actions() -> TypeAdapter[ClientAction]:
    return TypeAdapter(ClientAction)


def parse_frame(raw: object) -> ServerFrame:
    """A frame from the server, validated (``pydantic.ValidationError`` if it is not one)."""
    return _server_frames().validate_python(raw)


def parse_action(raw: object) -> ClientAction:
    """An action from a client, validated (``pydantic.ValidationError`` if it is not one)."""
    return _client_actions().validate_python(raw)


def frame_dict(frame: Frame) -> dict[str, Any]:
    """The JSON object of a frame, as it goes on the wire."""
    return frame.wire()


def frame_bytes(frame: Frame) -> bytes:
    """A frame serialised once, ready for every connection it goes to."""
    return json.dumps(frame_dict(frame), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


#: API Gateway bills a WebSocket message per 32 KB: a batch is filled up to one unit, no further.
BATCH_UNIT = 32 * 1024
_BATCH_OPEN = b'{"type":"batch","frames":['
_BATCH_CLOSE = b"]}"


def coalesce(frames: list[bytes], unit: int = BATCH_UNIT) -> list[bytes]:
    """One connection's serialised frames as few WebSocket messages as fit, in order.

    Consecutive frames share a ``batch`` while it stays within ``unit`` bytes; a frame alone
    (or one too large to share) goes as itself, so a lone frame is never wrapped. The frames
    are spliced as they are, never parsed again.
    """
    messages: list[bytes] = []
    group: list[bytes] = []
    size = len(_BATCH_OPEN) + len(_BATCH_CLOSE) - 1  # minus the comma the first frame does not need

    def flush() -> None:
        if len(group) == 1:
            messages.append(group[0])
        elif group:
            messages.append(_BATCH_OPEN + b",".join(group) + _BATCH_CLOSE)

    for data in frames:
        if group and size + 1 + len(data) > unit:
            flush()
            group, size = [], len(_BATCH_OPEN) + len(_BATCH_CLOSE) - 1
        group.append(data)
        size += 1 + len(data)
    flush()
    return messages


def parse_frames(raw: object) -> list[ServerFrame]:
    """What one WebSocket message holds, in order: its frame, or a ``batch``'s inner frames.

    An inner frame a client does not know (or a nested batch) is skipped alone, as an unknown
    message is; ``ValidationError`` only when the message itself is not a frame.
    """
    frame = parse_frame(raw)
    if not isinstance(frame, BatchFrame):
        return [frame]
    opened: list[ServerFrame] = []
    for inner in frame.frames:
        try:
            parsed = parse_frame(inner)
        except ValueError:  # pydantic's ValidationError is one
            continue
        if not isinstance(parsed, BatchFrame):
            opened.append(parsed)
    return opened
