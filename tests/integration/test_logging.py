"""Log lines are structured JSON and never carry a code, key, token or body."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bocage.client.profile import DeviceKeys, sign_token
from chalicelib.request_logging import logger
from tests.support import SignedApi


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the app logs, formatted exactly as in production (Powertools' JSON formatter), at the
    deployed functions' level (INFO: no POWERTOOLS_LOG_LEVEL), whatever earlier tests left."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    level = logger.log_level
    logger.setLevel("INFO")
    logging.getLogger(logger.name).addHandler(handler)
    yield buffer
    logging.getLogger(logger.name).removeHandler(handler)
    logger.setLevel(level)


def test_logs_are_json_with_request_ids_and_no_secrets(
    api: SignedApi, owned_org: tuple[DeviceKeys, dict[str, Any]], log_output: io.StringIO
) -> None:
    owner, _ = owned_org
    invite = api.call(
        "POST", "/invitations", {"display_name": "Secret Name", "email": "s@example.org"}, signer=owner
    )
    code = invite.body["activation_code"]
    keys, activated = api.activate(code, "Secret Name")
    assert activated.status == 201
    token = sign_token(keys.signing, keys.device_id, "GET", "/me", None, b"", now=api.clock.now())
    assert api.call("GET", "/me", token=token).status == 200
    assert api.call("GET", "/me", token=token).status == 401  # replay, logged too
    assert api.call("POST", "/invitations", raw=b"{broken", signer=owner).status == 400

    out = log_output.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    assert all(line["service"] == "bocage" and line["level"] == "INFO" for line in lines)
    assert {(line["route"], line["status"]) for line in lines} >= {
        ("/invitations", 201),
        ("/activate", 201),
        ("/me", 200),
        ("/me", 401),
        ("/invitations", 400),
    }
    for secret in (
        code,
        code.replace("-", ""),
        token,
        keys.sign_public_key,
        "Secret Name",
        "s@example.org",
        "broken",
    ):
        assert secret not in out
