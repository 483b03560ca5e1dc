"""An HTTP answer as plain data, so what to answer is decided apart from the server that writes it."""

from __future__ import annotations

import dataclasses
import gzip
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


#: Smaller bodies are sent as they are: gzip's header and a round of CPU would outweigh the gain.
GZIP_MIN_BYTES = 1024
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/manifest+json",
    "image/svg",
)


def _header(answer: Answer, name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in answer.headers if k.lower() == wanted), None)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether the client takes gzip (``gzip`` listed, and not with ``q=0``)."""
    for part in (accept_encoding or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def compressed(answer: Answer, accept_encoding: str | None) -> Answer:
    """The answer gzipped when it is text, large enough and the client takes gzip.

    A strong ETag becomes weak (as nginx does): the gzipped bytes are not the file's bytes, but
    a revalidation with it still matches the same file (``If-None-Match`` compares by content).
    """
    content_type = (_header(answer, "Content-Type") or "").lower()
    if (
        answer.status in BODILESS
        or len(answer.body) < GZIP_MIN_BYTES
        or _header(answer, "Content-Encoding") is not None
        or not content_type.startswith(_TEXT_TYPES)
        or not accepts_gzip(accept_encoding)
    ):
        return answer
    headers = [
        (k, f"W/{v}" if k.lower() == "etag" and not v.startswith("W/") else v) for k, v in answer.headers
    ]
    headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
    return dataclasses.replace(
        answer, headers=headers, body=gzip.compress(answer.body, compresslevel=6, mtime=0)
    )
