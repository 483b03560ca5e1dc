"""The WebSocket edge: API Gateway's $connect, $default and $disconnect events.

``$connect`` authenticates the device token from the query string (signed for
``GET $connect``) and closes the device's oldest connections past its cap; every later frame
is re-checked against the device and member records, so a revoked device or removed member is
cut off at its next action.
Answers are pushed back through the Push port (an ack, an error, a pong).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from chalicelib import wiring
from chalicelib.domain.envelope import parse_envelope
from chalicelib.domain.frames import (
    CallAction,
    ClientAction,
    ErrorFrame,
    Frame,
    PongFrame,
    SendAction,
    parse_action,
)
from chalicelib.domain.principal import Principal
from chalicelib.errors import BadRequest, BocageError, Unauthorized
from chalicelib.json_input import parse_object
from chalicelib.request_logging import logger
from chalicelib.services.authentication import SignedRequest

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
    replaced = c.delivery.connect(
        connection_id,
        org_id=who.org_id,
        member_id=who.member_id,
        device_id=who.device_id,
        channels=c.channels.live_channel_ids(who),
        connected_ms=_connected_ms(event),
    )
    logger.info("ws connect", status=200, replaced=len(replaced))
    return {"statusCode": 200}


def _connected_ms(event: dict[str, Any]) -> int | None:
    """API Gateway's ``connectedAt`` (epoch ms): orders a device's connections to the millisecond."""
    value = event["requestContext"].get("connectedAt")
    return value if isinstance(value, int) and value > 0 else None


def on_message(event: dict[str, Any]) -> dict[str, Any]:
    """Answer one client action with a pong, an ack or an error frame; never raise."""
    c = wiring.container()
    connection_id = event["requestContext"]["connectionId"]
    ref: str | None = None
    try:
        who = _sender(connection_id)
        raw = _json_frame(event.get("body") or "")
        ref = _ref_of(raw)
        action = _action(raw)
        if isinstance(action, SendAction):
            envelope = parse_envelope(action.envelope)
            ref = ref or envelope.message_id
            answer: Frame = c.messaging.send(who, envelope, action.notify).ack(ref)
        elif isinstance(action, CallAction):
            answer = c.call_signalling.signal(who, action)
        else:
            answer = PongFrame(ref=action.ref)
        c.delivery.send_to(connection_id, answer)
        logger.info("ws message", action=action.action, status=200)
    except BocageError as exc:
        logger.info("ws message refused", status=exc.status)
        c.delivery.send_to(connection_id, ErrorFrame.of(exc, ref))
        if isinstance(exc, Unauthorized):
            c.delivery.disconnect(connection_id)
            c.push.close(connection_id)
    return {"statusCode": 200}


def _sender(connection_id: str) -> Principal:
    """The device behind a connection, re-checked: a revoked device is refused here."""
    c = wiring.container()
    connection = c.delivery.connection(connection_id)
    if connection is None:
        raise Unauthorized("unknown connection; reconnect")
    return c.auth.device_principal(connection.device_id)


def _json_frame(body: str) -> dict[str, Any]:
    if len(body) > MAX_FRAME_BYTES:
        raise BadRequest("frame too large")
    message = "frames are JSON objects with an 'action'"
    return parse_object(body, malformed=message, not_object=message)


def _action(raw: dict[str, Any]) -> ClientAction:
    if raw.get("action") not in ("ping", "send", "call"):
        raise BadRequest("unknown action; use 'send', 'call' or 'ping'")
    try:
        return parse_action(raw)
    except ValidationError as exc:
        raise BadRequest(f"invalid {raw['action']} frame: {_first_error(exc)}") from None


def _ref_of(raw: dict[str, Any]) -> str | None:
    """The action's ``ref``, echoed in its answer, even an error."""
    ref = raw.get("ref")
    return ref if isinstance(ref, str) else None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def on_disconnect(event: dict[str, Any]) -> dict[str, Any]:
    wiring.container().delivery.disconnect(event["requestContext"]["connectionId"])
    return {"statusCode": 200}


def on_fanout(bodies: list[str]) -> None:
    """Queue consumer: push a batch of chunks, each connection's frames coalesced."""
    wiring.container().delivery.deliver_chunks(bodies)
