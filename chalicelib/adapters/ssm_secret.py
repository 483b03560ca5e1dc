"""A secret kept in AWS Systems Manager (a SecureString parameter), read when first needed.

The Web Push VAPID key and the TURN server's shared secret: never in the template nor in the
functions' environment.
"""

from __future__ import annotations

from collections.abc import Callable

import boto3


def read_secure_parameter(name: str, region: str) -> str:
    client = boto3.client("ssm", region_name=region)
    answer = client.get_parameter(Name=name, WithDecryption=True)
    return str(answer["Parameter"]["Value"])


def cached_secure_parameter(name: str, region: str) -> Callable[[], str]:
    """The parameter's value, read on the first call and kept for the function's life (a changed
    secret reaches a function at its next cold start)."""
    value: list[str] = []

    def read() -> str:
        if not value:
            value.append(read_secure_parameter(name, region))
        return value[0]

    return read
