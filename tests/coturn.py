"""Debian's coturn on loopback, for the call tests: a TURN server in the shared-secret mode
Bocage's credentials are made for (``use-auth-secret``), and coturn's own client to try a
credential by allocating a relay and sending through it."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Coturn:
    port: int
    secret: str
    log: Path

    @property
    def turn_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def stun_url(self) -> str:
        return f"stun:127.0.0.1:{self.port}"


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} is missing: install Debian's coturn (apt-get install -y coturn); the tests never skip"
        )
    return path


@contextmanager
def coturn(tmp: Path, config: Path | None = None, *, verbose: bool = False) -> Iterator[Coturn]:
    """UDP only on loopback (the TCP listener fights over its port between coturn's threads in
    some containers), no TLS, a fresh secret, relay ports from a small range. With ``config``,
    that configuration file (the one infra/sovereign ships) instead of a test's, loopback peers
    then as it says. ``verbose``: coturn logs each session's traffic (``usage`` lines)."""
    server = Coturn(port=_udp_port(), secret=secrets.token_urlsafe(24), log=tmp / "turnserver.log")
    relay = 49152 + secrets.randbelow(1000) * 10
    settings = (
        ["-c", str(config)]
        if config
        else [
            "-n",
            "--use-auth-secret",
            "--realm=bocage.test",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",
            "--fingerprint",
            "--log-file=stdout",
        ]
    )
    command = [
        _require("turnserver"), *settings, "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
        f"--listening-port={server.port}", f"--min-port={relay}", f"--max-port={relay + 9}",
        f"--static-auth-secret={server.secret}", "--no-tcp", "--simple-log",
        f"--pidfile={tmp / 'turnserver.pid'}", f"--userdb={tmp / 'turndb'}",
        *(["--verbose"] if verbose else []),
    ]  # fmt: skip
    with server.log.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while "Relay ports initialization done" not in server.log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"turnserver did not start: {server.log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def relay_through(server: Coturn, username: str, credential: str) -> tuple[bool, str]:
    """Allocate relays with coturn's client and send 5 packets through them: (relayed, output)."""
    done = subprocess.run(
        [_require("turnutils_uclient"), "-y", "-n", "5", "-m", "1", "-u", username, "-w", credential,
         "-p", str(server.port), "127.0.0.1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    return done.returncode == 0 and "Total lost packets 0" in output, output
