"""The event bus delivers each organisation event to every subscribed handler, and refuses to drop one."""

from __future__ import annotations

import pytest

from chalicelib.domain.events import DeviceAdded, DeviceRevoked
from chalicelib.services.event_bus import EventBus, UnhandledEvent
from tests.support import device_model


def test_handlers_run_in_subscription_order_for_their_event_type_only() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(DeviceAdded, lambda e: seen.append(f"first {e.device.device_id}"))
    bus.subscribe(DeviceAdded, lambda e: seen.append("second"))
    bus.subscribe(DeviceRevoked, lambda e: seen.append("revoked"))
    bus.publish(DeviceAdded(device_model("d_0123456789abcdef", "m_0123456789abcdef")))
    assert seen == ["first d_0123456789abcdef", "second"]


def test_an_event_without_a_handler_is_a_wiring_error_not_a_silent_drop() -> None:
    bus = EventBus()
    bus.subscribe(DeviceAdded, lambda e: None)
    with pytest.raises(UnhandledEvent, match="DeviceRevoked"):
        bus.publish(DeviceRevoked(device_model("d_0123456789abcdef", "m_0123456789abcdef")))
