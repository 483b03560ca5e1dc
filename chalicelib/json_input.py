"""Reading a client's JSON at the edge: one rule for REST bodies and WebSocket frames.

Malformed text, nesting too deep for the parser (Python's decoder recurses, so a body nested a
few thousand levels raises ``RecursionError``, not ``ValueError``) and anything but an object
are the client's error: a 400 with a message, never an exception that reaches the log.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import BadRequest


def parse_object(text: str | bytes, *, malformed: str, not_object: str) -> dict[str, Any]:
    """The JSON object in ``text``; ``BadRequest`` with the caller's messages otherwise."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(malformed) from exc
    if not isinstance(raw, dict):
        raise BadRequest(not_object)
    return raw
