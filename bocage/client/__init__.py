"""The Python SDK: device keys, signed REST calls (and, later, E2E crypto and WebSocket)."""

from bocage.client.api import ApiError, BocageClient
from bocage.client.profile import DeviceKeys, OperatorKey, Profile

__all__ = ["ApiError", "BocageClient", "DeviceKeys", "OperatorKey", "Profile"]
