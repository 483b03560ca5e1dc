"""API Gateway's ``@connections`` management API, over this process's ``ConnectionRegistry``.

What the boto3 ``ApiGatewayPush`` adapter calls on AWS, answered the same way here, so that
adapter can be exercised on one machine. Requests are SigV4-signed by boto3 but the
signature is not checked: only loopback callers are answered.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import unquote

from bocage.local.answers import Answer, json_answer
from bocage.local.connections import MAX_FRAME, ConnectionRegistry
from bocage.local.lambda_events import STAGE

# boto3 puts the stage in the path when the endpoint URL has it.
MANAGEMENT_PATH = re.compile(rf"^(?:/{STAGE})?/@connections/(?P<connection_id>[^/]+)$")


def connection_id_of(path: str) -> str | None:
    """The (URL-decoded) connection id a management path names, or None for any other path."""
    match = MANAGEMENT_PATH.match(path)
    return unquote(match["connection_id"]) if match is not None else None


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def gone() -> Answer:
    # botocore takes the error code from this header; a body alone would read as "410".
    return json_answer(410, {"message": "Gone"}, error_type="GoneException")


class ManagementApi:
    """PostToConnection (POST), GetConnection (GET) and DeleteConnection (DELETE)."""

    def __init__(self, connections: ConnectionRegistry) -> None:
        self._connections = connections
        self._methods: dict[str, Callable[[str, bytes], Answer]] = {
            "POST": self._post,
            "GET": self._get,
            "DELETE": self._delete,
        }

    def refusal(self, source_ip: str, length: int) -> Answer | None:
        """The answer that ends the connection before its body is read, or None to go on."""
        if not is_loopback(source_ip):
            return json_answer(403, {"message": "Forbidden"}, error_type="ForbiddenException", close=True)
        if length > MAX_FRAME:
            return json_answer(
                413, {"message": "Message too long"}, error_type="PayloadTooLargeException", close=True
            )
        return None

    def answer(self, method: str, connection_id: str, body: bytes) -> Answer:
        handle = self._methods.get(method)
        if handle is None:
            return json_answer(405, {"message": "Method not allowed"})
        return handle(connection_id, body)

    def _post(self, connection_id: str, data: bytes) -> Answer:
        try:
            found = self._connections.post(connection_id, data)
        except TimeoutError:
            return json_answer(429, {"message": "Client buffer full"}, error_type="LimitExceededException")
        return Answer(200) if found else gone()

    def _get(self, connection_id: str, _: bytes) -> Answer:
        info = self._connections.info(connection_id)
        return json_answer(200, info) if info is not None else gone()

    def _delete(self, connection_id: str, _: bytes) -> Answer:
        return Answer(204) if self._connections.close(connection_id) else gone()
