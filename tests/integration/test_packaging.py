"""What `chalice package` produces for AWS: the schedules, the WebSocket API, the queue consumer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("package")
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-3"}
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run([str(chalice), "package", str(out)], cwd=ROOT, env=env, check=True, capture_output=True)
    return json.loads((out / "sam.json").read_text()), out / "deployment.zip"


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def test_monthly_billing_and_retention_schedules(packaged: tuple[dict[str, Any], Path]) -> None:
    functions = _functions(packaged[0])
    schedules = {
        name: event["Properties"]["Schedule"]
        for name, fn in functions.items()
        for event in fn["Properties"].get("Events", {}).values()
        if event["Type"] == "Schedule"
    }
    assert schedules == {"BillingMonthly": "cron(0 2 1 * ? *)", "RetentionJobs": "rate(5 minutes)"}


def test_websocket_routes_and_the_fan_out_consumer(packaged: tuple[dict[str, Any], Path]) -> None:
    template = packaged[0]
    routes = {
        r["Properties"]["RouteKey"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    assert routes == {"$connect", "$default", "$disconnect"}
    events = _functions(template)["Fanout"]["Properties"]["Events"]
    assert [e["Type"] for e in events.values()] == ["SQS"]


def test_the_bundle_holds_the_server_only(packaged: tuple[dict[str, Any], Path]) -> None:
    names = zipfile.ZipFile(packaged[1]).namelist()
    assert "app.py" in names and any(n.startswith("chalicelib/") for n in names)
    assert not any(n.startswith(("bocage/", "tests/", "bench/")) for n in names)  # client code stays out
    assert not any(n.startswith(("boto3/", "botocore/", "moto/")) for n in names)  # the runtime has boto3
