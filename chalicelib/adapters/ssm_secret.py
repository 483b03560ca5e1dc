"""A secret kept in AWS Systems Manager (a SecureString parameter), read when first needed.

Only the Web Push VAPID key today: never in the template nor in the functions' environment.
"""

from __future__ import annotations

import boto3


def read_secure_parameter(name: str, region: str) -> str:
    client = boto3.client("ssm", region_name=region)
    answer = client.get_parameter(Name=name, WithDecryption=True)
    return str(answer["Parameter"]["Value"])
