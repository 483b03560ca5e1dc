"""Push over API Gateway's WebSocket management API (the ``@connections`` endpoint).

The endpoint is AWS's ``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}``
or, on one machine, the local REST gateway, which serves the same routes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.ports import ConnectionGone, Target

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

logger = logging.getLogger(__name__)

# Concurrent posts of one fan-out: a send to a 50-member group waits for about 4 round trips,
# not 50 (the pool stays warm across invocations of the same Lambda instance).
PARALLEL_PUSHES = 16

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

    def __init__(self, client: ApiGatewayManagementApiClient, *, parallel: int = PARALLEL_PUSHES) -> None:
        self._client = client  # boto3 clients are safe to share between threads
        self._parallel = parallel
        self._pool: ThreadPoolExecutor | None = None

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

    def send_many(self, targets: Sequence[Target], data: bytes) -> list[str]:
        """One frame to many connections, ``parallel`` posts at a time; returns the gone ones.

        A post that fails otherwise costs only its own copy (logged): that device reads the
        message on its next catch-up.
        """
        ids = [t.connection_id for t in targets]
        if len(ids) <= 1:
            outcomes = [self._try_send(i, data) for i in ids]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._parallel, thread_name_prefix="push")
            outcomes = list(self._pool.map(lambda i: self._try_send(i, data), ids))
        return [i for i, gone in zip(ids, outcomes, strict=True) if gone]

    def _try_send(self, connection_id: str, data: bytes) -> bool:
        """True when the connection is gone."""
        try:
            self.send(connection_id, data)
        except ConnectionGone:
            return True
        except Exception:
            logger.warning("push failed", extra={"connection_id": connection_id}, exc_info=True)
        return False

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        """DELETE @connections: API Gateway closes with 1000 whatever ``code`` says."""
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            if not _is_gone(error):
                raise
            logger.debug("connection already gone on close")
