"""Fixtures shared by integration and e2e tests: clock, stores on both adapters, the app."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from bocage.client.profile import DeviceKeys, OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import ManualClock
from chalicelib.ports import Store
from chalicelib.settings import Settings
from tests.support import People, RecordingMailer, RecordingPush, SignedApi


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
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
    """The app's store on both adapters: a real SQLite file, and DynamoDB through moto."""
    if request.param == "sqlite":
        from chalicelib.adapters.sqlite_store import SqliteStore

        store = SqliteStore(str(tmp_path / "bocage.sqlite3"), clock)
        yield store
        store.close()
        return
    from moto import mock_aws

    from chalicelib.adapters.dynamodb_store import DynamoDbStore
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
def container(
    app_store: Store, clock: ManualClock, mailer: RecordingMailer, operator: OperatorKey, push: RecordingPush
) -> Iterator[wiring.Container]:
    settings = dataclasses.replace(
        Settings(), public_url="https://api.bocage.test", operator_keys=(operator.public_key,)
    )
    built = wiring.build(settings, store=app_store, clock=clock, mailer=mailer, push=push)
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
