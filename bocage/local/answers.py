"""An HTTP answer as plain data, so what to answer is decided apart from the server that writes it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Statuses that never carry a body, nor a Content-Length (RFC 9110, 8.6).
BODILESS = frozenset({204, 304})


@dataclass(frozen=True)
class Answer:
    """Status, headers and body; the server adds Content-Length (except for ``BODILESS``).

    ``close``: the connection must end after this answer (announced with ``Connection: close``),
    because an unread request body leaves the rest of the stream unframeable.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False


def json_answer(
    status: int, document: dict[str, Any], *, error_type: str | None = None, close: bool = False
) -> Answer:
    """A JSON answer; ``error_type`` goes in ``x-amzn-ErrorType``, where botocore reads error codes."""
    headers = [("x-amzn-ErrorType", error_type)] if error_type is not None else []
    headers.append(("Content-Type", "application/json"))
    return Answer(status, headers, json.dumps(document).encode(), close)


def refusal(status: int, error: str, message: str) -> Answer:
    """The REST API's own error shape; the connection is closed, its request body unread."""
    return json_answer(status, {"error": error, "message": message}, close=True)
