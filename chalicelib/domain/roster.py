"""Who holds a channel's keys: its key epoch, its device roster and the sealed sender keys.

A sender seals its key for the current epoch to every device on the roster; the epoch
moves on when someone leaves, so the next message uses keys they never receive.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


class Epoch(_Model):
    """The channel's key epoch and when it started (keys rotate one retention after that)."""

    number: int = 0
    started_at: int = 0


class ChannelCounters(_Model):
    """Atomic counters: the roster's version, the last message number, the member count."""

    roster: int = 0
    seq: int = 0
    members: int = 0
    followers: int = 0  # a public tribe's followers (not counted in ``members``)
    roster_busy: int = 0  # roster changes begun and not yet ended (or died half-way)


class RosterDevice(_Model):
    """A device senders distribute their key to: its member and its public keys."""

    device_id: str
    member_id: str
    sign_public_key: str
    box_public_key: str
    device_cert: dict[str, Any] | None = None
    ticket: dict[str, Any] | None = None


class SealedKey(_Model):
    """A sender device's key for one epoch, sealed to one recipient device."""

    sender_device: str
    recipient_device: str
    epoch: int
    sealed: str
