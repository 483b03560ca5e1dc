"""What `make package` produces for AWS: the schedules, the WebSocket API, the queue consumer, the
bundle and its bytecode. (tests/integration/test_infra.py checks the merged infrastructure.)"""

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
    merge = ["--merge-template", "infra/aws/resources.json"]
    subprocess.run(
        [str(chalice), "package", *merge, str(out)], cwd=ROOT, env=env, check=True, capture_output=True
    )
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
    assert routes == {"$connect", "$default", "$disconnect", "ping"}  # ping: API Gateway answers it
    events = _functions(template)["Fanout"]["Properties"]["Events"]
    assert [e["Type"] for e in events.values()] == ["SQS"]


def test_the_bundle_holds_the_server_only(packaged: tuple[dict[str, Any], Path]) -> None:
    names = zipfile.ZipFile(packaged[1]).namelist()
    assert "app.py" in names and any(n.startswith("chalicelib/") for n in names)
    assert not any(n.startswith(("bocage/", "tests/", "bench/")) for n in names)  # client code stays out
    assert not any(n.startswith(("boto3/", "botocore/", "moto/")) for n in names)  # the runtime has boto3


def test_the_bundle_fits_lambda_with_room_to_spare(packaged: tuple[dict[str, Any], Path]) -> None:
    with zipfile.ZipFile(packaged[1]) as archive:
        unzipped = sum(i.file_size for i in archive.infolist())
    assert packaged[1].stat().st_size < 25 * 1024 * 1024  # half of the 50 MB direct-upload limit
    assert unzipped < 100 * 1024 * 1024  # Lambda allows 250 MB unzipped


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="bytecode for the python3.11 runtime only")
def test_the_bundle_carries_bytecode_that_python_loads(
    packaged: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    sys.path.insert(0, str(ROOT / "infra" / "aws"))
    try:
        from precompile import precompile
    finally:
        sys.path.pop(0)
    bundle = tmp_path / "deployment.zip"
    bundle.write_bytes(packaged[1].read_bytes())
    assert precompile(bundle) > 100
    assert precompile(bundle) == 0  # once only
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        assert "__pycache__/app.cpython-311.pyc" in names
        assert "chalicelib/__pycache__/wiring.cpython-311.pyc" in names
        archive.extractall(tmp_path / "task")
    env = {**os.environ, "AWS_REGION": "eu-west-3", "PYTHONPATH": str(tmp_path / "task")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # /var/task is read-only
    done = subprocess.run(
        [sys.executable, "-v", "-c", "import app"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"code object from '{tmp_path}/task/__pycache__/app.cpython-311.pyc'" in done.stderr
