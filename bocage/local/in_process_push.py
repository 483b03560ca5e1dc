"""The Push port for ``bocage serve``: frames go straight to this process's open connections.

On AWS a push is a signed HTTPS call to API Gateway (``ApiGatewayPush``). On one machine the
connections live in this very process, so signing a request and posting it to our own
``@connections`` endpoint would only add cost: this adapter writes to the registry directly,
with the same answers (``ConnectionGone`` for an unknown or closed connection).
"""

from __future__ import annotations

from bocage.local.connections import MAX_FRAME, ConnectionRegistry
from chalicelib.ports import ConnectionGone


class FrameTooLarge(ValueError):
    """Over PostToConnection's limit: API Gateway would refuse it, so this does too."""


class InProcessPush:
    """Blocks until the frame is written, like PostToConnection; call it off the gateway's loop."""

    def __init__(self, connections: ConnectionRegistry) -> None:
        self._connections = connections

    def send(self, connection_id: str, data: bytes) -> None:
        """Raises ``TimeoutError`` when the client does not read its frames fast enough."""
        if len(data) > MAX_FRAME:
            raise FrameTooLarge(f"a frame of {len(data)} bytes is over {MAX_FRAME}")
        if not self._connections.post(connection_id, data):
            raise ConnectionGone(connection_id)

    def close(self, connection_id: str) -> None:
        self._connections.close(connection_id)  # False (already gone) is not an error
