"""A real `bocage serve` process on loopback, and the CLI run as a newcomer would."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chalice.app import Chalice

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOCAGE_")}
    env.update({"PYTHONPATH": str(ROOT), "BOCAGE_MAILER": "console", **extra})
    return env


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log_path: Path
    banner: str = ""
    env: dict[str, str] = field(default_factory=dict)
    data: Path | None = None

    def output(self) -> str:
        return self.log_path.read_text()

    def stored_items(self) -> list[dict[str, Any]]:
        """Every item the server stored, from its SQLite file or its DynamoDB-API table alike,
        so that checks on what the server keeps also hold in network mode. A message item also
        shows its wire fields by name (it is stored with short names and binary ciphertext)."""
        from chalicelib.adapters.records.messages import message_fields
        from chalicelib.adapters.sqlite_store import load_item

        if self.env.get("BOCAGE_STORE") == "dynamodb":
            import boto3

            from chalicelib.adapters.dynamodb_store import _from_attrs

            client = boto3.client(
                "dynamodb",
                endpoint_url=self.env["BOCAGE_DYNAMODB_ENDPOINT"],
                region_name="eu-west-3",
                aws_access_key_id=self.env.get("AWS_ACCESS_KEY_ID", "testing"),
                aws_secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY", "testing"),
            )
            pages = client.get_paginator("scan").paginate(TableName=self.env["BOCAGE_TABLE"])
            items = [_from_attrs(item) for page in pages for item in page["Items"]]
        else:
            assert self.data is not None
            with sqlite3.connect(self.data / "bocage.sqlite3") as db:
                items = [load_item(data) for (data,) in db.execute("select data from items")]
        return [item | message_fields(item) if str(item["sk"]).startswith("MSG#") else item for item in items]

    def owner_url(self) -> str:
        match = re.search(r"Activation URL:\s+(\S+)", self.banner)
        assert match, self.banner
        return match.group(1)


@contextlib.contextmanager
def rest_server(app: Chalice, **options: Any) -> Iterator[tuple[str, int]]:
    """The REST side of `bocage serve` (the same ASGI app and uvicorn set-up) in front of ``app``,
    on a thread of this process, with ``options`` (ServeSettings fields); yields its address."""
    from bocage.local.asgi import BocageAsgi, ServerThread, listen, make_server
    from bocage.local.rest import RestGateway
    from bocage.local.serve_settings import ServeSettings

    executor = ThreadPoolExecutor(4)
    settings = ServeSettings(**options)
    rest = RestGateway(
        app, executor, read_timeout=settings.read_timeout, handler_timeout=settings.handler_timeout
    )
    server = ServerThread(make_server(BocageAsgi(rest), settings), [listen("127.0.0.1", 0)])
    server.start()
    try:
        yield "127.0.0.1", server.port
    finally:
        server.stop()
        executor.shutdown()


def network_store_env() -> dict[str, str]:
    """Network mode (BOCAGE_TEST_STORE=dynamodb-server, see tests/conftest.py): `bocage serve`
    keeps its data on the session's DynamoDB-API server, in a table of its own."""
    if os.environ.get("BOCAGE_TEST_STORE") != "dynamodb-server":
        return {}
    return {
        "BOCAGE_STORE": "dynamodb",
        "BOCAGE_DYNAMODB_ENDPOINT": os.environ["BOCAGE_DYNAMODB_ENDPOINT"],
        "BOCAGE_CREATE_TABLE": "1",
        "BOCAGE_TABLE": f"bocage-e2e-{uuid.uuid4().hex[:12]}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def start_server(data: Path, log_path: Path, *, port: int | None = None, **env: str) -> Server:
    if port is not None:
        return _start_server(data, log_path, port, env)
    for _ in range(2):  # a port found free may be taken by another process before the server binds it
        try:
            return _start_server(data, log_path, free_port(), env)
        except PortTaken:
            continue
    return _start_server(data, log_path, free_port(), env)


class PortTaken(RuntimeError):
    """The server could not bind the port it was given."""


def _start_server(data: Path, log_path: Path, port: int, env: dict[str, str]) -> Server:
    env = {**network_store_env(), **env}  # what a test asks for explicitly wins
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bocage", "serve", "--port", str(port), "--data", str(data)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=base_env(**env),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if "serving the REST API" in text:
            return Server(f"http://127.0.0.1:{port}", process, log_path, banner=text, env=env, data=data)
        if process.poll() is not None:
            if "Address already in use" in text:
                raise PortTaken(f"bocage serve could not bind {port}: {text}")
            raise RuntimeError(f"bocage serve exited: {text}")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("bocage serve did not start in 30 s")


# Network mode runs every test that starts `bocage serve` on a DynamoDB-API server, except
# those that read the SQLite file themselves (to move them over: Server.stored_items()).
SQLITE_ONLY = {
    "test_tribe_group_live_offline_and_removal": "reads the server's SQLite file",
    "test_poll_react_delete_over_the_network": "reads the server's SQLite file",
    "test_org_create_on_the_data_directory_then_serve": "the CLI writes the embedded store (--data)",
    "test_billing_and_impact_on_the_data_directory": "the CLI on the embedded store (--data), no server",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In network mode, leave out (deselect, not skip) what only makes sense on SQLite:
    those tests run in the main pass."""
    if os.environ.get("BOCAGE_TEST_STORE") != "dynamodb-server":
        return
    here = Path(__file__).parent
    left_out = [
        i for i in items if getattr(i, "originalname", i.name) in SQLITE_ONLY and i.path.is_relative_to(here)
    ]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [i for i in items if i not in left_out]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "data", tmp_path / "serve.log")
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=10)


def _run_cli(
    args: tuple[str, ...], env: dict[str, str] | None, expected_exit: int
) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "bocage", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or base_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == expected_exit, (done.stdout, done.stderr)
    document: dict[str, Any] = json.loads(done.stdout)
    return document, done.stderr


def bocage(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the CLI with --json and return its one JSON document; fail on a non-zero exit."""
    return _run_cli(args, env, 0)[0]


def bocage_with_stderr(*args: str) -> tuple[dict[str, Any], str]:
    """The CLI's JSON document and what it wrote on stderr (a progress bar, warnings)."""
    return _run_cli(args, None, 0)


def bocage_fails(*args: str, code: int = 1) -> dict[str, Any]:
    """Run the CLI expecting a refusal (exit 1; 3 when the trust check refuses) and return its
    JSON error document."""
    return _run_cli(args, None, code)[0]
