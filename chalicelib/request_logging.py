"""Structured JSON logs through Powertools Logger, wired as Chalice middleware.

Powertools' ``inject_lambda_context`` decorator expects ``(event, context)``
handlers, which Chalice views are not; a middleware gets the request instead.
A log line names the route template, status and duration: never a body, a
header, a token, a code or a key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="bocage")


def log_http(event: Any, get_response: Callable[[Any], Any]) -> Any:
    started = time.perf_counter()
    context = getattr(event, "context", {}) or {}
    logger.append_keys(request_id=context.get("requestId"))
    try:
        response = get_response(event)
        logger.info(
            "request",
            method=event.method,
            route=event.path,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response
    finally:
        logger.remove_keys(["request_id"])
