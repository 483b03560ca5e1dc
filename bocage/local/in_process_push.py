"""The Push port for ``bocage serve``: frames go straight to this process's open connections.

On AWS a push is a signed HTTPS call to API Gateway (``ApiGatewayPush``). Here the connections
live in this very process, so a push is a write to a socket: no signing, no HTTP hop, and no
waiting (the registry queues the batch on the event loop). A frame for many connections is
serialised once (``send_many``). Answers match API Gateway's: ``ConnectionGone`` for an id that
is not open, ``FrameTooLarge`` over its size limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from bocage.local.connections import MAX_FRAME, ConnectionRegistry
from chalicelib.ports import ConnectionGone, Target


class FrameTooLarge(ValueError):
    """Over PostToConnection's limit: API Gateway would refuse it, so this does too."""


def check_size(data: bytes) -> None:
    if len(data) > MAX_FRAME:
        raise FrameTooLarge(f"a frame of {len(data)} bytes is over {MAX_FRAME}")


class InProcessPush:
    def __init__(self, connections: ConnectionRegistry) -> None:
        self._connections = connections

    def send(self, connection_id: str, data: bytes) -> None:
        check_size(data)
        if self._connections.post_many((connection_id,), data):
            raise ConnectionGone(connection_id)

    def send_many(self, targets: Sequence[Target], data: bytes) -> list[str]:
        """One frame to many connections; returns the ids that are gone."""
        check_size(data)
        return self._connections.post_many((t.connection_id for t in targets), data)

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        self._connections.close(connection_id, code, reason)  # False (already gone) is not an error
