"""Runs the web app's wire code under node (tests/browser/wire_harness.mjs) for the tests that
check it against the Python implementation: one JSON command list in, one result list out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bocage.client.profile import DeviceKeys
from chalicelib.domain.encoding import b64e

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "browser" / "wire_harness.mjs"


def run_harness(harness: Path, *commands: dict[str, Any]) -> list[Any]:
    """Run the web app's JS under node through ``harness``: commands in on stdin, results out."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the web app's JS cannot be checked (apt-get install nodejs)")
    if not (ROOT / "node_modules" / "tweetnacl").is_dir():
        pytest.fail("node_modules/tweetnacl is missing: run `npm ci` at the repository root")
    done = subprocess.run(
        [node, str(harness)],
        input=json.dumps(list(commands)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[Any] = json.loads(done.stdout)
    return result


def run_js(*commands: dict[str, Any]) -> list[Any]:
    return run_harness(HARNESS, *commands)


def js(op: str, **args: Any) -> Any:
    return run_js({"op": op, **args})[0]


def spec(keys: DeviceKeys) -> dict[str, str]:
    """A device's secrets as the harness takes them."""
    return {
        "sign_seed": b64e(bytes(keys.signing)),
        "box_secret": b64e(bytes(keys.box)),
        "device_id": keys.device_id,
    }
