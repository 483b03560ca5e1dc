"""Domain events: facts one service states and others act on (channels re-key, sockets close).

The organisation service publishes them on the event bus; it does not know who listens.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.organisation import Device, Member


@dataclass(frozen=True)
class DeviceAdded:
    """A device was activated or linked: it joins its member's channel rosters."""

    device: Device


@dataclass(frozen=True)
class DeviceRevoked:
    """A device was revoked: it leaves every roster and loses its live connections."""

    device: Device


@dataclass(frozen=True)
class MemberRemoved:
    """A member was removed from the organisation: they leave every channel."""

    member: Member


Event = DeviceAdded | DeviceRevoked | MemberRemoved
