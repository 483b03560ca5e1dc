"""One open WebSocket connection: frames as they arrive, and sends answered by their ack.

Every frame is parsed into its model (``chalicelib.domain.frames``) as soon as it is read
and shown to ``on_frame`` at once, so what it announces (a roster version, a new epoch)
is known even while a send waits for its ack; frames read meanwhile are kept, in order,
for ``frames()``. One thread at a time uses a session.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from bocage.client.api import ApiError
from bocage.client.results import Receipt
from chalicelib.domain.envelope import Envelope
from chalicelib.domain.frames import (
    CLOSE_RATE_LIMITED,
    CLOSE_REPLACED,
    AckFrame,
    CallAckFrame,
    CallAction,
    ErrorFrame,
    SendAction,
    ServerFrame,
    parse_frames,
)

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

ACK_TIMEOUT = 30.0
#: Close codes after which the server wants the client back, soon, elsewhere if need be: going
#: away (idle, a replica stopping), abnormal closure (a replica died, or dropped a client that
#: did not keep up), internal error, service restart, try again later; and too many frames,
#: after a pause. Never after "replaced" (4008): the device's newer connections would take turns.
RECONNECT_CODES = frozenset({1001, 1006, 1011, 1012, 1013, CLOSE_RATE_LIMITED})
RATE_LIMITED_PAUSE = 30.0  # seconds before reconnecting after 4029


class ConnectionReplaced(ApiError):
    """The server closed this connection: the device opened newer ones past its cap."""

    def __init__(self) -> None:
        super().__init__(409, "replaced", "this device opened newer connections; this one was closed")


class LiveSession:
    def __init__(self, ws: ClientConnection, on_frame: Callable[[ServerFrame], None]) -> None:
        self._ws = ws
        self._on_frame = on_frame
        self._pending: deque[ServerFrame] = deque()
        self._unread: deque[ServerFrame] = deque()  # the rest of a batch's frames, not yet returned
        self.closed = False
        self._told_replaced = False  # the "replaced" error frame, all API Gateway's close says

    @property
    def should_reconnect(self) -> bool:
        """Closed by the server with a code that asks the client to come back (and catch up)."""
        return self.closed and not self.replaced and self._ws.close_code in RECONNECT_CODES

    @property
    def replaced(self) -> bool:
        """Closed because this device opened newer connections past its cap (docs/protocol.md 9)."""
        return self.closed and (self._told_replaced or self._ws.close_code == CLOSE_REPLACED)

    def pause_before_reconnecting(self) -> float | None:
        """Once closed: the least pause before reconnecting (a client closed for flooding
        waits), None when the server does not want the client back; ``ConnectionReplaced``."""
        if self.replaced:
            raise ConnectionReplaced()
        if not self.should_reconnect:
            return None
        return RATE_LIMITED_PAUSE if self._ws.close_code == CLOSE_RATE_LIMITED else 0.0

    def frames(self, timeout: float | None = None) -> Iterator[ServerFrame]:
        """Frames as they come, until ``timeout`` seconds pass or the server closes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._pending:
                yield self._pending.popleft()
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            frame = self._receive(remaining)
            if frame is None:
                return
            yield frame

    def keep(self, frames: list[ServerFrame]) -> None:
        """Put back frames read but not for the reader (a call's signals read past a message):
        they come first, in order, from the next ``frames()``."""
        self._pending.extendleft(reversed(frames))

    def pump(self) -> None:
        """Read what already arrived, without waiting, so its announcements are known."""
        while (frame := self._receive(0)) is not None:
            self._pending.append(frame)

    def send(
        self, envelope: Envelope, timeout: float = ACK_TIMEOUT, *, notify: Sequence[str] = ()
    ) -> Receipt:
        """Send a sealed message and wait for the server's answer to it (``ref``: its id);
        ``notify`` rides beside the envelope (protocol section 17)."""
        ref = envelope.message_id
        action = SendAction(
            ref=ref, envelope=envelope.model_dump(mode="json"), notify=list(notify) if notify else None
        )
        self._ws.send(json.dumps(action.model_dump(mode="json", exclude_none=True)))
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            frame = self._receive(remaining)
            if self.closed:
                raise ConnectionError(f"the connection closed before the server answered message {ref}")
            if isinstance(frame, AckFrame | ErrorFrame) and frame.ref == ref:
                return _receipt(frame)
            if isinstance(frame, ErrorFrame) and frame.error == "rate_limited" and frame.ref is None:
                return _receipt(frame)  # the frame was refused unread: it was this send
            if frame is not None:
                self._pending.append(frame)
        raise TimeoutError(f"no answer from the server to message {ref}")

    def call(self, action: CallAction, timeout: float = ACK_TIMEOUT) -> CallAckFrame:
        """Send a call signal and wait for the server's ``call_ack`` (ApiError on its refusal)."""
        ref = action.ref or f"call-{time.monotonic_ns()}"
        action = action.model_copy(update={"ref": ref})
        self._ws.send(json.dumps(action.wire()))
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            frame = self._receive(remaining)
            if self.closed:
                raise ConnectionError(f"the connection closed before the server answered signal {ref}")
            if isinstance(frame, CallAckFrame) and frame.ref == ref:
                return frame
            unread = isinstance(frame, ErrorFrame) and frame.error == "rate_limited" and frame.ref is None
            if isinstance(frame, ErrorFrame) and (frame.ref == ref or unread):
                raise ApiError(frame.status, frame.error, frame.message)
            if frame is not None:
                self._pending.append(frame)
        raise TimeoutError(f"no answer from the server to signal {ref}")

    def _receive(self, timeout: float | None) -> ServerFrame | None:
        """The next frame that parses (a newer server's unknown kinds are skipped), or None
        when the time is up or the connection closed."""
        from websockets.exceptions import ConnectionClosed

        while not self._unread:
            try:
                raw = self._ws.recv(timeout=timeout)
            except TimeoutError:
                return None
            except ConnectionClosed:
                self.closed = True
                return None
            try:  # one frame, or a batch's frames in their order (docs/protocol.md, 9)
                self._unread.extend(parse_frames(json.loads(raw)))
            except ValueError:  # not JSON, or not a frame this client knows (ValidationError)
                continue
        frame = self._unread.popleft()
        if isinstance(frame, ErrorFrame) and frame.error == "replaced":
            self._told_replaced = True
        self._on_frame(frame)
        return frame


def _receipt(frame: AckFrame | ErrorFrame) -> Receipt:
    if isinstance(frame, ErrorFrame):
        raise ApiError(frame.status, frame.error, frame.message)
    return {
        "message_id": frame.message_id,
        "channel_id": frame.channel_id,
        "seq": frame.seq,
        "expires_at": frame.expires_at,
        "duplicate": frame.duplicate,
        "online": frame.online,
    }
