"""Device and member lifecycle: what joining and leaving mean for channels and sockets."""

from __future__ import annotations

from chalicelib.domain.organisation import Device, Member
from chalicelib.services.channels import ChannelService
from chalicelib.services.delivery import Delivery


class DeviceLifecycle:
    """Listens to the organisation service (its DeviceEvents) on behalf of messaging."""

    def __init__(self, channels: ChannelService, delivery: Delivery) -> None:
        self._channels = channels
        self._delivery = delivery

    def device_added(self, device: Device) -> None:
        self._channels.device_registered(device)

    def device_revoked(self, device: Device) -> None:
        self._channels.device_revoked(device)
        self._delivery.close_device(device.member_id, device.device_id)

    def member_removed(self, member: Member) -> None:
        self._channels.member_removed(member)
