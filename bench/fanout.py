"""Fan-out: one message pushed to N online WebSocket connections, through the real delivery path.

What it measures, for each N (100, 1,000 and 10,000 by default):

- deliveries per second: N / (time from the send call to the last frame a client received);
- p50 and p99, over the runs, of that send-to-last-delivery time (nearest rank: with fewer
  than 100 runs, p99 is the slowest run);
- p50 of the time ``MessagingService.send`` itself takes to return (it stores the message, then
  hands the frame for every connection to the event loop in one batch, and returns);
- p50 of "written": when the server's event loop had queued the frame on every socket (the rest
  of "last" is the kernel and the client process reading N sockets, on the same two cores);
- store operations per message, from a ``CountingStore`` around the whole store (gets, queries,
  puts, increments; anything else is listed too).

How: this process is the server, assembled as ``bocage serve`` assembles it (bocage/local/asgi.py:
uvicorn, the REST and WebSocket ASGI apps, ``InProcessPush`` writing each frame, serialised once,
straight to the sockets, the channel's connections from a replica's memory as a replica alone
finds them, Web Push wake-ups on their own queue), on a SQLite store in a temporary directory,
on a thread of its own.
The previous runtime's figures (``http.server``, a second port, pushes through an in-process
queue, optionally through boto3 to ``@connections``) are in git history. A second process (this
script with ``--client-process``) opens N real WebSocket clients, each with its own device token
for ``GET $connect``, and timestamps every message frame as it arrives. Both processes read
``time.perf_counter``, which is system-wide (CLOCK_MONOTONIC on Linux), so arrival times compare
with the send time. Two processes need N sockets each rather than 2N in one, and keep the
clients off the server's GIL (the machine's cores are still shared).

The N connections belong to the members of a fresh tribe per N, five per member (one device each:
a device's cap; bench/extra_members.py clones the tribe's listener member in the store): the
fan-out cost is per connection (one presence item each). The tribe's author sends with
``container.messaging.send`` and an envelope sealed by the client library (``seal_message``); an
untimed warm-up message precedes the timed runs of each N.

    python bench/fanout.py [--sizes 100,1000,10000] [--runs 5] [--workers 16]

Loopback only. Quote medians: the figures are noisy on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # one log line per $connect would drown the figures

from extra_members import PER_DEVICE, clone_members
from nacl.signing import SigningKey
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from bocage.client.crypto import new_message_id, seal_message
from bocage.client.issuing import enrol, member_ticket, membership_entry
from bocage.client.profile import DeviceKeys, sign_token
from bocage.client.ratchet import message_key, new_chain_key
from bocage.local.asgi import ServerThread, assemble, listen, make_server
from bocage.local.connections import ConnectionRegistry
from bocage.local.in_process_push import InProcessPush
from bocage.local.local_queue import LocalQueue
from bocage.local.presence_index import PresenceIndex
from bocage.local.serve_settings import ServeSettings
from bocage.local.sockets import MAX_MESSAGE
from chalicelib import wiring, ws_api
from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.domain.activation_link import parse_activation, with_fragment_params
from chalicelib.domain.channel import ChannelKind, ChannelRole
from chalicelib.domain.direct import channel_id_from_seed, new_channel_seed
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.envelope import Envelope
from chalicelib.domain.invitation import activation_proof_message
from chalicelib.domain.organisation import Plan, Role
from chalicelib.domain.principal import Principal
from chalicelib.services.invitations import ActivationRequest, Links
from chalicelib.settings import Settings

HOST = "127.0.0.1"
REGION = "eu-west-3"
DEFAULT_SIZES = (100, 1_000, 10_000)
FD_MARGIN = 256  # descriptors besides the N sockets: SQLite, HTTP keep-alive, pipes, the interpreter
COUNTED_OPS = ("get", "query", "put", "increment")
CONNECT_PATH = ws_api.CONNECT_PATH


# -- limits ---------------------------------------------------------------------------------------


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; returns (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def ephemeral_ports() -> int | None:
    """How many local ports clients may bind (Linux), or None when unknown."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return None
    return int(high) - int(low) + 1


def fitting_size(wanted: int, fd_soft: int, ports: int | None) -> tuple[int, str | None]:
    """The N this machine allows: each process holds N sockets plus a margin; clients need N ports."""
    limit = fd_soft - FD_MARGIN
    reason = None
    if wanted > limit:
        reason = (
            f"RLIMIT_NOFILE allows {fd_soft} descriptors per process and each process needs "
            f"N + {FD_MARGIN} (a single process would need 2N + {FD_MARGIN})"
        )
    if ports is not None and wanted > ports - FD_MARGIN and ports - FD_MARGIN < limit:
        limit = ports - FD_MARGIN
        reason = f"only {ports} ephemeral ports (net.ipv4.ip_local_port_range)"
    return (wanted, None) if reason is None else (max(0, limit), reason)


# -- statistics -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: an observed value, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


# == the client process ===========================================================================


@dataclass
class Arrivals:
    """Which clients got one message (by sequence number), and when the first and last did."""

    clients: set[int] = field(default_factory=set)
    first: float | None = None
    last: float | None = None
    duplicates: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)


class Ledger:
    """Arrival times of message frames, for every client of this process."""

    def __init__(self) -> None:
        self.expected = 0
        self.messages: dict[int, Arrivals] = {}

    def of(self, seq: int) -> Arrivals:
        return self.messages.setdefault(seq, Arrivals())

    def arrived(self, client: int, seq: int, at: float) -> None:
        record = self.of(seq)
        if client in record.clients:
            record.duplicates += 1
            return
        record.clients.add(client)
        record.first = at if record.first is None else min(record.first, at)
        record.last = at if record.last is None else max(record.last, at)
        if len(record.clients) >= self.expected:
            record.complete.set()


class LeanClient(asyncio.Protocol):
    """One receiving connection, as lean as the server's own: websockets' sans-I/O client on an
    ``asyncio.Protocol``, no task per connection, so that reading 10,000 sockets on the cores the
    server also uses costs the client process little. A frame is timestamped as its bytes arrive."""

    def __init__(self, client: int, uri: str, ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger
        self.ws = ClientProtocol(parse_uri(uri), max_size=MAX_MESSAGE)
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()  # before parsing: the frame is here
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self.opened.set_exception(self.ws.handshake_exc)
                else:
                    self.opened.set_result(None)
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                frame = json.loads(bytes(event.data))
                if frame.get("type") == "message":
                    self.ledger.arrived(self.client, int(frame["message"]["seq"]), at)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
            self.opened.exception()  # retrieved: whoever waited may have timed out already
        if not self.closed.done():
            self.closed.set_result(None)

    def flush(self) -> None:
        assert self.transport is not None
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    async def close(self) -> None:
        """The closing handshake, then the TCP connection (the server ends it)."""
        assert self.transport is not None
        if self.ws.state is State.OPEN:
            self.ws.send_close()
            self.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), 5)
        self.transport.close()


async def open_client(
    client: int, url: str, device_id: str, signing: SigningKey, ledger: Ledger, gate: asyncio.Semaphore
) -> LeanClient:
    """One authenticated connection: a fresh token each (the server spends every token's nonce)."""
    async with gate:
        token = sign_token(signing, device_id, "GET", CONNECT_PATH, None, b"", now=int(time.time()))
        uri = f"{url}/?token={quote(token)}"
        parsed = parse_uri(uri)
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: LeanClient(client, uri, ledger), parsed.host, parsed.port
        )
        try:
            await asyncio.wait_for(asyncio.shield(protocol.opened), 30)
        except BaseException:
            if protocol.transport is not None:
                protocol.transport.abort()
            raise
        return protocol


async def close_client(websocket: LeanClient, gate: asyncio.Semaphore) -> None:
    async with gate:
        await websocket.close()


async def wait_all(tasks: Sequence[asyncio.Task[Any]], timeout: float) -> None:
    """Wait for the tasks until the deadline, then cancel what is still running."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)


class ClientSide:
    """The client process's state: its open clients and the arrivals ledger."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.sockets: list[LeanClient] = []

    async def connect(self, command: dict[str, Any]) -> dict[str, Any]:
        gate = asyncio.Semaphore(int(command["concurrency"]))
        started = time.perf_counter()
        devices = [(device_id, SigningKey(b64d(seed))) for device_id, seed in command["devices"]]
        opening = [
            asyncio.create_task(open_client(i, command["url"], *devices[i // PER_DEVICE], self.ledger, gate))
            for i in range(int(command["count"]))
        ]
        await wait_all(opening, float(command["timeout"]))
        errors: Counter[str] = Counter()
        for task in opening:
            if task.cancelled():
                errors["connect timed out"] += 1
            elif (exc := task.exception()) is not None:
                errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            else:
                self.sockets.append(task.result())
        self.ledger.expected = len(self.sockets)
        return {
            "connected": len(self.sockets),
            "errors": dict(errors.most_common(5)),
            "failed": sum(errors.values()),
            "seconds": time.perf_counter() - started,
        }

    async def await_message(self, command: dict[str, Any]) -> dict[str, Any]:
        seq = int(command["seq"])
        record = self.ledger.of(seq)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(record.complete.wait(), float(command["timeout"]))
        del self.ledger.messages[seq]
        return {
            "received": len(record.clients),
            "first": record.first,
            "last": record.last,
            "duplicates": record.duplicates,
            "closed": sum(1 for ws in self.sockets if ws.closed.done()),
        }

    async def close(self, command: dict[str, Any]) -> dict[str, Any]:
        gate = asyncio.Semaphore(int(command.get("concurrency", 64)))
        await wait_all(
            [asyncio.create_task(close_client(ws, gate)) for ws in self.sockets], float(command["timeout"])
        )
        closed = len(self.sockets)
        self.sockets = []
        return {"closed": closed}

    def abort(self) -> None:
        for ws in self.sockets:
            if ws.transport is not None:
                ws.transport.abort()


async def client_process() -> None:
    """Serve the coordinator's commands (one JSON object a line on stdin, one answer each on stdout)."""
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    side = ClientSide()
    handlers = {"connect": side.connect, "await": side.await_message, "close": side.close}

    def reply(answer: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:  # the coordinator is gone
                return
            command = json.loads(line)
            handler = handlers.get(command["cmd"])
            if handler is None:
                reply({"error": f"unknown command {command['cmd']!r}"})
                continue
            reply(await handler(command))
            if command["cmd"] == "close":
                return
    finally:
        side.abort()


def run_client_process() -> None:
    """On uvloop when installed, as the server runs: reading 10,000 sockets costs it less."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(client_process())
        return
    uvloop.run(client_process())


class ClientProcess:
    """The coordinator's handle on the client process: commands with a deadline, never a hang."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--client-process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, name="bench-client-answers", daemon=True).start()

    def _pump(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def call(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"the client process did not answer {command['cmd']!r} in {timeout:.0f} s"
            ) from None
        if line is None:
            raise RuntimeError(f"the client process exited (code {self._process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self, timeout: float) -> None:
        """Close the connections cleanly when possible; the process is killed if it lingers."""
        try:
            if self._process.poll() is None:
                self.call({"cmd": "close", "timeout": timeout}, timeout + 15)
        except (TimeoutError, RuntimeError, OSError) as exc:
            print(f"  client process did not close cleanly: {exc}", file=sys.stderr)
        finally:
            with contextlib.suppress(OSError):
                assert self._process.stdin is not None
                self._process.stdin.close()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)


# == the server side ==============================================================================


class TimedRegistry(ConnectionRegistry):
    """Notes when the event loop has written a batch to every socket: the server's share of a
    delivery, apart from the time the client process takes to read 10,000 sockets."""

    written_at = 0.0

    def _write_all(self, connections: list[Any], frame: bytes) -> None:
        super()._write_all(connections, frame)
        self.written_at = time.perf_counter()


@dataclass
class Stack:
    container: wiring.Container
    store: CountingStore
    registry: TimedRegistry
    rest_url: str
    ws_url: str
    workers: int
    links: Links


def use_placeholder_aws_credentials() -> None:
    """boto3 is imported by the app: placeholders, never real secrets."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ["AWS_ACCESS_KEY_ID"] = "bench"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "bench"
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = REGION


@contextlib.contextmanager
def server_stack(data_dir: str, workers: int, connections: int) -> Iterator[Stack]:
    """The runtime of ``bocage serve`` on loopback, on a thread, with a counting store."""
    from app import app  # the app reads nothing until its first request

    options = ServeSettings(workers=workers, max_connections=connections + FD_MARGIN, ws_idle_timeout=3600)
    registry = TimedRegistry(options.ws_send_buffer)
    executor = ThreadPoolExecutor(workers, thread_name_prefix="bench-worker")
    listener = listen(HOST, 0)
    port = int(listener.getsockname()[1])
    rest_url, ws_url = f"http://{HOST}:{port}", f"ws://{HOST}:{port}/ws"
    sqlite = SqliteStore(os.path.join(data_dir, "bocage.sqlite3"), SystemClock())
    store = CountingStore(sqlite)
    settings = Settings(data_dir=data_dir, public_url=rest_url, ws_url=ws_url, region=REGION)
    # As bocage serve alone wires it: the fan-out from memory, Web Push wake-ups on their queue.
    wakes = LocalQueue()
    container = wiring.build(
        settings,
        store=store,
        clock=SystemClock(),
        push=InProcessPush(registry),
        queue=wakes,
        inline_limit=sys.maxsize,
        local=PresenceIndex("bench", lambda: True),
    )
    wakes.start(container.delivery.deliver_chunks)
    wiring.use(container)
    asgi = assemble(app, executor, registry, options, domain_name=f"{HOST}:{port}")
    server = ServerThread(make_server(asgi, options), [listener]).start()
    try:
        yield Stack(
            container=container,
            store=store,
            registry=registry,
            rest_url=rest_url,
            ws_url=ws_url,
            workers=workers,
            links=Links(api_url=rest_url, app_url=f"{rest_url}/app"),
        )
    finally:
        server.stop()
        wakes.stop(timeout=10)
        wiring.use(None)
        sqlite.close()


@dataclass(frozen=True)
class Signer:
    """A device's keys and the principal the server knows it as."""

    keys: DeviceKeys
    who: Principal


def activate(stack: Stack, url: str, name: str) -> Signer:
    """Activate a fresh device from an activation URL (protocol v2 certificates), through the service."""
    device = DeviceKeys.generate()
    target = parse_activation(url)
    enrolment = enrol(
        target,
        device_id=device.device_id,
        sign_public_key=device.sign_public_key,
        box_public_key=device.box_public_key,
        display_name=name,
        now=int(time.time()),
    )
    proof = device.signing.sign(activation_proof_message(target.code, device.box_public_key)).signature
    stack.container.invitations.activate(
        ActivationRequest(
            code=target.code,
            sign_public_key=device.sign_public_key,
            box_public_key=device.box_public_key,
            proof=b64e(proof),
            device_name="bench",
            display_name=name,
            member_cert=enrolment.member_cert,
            device_cert=enrolment.device_cert,
        )
    )
    return Signer(device, stack.container.auth.device_principal(device.device_id))


def seed_author(stack: Stack) -> Signer:
    _, invitation = stack.container.invitations.create_organisation(
        "Fan-out bench", Plan.PILOT, "Author", stack.links
    )
    return activate(stack, invitation.activation_url, "Author")


def seed_tribe(stack: Stack, author: Signer, size: int) -> tuple[str, Signer]:
    """A fresh tribe of the author with one listener member, whose device opens every connection."""
    c = stack.container
    name, now = f"Listener {size}", int(time.time())
    ticket = member_ticket(author.keys.signing, author.keys.device_id, author.who.org_id, "member", name, now)
    invitation = c.invitations.invite(author.who, name, Role.MEMBER, stack.links, ticket=ticket.statement)
    url = with_fragment_params(invitation.activation_url, ticket=ticket.fragment_seed, root="-")
    listener = activate(stack, url, name)
    signing, device_id, org_id = author.keys.signing, author.keys.device_id, author.who.org_id
    seed = new_channel_seed()
    created = membership_entry(
        signing, device_id, org_id=org_id, channel_id=channel_id_from_seed(seed), previous=None, op="create",
        member_id=author.who.member_id, role="author", kind="tribe", now=now,
    )  # fmt: skip
    channel_id = str(
        c.channels.create(author.who, ChannelKind.TRIBE, f"Fan-out {size}", created, seed)["channel_id"]
    )
    added = membership_entry(
        signing, device_id, org_id=org_id, channel_id=channel_id, previous=created, op="add",
        member_id=listener.who.member_id, role="member", now=now,
    )  # fmt: skip
    c.channels.add_member(author.who, channel_id, listener.who.member_id, ChannelRole.MEMBER, added)
    return channel_id, listener


def presence_count(stack: Stack, channel_id: str) -> int:
    """Connections the store lists for the channel (read around the counter: not a measured op)."""
    return sum(1 for _ in query_all(stack.store.inner, f"CHAN#{channel_id}", keys.CONNECTION_PREFIX))


def wait_until(condition: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


# -- one message ----------------------------------------------------------------------------------


@dataclass
class Run:
    send_s: float
    first_s: float | None
    last_s: float | None
    written_s: float
    received: int
    expected: int
    online: int
    duplicates: int
    ops: Counter[str]

    @property
    def missing(self) -> int:
        return self.expected - self.received

    @property
    def rate(self) -> float | None:
        return self.received / self.last_s if self.last_s else None


def send_one(
    stack: Stack, clients: ClientProcess, author: Signer, channel_id: str, expected: int, timeout: float
) -> Run:
    """Seal, then time ``messaging.send`` and the arrivals; count the store operations of both."""
    sender_key = message_key(new_chain_key())
    epoch = stack.container.channels.epoch(channel_id).number
    envelope: Envelope = seal_message(
        author.keys,
        sender_key,
        index=0,
        channel_id=channel_id,
        epoch=epoch,
        message_id=new_message_id(),
        content={"type": "text", "text": "Réunion publique lundi à 18 h, salle des fêtes"},
        sent_at_ms=int(time.time() * 1000),
    )
    stack.store.reset()

    started = time.perf_counter()
    result = stack.container.messaging.send(author.who, envelope)
    returned = time.perf_counter()

    seen = clients.call({"cmd": "await", "seq": result.seq, "timeout": timeout}, timeout + 30)
    ops = stack.store.reset()
    return Run(
        send_s=returned - started,
        first_s=None if seen["first"] is None else seen["first"] - started,
        written_s=stack.registry.written_at - started,
        last_s=None if seen["last"] is None else seen["last"] - started,
        received=int(seen["received"]),
        expected=expected,
        online=result.online,
        duplicates=int(seen["duplicates"]),
        ops=ops,
    )


# -- one size -------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    wanted: int
    connected: int
    runs: list[Run]
    connect_s: float
    note: str | None = None

    def median(self, values: Sequence[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None


def measure_size(
    stack: Stack,
    author: Signer,
    wanted: int,
    connections: int,
    runs: int,
    timeout: float | None,
    concurrency: int,
    note: str | None,
) -> SizeResult:
    channel_id, listener = seed_tribe(stack, author, wanted)
    delivery_timeout = timeout if timeout is not None else 30 + connections / 50
    connect_timeout = 60 + connections / 5  # each $connect is a worker's job; the machine is shared
    clients = ClientProcess()
    result = SizeResult(wanted=wanted, connected=0, runs=[], connect_s=0.0, note=note)
    try:
        clones = clone_members(stack.store.inner, listener.keys.device_id, connections)
        opened = clients.call(
            {
                "cmd": "connect",
                "url": stack.ws_url,
                "devices": [(c.device_id, c.signing_seed) for c in clones],
                "count": connections,
                "concurrency": concurrency,
                "timeout": connect_timeout,
            },
            connect_timeout + 30,
        )
        result.connected, result.connect_s = int(opened["connected"]), float(opened["seconds"])
        if opened["failed"]:
            print(f"  {opened['failed']} connections failed: {opened['errors']}", flush=True)
        # The gateway registers a connection just after the handshake the client saw complete.
        if not wait_until(lambda: len(stack.registry) >= result.connected, 60):
            print(f"  only {len(stack.registry)} connections registered by the gateway", flush=True)
        online = presence_count(stack, channel_id)
        print(
            f"  N={connections:,}: {result.connected:,} connected in {result.connect_s:.1f} s "
            f"({online:,} presence items); warm-up + {runs} runs",
            flush=True,
        )
        if result.connected == 0:
            return result
        send_one(stack, clients, author, channel_id, result.connected, delivery_timeout)  # warm-up
        for i in range(runs):
            run = send_one(stack, clients, author, channel_id, result.connected, delivery_timeout)
            result.runs.append(run)
            flags = ""
            if run.duplicates:
                flags += f", {run.duplicates} duplicate frames"
            if run.online != run.expected:
                flags += f", send() saw {run.online} online"
            print(
                f"    run {i + 1}: send() {ms(run.send_s)}, first {ms(run.first_s)}, "
                f"written {ms(run.written_s)}, last {ms(run.last_s)}, "
                f"{run.received:,}/{run.expected:,} delivered, "
                f"ops {dict(sorted(run.ops.items()))}{flags}",
                flush=True,
            )
    finally:
        clients.stop(timeout=60 + connections / 50)
        quiet = wait_until(
            lambda: len(stack.registry) == 0 and presence_count(stack, channel_id) == 0, 120, step=0.2
        )
        if not quiet:
            print(
                f"  after closing: {len(stack.registry)} connections still registered, "
                f"{presence_count(stack, channel_id)} presence items left",
                flush=True,
            )
    return result


# -- report ---------------------------------------------------------------------------------------


def ops_summary(runs: Sequence[Run]) -> str:
    """Median count per operation over the runs (they are the same every run, unless something failed)."""
    names = [*COUNTED_OPS, *sorted({op for r in runs for op in r.ops} - set(COUNTED_OPS))]
    medians = {op: statistics.median(r.ops[op] for r in runs) for op in names}
    total = sum(medians.values())
    return (
        "/".join(f"{medians[op]:g}" for op in COUNTED_OPS)
        + "".join(f" +{medians[op]:g} {op}" for op in names[len(COUNTED_OPS) :] if medians[op])
        + f" (={total:g})"
    )


def report(results: Sequence[SizeResult], workers: int) -> None:
    print()
    print(
        "Per N (median over runs; p99 is nearest-rank, so the slowest run when runs < 100; "
        "times from the send call)"
    )
    header = (
        f"{'N':>7} {'runs':>4} {'deliv/s':>9} {'last p50':>11} {'last p99':>11} {'send() p50':>11} "
        f"{'first p50':>10} {'written p50':>11} {'missing':>7}  store ops/msg get/query/put/incr"
    )
    print(header)
    for r in results:
        if not r.runs:
            print(f"{r.wanted:>7} {0:>4}  no run: {r.connected} connected")
            continue
        lasts = [run.last_s for run in r.runs if run.last_s is not None]
        last_p50 = r.median(lasts)
        last_p99 = percentile(lasts, 99) if lasts else None
        print(
            f"{r.connected:>7} {len(r.runs):>4} {r.median([run.rate for run in r.runs]) or 0:>9,.0f} "
            f"{ms(last_p50):>11} {ms(last_p99):>11} {ms(r.median([run.send_s for run in r.runs])):>11} "
            f"{ms(r.median([run.first_s for run in r.runs])):>10} "
            f"{ms(r.median([run.written_s for run in r.runs])):>11} "
            f"{sum(run.missing for run in r.runs):>7}  {ops_summary(r.runs)}"
        )
    print()
    print(f"Worker threads: {workers}; every frame is pushed by the sending thread, in one batch per message")
    for r in results:
        if r.note:
            print(f"Note: N={r.wanted:,} ran with {r.connected:,} connections: {r.note}")


# -- main -----------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("sizes are positive integers, comma-separated")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="connection counts")
    parser.add_argument("--runs", type=int, default=5, help="timed messages per size (after a warm-up)")
    parser.add_argument("--workers", type=int, default=16, help="worker threads of the server")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for deliveries per message"
    )
    parser.add_argument("--connect-concurrency", type=int, default=64, help="WebSocket handshakes in flight")
    parser.add_argument("--client-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_process:
        run_client_process()
        return
    if args.runs < 1 or args.workers < 1:
        parser.error("--runs and --workers must be at least 1")

    use_placeholder_aws_credentials()
    fd_soft, fd_hard = raise_fd_limit()
    ports = ephemeral_ports()
    print(
        f"Fan-out bench: Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"RLIMIT_NOFILE {fd_soft}/{fd_hard} (soft/hard) per process, "
        f"{ports if ports is not None else 'unknown'} ephemeral ports"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bocage-fanout-") as data_dir,
        server_stack(data_dir, args.workers, max(args.sizes)) as stack,
    ):
        print(
            f"SQLite store, bocage serve's ASGI server (uvicorn) on {stack.rest_url}, WebSockets on "
            f"{stack.ws_url}, InProcessPush, {args.workers} worker threads, clients in a separate process",
            flush=True,
        )
        author = seed_author(stack)
        results: list[SizeResult] = []
        for wanted in args.sizes:
            connections, note = fitting_size(wanted, fd_soft, ports)
            if note:
                print(f"  N={wanted:,}: running {connections:,} connections: {note}", flush=True)
            results.append(
                measure_size(
                    stack,
                    author,
                    wanted,
                    connections,
                    args.runs,
                    args.timeout,
                    args.connect_concurrency,
                    note,
                )
            )
        report(results, args.workers)


if __name__ == "__main__":
    main()
