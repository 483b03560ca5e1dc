"""Device and member lifecycle: what joining and leaving mean for channels and sockets."""

from __future__ import annotations

from chalicelib.domain.events import DeviceAdded, DeviceRevoked, MemberRemoved
from chalicelib.services.channels import ChannelService
from chalicelib.services.delivery import Delivery
from chalicelib.services.event_bus import EventBus


class DeviceLifecycle:
    """Handles the organisation service's events on behalf of messaging (see ``subscribe``)."""

    def __init__(self, channels: ChannelService, delivery: Delivery) -> None:
        self._channels = channels
        self._delivery = delivery

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(DeviceAdded, self.device_added)
        bus.subscribe(DeviceRevoked, self.device_revoked)
        bus.subscribe(MemberRemoved, self.member_removed)

    def device_added(self, event: DeviceAdded) -> None:
        self._channels.device_registered(event.device)

    def device_revoked(self, event: DeviceRevoked) -> None:
        self._channels.device_revoked(event.device)
        self._delivery.close_device(event.device.member_id, event.device.device_id)

    def member_removed(self, event: MemberRemoved) -> None:
        self._channels.member_removed(event.member)
