"""The WebSocket edge: API Gateway's $connect, $default and $disconnect events.

``$connect`` authenticates the device token from the query string (signed for
``GET $connect``); every later frame is re-checked against the device and member
records, so a revoked device or removed member is cut off at its next action.
Answers are pushed back through the Push port (an ack, an error, a pong).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import wiring
from chalicelib.domain.envelope import parse_envelope
from chalicelib.errors import BadRequest, BocageError, Unauthorized
from chalicelib.request_logging import logger
from chalicelib.services.authentication import SignedRequest
from chalicelib.services.messaging import error_frame

CONNECT_PATH = "$connect"
MAX_FRAME_BYTES = 128 * 1024  # API Gateway's WebSocket frame limit


def connect_request() -> SignedRequest:
    """What a $connect token is bound to (the token itself travels in ``?token=``)."""
    return SignedRequest("GET", CONNECT_PATH, {}, b"")


def on_connect(event: dict[str, Any]) -> dict[str, Any]:
    c = wiring.container()
    connection_id = event["requestContext"]["connectionId"]
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        who = c.auth.device(token, connect_request())
    except BocageError as exc:
        logger.info("ws connect refused", status=exc.status)
        return {"statusCode": exc.status, "body": json.dumps(exc.to_body())}
    c.delivery.connect(
        connection_id,
        org_id=who.org_id,
        member_id=who.member_id,
        device_id=who.device_id,
        channels=c.channels.channel_ids_of(who.member_id),
    )
    logger.info("ws connect", status=200)
    return {"statusCode": 200}


def on_message(event: dict[str, Any]) -> dict[str, Any]:
    c = wiring.container()
    connection_id = event["requestContext"]["connectionId"]
    ref: str | None = None
    try:
        record = c.delivery.connection(connection_id)
        if record is None:
            raise Unauthorized("unknown connection; reconnect")
        who = c.auth.device_principal(record["device_id"])
        body = event.get("body") or ""
        if len(body) > MAX_FRAME_BYTES:
            raise BadRequest("frame too large")
        try:
            frame = json.loads(body)
        except ValueError as exc:
            raise BadRequest("frames are JSON objects with an 'action'") from exc
        if not isinstance(frame, dict):
            raise BadRequest("frames are JSON objects with an 'action'")
        action = frame.get("action")
        ref = frame.get("ref") if isinstance(frame.get("ref"), str) else None
        if action == "ping":
            c.delivery.send_to(connection_id, {"type": "pong", "ref": ref})
        elif action == "send":
            envelope = parse_envelope(frame.get("envelope"))
            ref = ref or envelope.message_id
            result = c.messaging.send(who, envelope)
            c.delivery.send_to(connection_id, {"type": "ack", "ref": ref, **result})
        else:
            raise BadRequest("unknown action; use 'send' or 'ping'")
        logger.info("ws message", action=action, status=200)
    except BocageError as exc:
        logger.info("ws message refused", status=exc.status)
        c.delivery.send_to(connection_id, error_frame(exc, ref))
        if isinstance(exc, Unauthorized):
            c.delivery.disconnect(connection_id)
            c.push.close(connection_id)
    return {"statusCode": 200}


def on_disconnect(event: dict[str, Any]) -> dict[str, Any]:
    wiring.container().delivery.disconnect(event["requestContext"]["connectionId"])
    return {"statusCode": 200}


def on_fanout(bodies: list[str]) -> None:
    """Queue consumer: push each chunk (SQS on AWS, the in-process queue on one machine)."""
    delivery = wiring.container().delivery
    for body in bodies:
        delivery.deliver_chunk(body)
