"""A real `bocage serve` process on loopback, and the CLI run as a newcomer would."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

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

    def output(self) -> str:
        return self.log_path.read_text()

    def owner_url(self) -> str:
        match = re.search(r"Activation URL:\s+(\S+)", self.banner)
        assert match, self.banner
        return match.group(1)


def start_server(data: Path, log_path: Path, **env: str) -> Server:
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bocage", "serve", "--port", str(port), "--ws-port", "0", "--data", str(data)],
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
            return Server(f"http://127.0.0.1:{port}", process, log_path, banner=text)
        if process.poll() is not None:
            raise RuntimeError(f"bocage serve exited: {text}")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("bocage serve did not start in 30 s")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "data", tmp_path / "serve.log")
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=10)


def bocage(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the CLI with --json and return its one JSON document; fail on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-m", "bocage", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or base_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def bocage_fails(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bocage", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=base_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    document: dict[str, Any] = json.loads(done.stdout)
    return document
