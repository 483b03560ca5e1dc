"""Errors that carry the HTTP status and a machine-readable code.

Services raise these; the entry points turn them into a JSON error body, so a
client always gets a clear status code and message, never a stack trace.
"""

from __future__ import annotations


class BocageError(Exception):
    """Base class: a status code, a stable error code and a human message."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class BadRequest(BocageError):
    status = 400
    code = "bad_request"


class Unauthorized(BocageError):
    status = 401
    code = "unauthorized"


class Forbidden(BocageError):
    status = 403
    code = "forbidden"


class NotFound(BocageError):
    status = 404
    code = "not_found"


class Conflict(BocageError):
    status = 409
    code = "conflict"


class Replaced(Conflict):
    """A WebSocket closed because its device opened more than its share of newer ones."""

    code = "replaced"


class Gone(BocageError):
    status = 410
    code = "gone"


class NotConfigured(BocageError):
    """A feature this server was not set up for (e.g. Web Push without a VAPID key)."""

    status = 501
    code = "not_configured"


class PayloadTooLarge(BocageError):
    status = 413
    code = "payload_too_large"


class TooManyRequests(BocageError):
    """Over a rate limit: slow down (``bocage serve``'s activation and WebSocket frame limits)."""

    status = 429
    code = "rate_limited"


class Unavailable(BocageError):
    """Try again shortly: an earlier attempt is still settling. Whatever raised it left
    nothing that the same request, resent, cannot finish."""

    status = 503
    code = "unavailable"


class ConditionFailed(Conflict):
    """A conditional store write lost: the item exists, or differs from what was expected."""

    code = "condition_failed"


class ItemTooLarge(PayloadTooLarge):
    """A store item would exceed DynamoDB's 400 KB item limit."""

    code = "item_too_large"
