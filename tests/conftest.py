"""Fixtures shared by integration and e2e tests: clock, stores on both adapters, the app.

Network mode: with ``BOCAGE_TEST_STORE=dynamodb-server`` (``make test-network``), every
DynamoDB test talks HTTP to a DynamoDB-API server instead of in-process moto: the one at
``BOCAGE_DYNAMODB_ENDPOINT`` if set (ScyllaDB Alternator, DynamoDB Local), else a moto
server this session starts on loopback. Each test gets a table of its own.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bocage.client.profile import DeviceKeys, OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.local_objects import LocalObjectStore
from chalicelib.ports import LocalConnections, Queue, Store
from chalicelib.settings import Settings
from tests.support import People, RecordingMailer, RecordingPush, SignedApi

ROOT = Path(__file__).resolve().parents[1]
NETWORK_MODE = "dynamodb-server"

# moto's server in a child process: ThreadedMotoServer shares moto's global backends with
# the in-process ``mock_aws``, whose start resets them, which would drop the server's tables
# whenever another test mocks AWS. The child also serialises moto's item handlers (DynamoDB
# is atomic per item; moto is not), prints its URL, and stops when stdin closes.
_MOTO_SERVER = """
import logging
import sys
from moto.server import ThreadedMotoServer
from tests.moto_locking import serialise_moto_dynamodb

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the test output
with serialise_moto_dynamodb():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    sys.stdin.read()
    server.stop()
"""
_moto_server: subprocess.Popen[str] | None = None


def network_mode() -> bool:
    return os.environ.get("BOCAGE_TEST_STORE") == NETWORK_MODE


def start_moto_server() -> tuple[subprocess.Popen[str], str]:
    """moto's server in a child process (see _MOTO_SERVER); stop it by closing its stdin."""
    process = subprocess.Popen(
        [sys.executable, "-c", _MOTO_SERVER],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        raise RuntimeError("the moto server did not start")
    return process, url


def stop_moto_server(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def pytest_configure(config: pytest.Config) -> None:
    """In network mode, have a server before test modules are imported (some read the endpoint then)."""
    global _moto_server
    if not network_mode() or os.environ.get("BOCAGE_DYNAMODB_ENDPOINT"):
        return
    _moto_server, os.environ["BOCAGE_DYNAMODB_ENDPOINT"] = start_moto_server()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _moto_server
    if _moto_server is not None:
        stop_moto_server(_moto_server)
        os.environ.pop("BOCAGE_DYNAMODB_ENDPOINT", None)
        _moto_server = None


@pytest.fixture(scope="session")
def shared_dynamodb() -> Iterator[str]:
    """A DynamoDB-API server over HTTP, in any mode: network mode's, else one for this session."""
    if os.environ.get("BOCAGE_DYNAMODB_ENDPOINT"):
        yield os.environ["BOCAGE_DYNAMODB_ENDPOINT"]
        return
    process, url = start_moto_server()
    try:
        yield url
    finally:
        stop_moto_server(process)


@pytest.fixture(scope="session")
def dynamodb_server() -> str:
    """The DynamoDB-API server of network mode (skips the test outside that mode)."""
    if not network_mode():
        pytest.skip(f"network mode only (BOCAGE_TEST_STORE={NETWORK_MODE})")
    return os.environ["BOCAGE_DYNAMODB_ENDPOINT"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Placeholder credentials: boto3 signs every call, and no test may reach real AWS."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-3",
        "AWS_REGION": "eu-west-3",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A DynamoDB-API server on a free loopback port (moto's server mode), reached over HTTP."""
    from moto.server import ThreadedMotoServer

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: a free one
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "dynamodb"])
def app_store(
    request: pytest.FixtureRequest, tmp_path: Any, clock: ManualClock, aws_env: None
) -> Iterator[Store]:
    """The app's store on both adapters: a real SQLite file, and DynamoDB through moto
    (in process, or over HTTP in network mode)."""
    if request.param == "sqlite":
        from chalicelib.adapters.sqlite_store import SqliteStore

        store = SqliteStore(str(tmp_path / "bocage.sqlite3"), clock)
        yield store
        store.close()
        return
    from chalicelib.adapters.dynamodb_store import DynamoDbStore

    if network_mode():  # over HTTP, to a table of this test's own
        import boto3

        endpoint = request.getfixturevalue("dynamodb_server")
        table = f"bocage-test-{uuid.uuid4().hex[:12]}"
        over_http = DynamoDbStore(table, clock, endpoint_url=endpoint, region="eu-west-3")
        over_http.ensure_table()
        yield over_http
        boto3.client("dynamodb", region_name="eu-west-3", endpoint_url=endpoint).delete_table(TableName=table)
        return
    from moto import mock_aws

    from tests.moto_locking import serialise_moto_dynamodb

    # moto is not atomic per item as DynamoDB is: races in the app would depend on the emulator.
    with mock_aws(), serialise_moto_dynamodb():
        dynamo = DynamoDbStore("bocage-test", clock, region="eu-west-3")
        dynamo.ensure_table()
        yield dynamo


@pytest.fixture
def operator() -> OperatorKey:
    return OperatorKey.generate()


@pytest.fixture
def mailer() -> RecordingMailer:
    return RecordingMailer()


@pytest.fixture
def push() -> RecordingPush:
    return RecordingPush()


@pytest.fixture
def app_settings(operator: OperatorKey) -> Settings:
    """The app's settings in tests; a module overrides this fixture to turn a feature on."""
    return dataclasses.replace(
        Settings(), public_url="https://api.bocage.test", operator_keys=(operator.public_key,)
    )


@pytest.fixture
def local_connections() -> LocalConnections | None:
    """The app's connections in memory, as ``bocage serve`` keeps them; a module overrides this
    fixture to push from them (tests/integration/test_presence_index.py)."""
    return None


@pytest.fixture
def fanout_queue() -> Queue | None:
    """The app's queue for large fan-outs and Web Push wake-ups; none by default (both then run
    inline); a module overrides this fixture to see what a send hands it."""
    return None


@pytest.fixture
def container(
    app_store: Store,
    clock: ManualClock,
    mailer: RecordingMailer,
    app_settings: Settings,
    push: RecordingPush,
    tmp_path: Path,
    local_connections: LocalConnections | None,
    fanout_queue: Queue | None,
) -> Iterator[wiring.Container]:
    # File blobs in a real directory of the test's own (tests/integration/test_files_api.py).
    settings = app_settings
    objects = LocalObjectStore(str(tmp_path / "data"), settings.public_url or "", clock)
    built = wiring.build(
        settings,
        store=app_store,
        clock=clock,
        mailer=mailer,
        push=push,
        objects=objects,
        local=local_connections,
        queue=fanout_queue,
    )
    wiring.use(built)
    yield built
    wiring.use(None)


@pytest.fixture
def api(container: wiring.Container, clock: ManualClock) -> Iterator[SignedApi]:
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        yield SignedApi(client.http, clock, client.lambda_)


@pytest.fixture
def owned_org(api: SignedApi, operator: OperatorKey) -> tuple[DeviceKeys, dict[str, Any]]:
    """An organisation with its owner activated: (owner keys, activation result)."""
    created = api.create_org(operator)
    keys, reply = api.activate(created["activation_code"], "Maire")
    assert reply.status == 201, reply.body
    return keys, dict(reply.body)


@pytest.fixture
def people(api: SignedApi, owned_org: tuple[DeviceKeys, dict[str, Any]], tmp_path: Any) -> People:
    """The owner's messenger, and ``join(name)`` for more members with their own profiles."""
    return People(api, owned_org, tmp_path)


# -- Web Push: a push service stand-in, and `bocage serve` allowed to push to it ------------------


@pytest.fixture
def push_service(tmp_path: Path) -> Iterator[Any]:
    """A real HTTPS push service on loopback (tests/push_service.py)."""
    from tests.push_service import PushServiceStandIn

    service = PushServiceStandIn(tmp_path)
    yield service
    service.stop()


@pytest.fixture
def push_server(tmp_path: Path, push_service: Any) -> Iterator[Any]:
    """`bocage serve` allowed to push to the stand-in, and trusting its certificate."""
    from tests.e2e.conftest import start_server

    server = start_server(
        tmp_path / "data",
        tmp_path / "serve.log",
        BOCAGE_PUSH_SERVICES=push_service.host,
        SSL_CERT_FILE=str(push_service.cert_file),
    )
    yield server
    if server.process.poll() is None:
        server.process.terminate()
        server.process.wait(timeout=10)
