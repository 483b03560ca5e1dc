"""Push over API Gateway's WebSocket management API (the ``@connections`` endpoint).

The endpoint is AWS's ``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}``
or, on one machine, the local REST gateway, which serves the same routes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.ports import ConnectionGone

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

logger = logging.getLogger(__name__)

# A push sits on the request path of a Lambda: fail fast rather than hold it for a minute.
_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 2},  # one retry
)


def _is_gone(error: ClientError) -> bool:
    """AWS names the error GoneException; a bare 410 (proxies, older endpoints) means the same."""
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("GoneException", "410") or status == 410


class ApiGatewayPush:
    """The Push port; frames are never logged (they are ciphertext, but still the users')."""

    def __init__(self, client: ApiGatewayManagementApiClient) -> None:
        self._client = client

    @classmethod
    def for_endpoint(cls, endpoint_url: str, region: str) -> ApiGatewayPush:
        # A session of its own: boto3's default session is not safe to build clients from threads.
        client = boto3.session.Session().client(
            "apigatewaymanagementapi", endpoint_url=endpoint_url, region_name=region, config=_CONFIG
        )
        return cls(client)

    def send(self, connection_id: str, data: bytes) -> None:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as error:
            if _is_gone(error):
                raise ConnectionGone(connection_id) from None
            raise

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        """DELETE @connections: API Gateway closes with 1000 whatever ``code`` says."""
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            if not _is_gone(error):
                raise
            logger.debug("connection already gone on close")
