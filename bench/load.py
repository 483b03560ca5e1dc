"""Load: R receivers on live WebSockets in one group, S senders, M messages, against real
`bocage serve` processes (one replica, or several on one store).

What it prints, per run and as medians over the runs:

- accepted msg/s: messages the server acknowledged, over the time from the first send to the
  last ack (senders send as fast as acknowledged, or at ``--rate`` messages per second offered);
- deliveries/s: message frames the receivers got, over the time from the first send to the last;
- send-to-receipt latency p50/p95/p99/max, over every (message, receiver) pair;
- lost: deliveries missing once the senders are done and ``--grace`` seconds have passed;
- server CPU seconds (user + system, every replica, from /proc) during the run, per delivery,
  and the client processes' CPU seconds (they share the cores: a busy client slows the figure);
- peak RSS of the replicas during the run (sampled every 0.1 s; the sum over replicas).

How: this process starts the replicas (``python -m bocage serve``) on a fresh store (SQLite in a
temporary directory, shared by every replica; or a DynamoDB-API server with ``--store dynamodb``:
moto's, or the one at BOCAGE_DYNAMODB_ENDPOINT), seeds an organisation over the REST API (the
owner, R + S devices in one group), then hands the devices' keys to a client process (this script
with ``--client-process``). The client process opens the R receivers' WebSockets and the S
senders', spread over the replicas round-robin, seals every message before the clock starts
(a real envelope, signed and encrypted: the server checks it as any other), sends them as
``send`` actions and timestamps acks and arrivals with ``time.perf_counter``. Receivers never
decrypt: they find the message id in the frame, so the client process stays light. The client
process shares the machine's cores with the servers: quote medians, and say the machine was busy.

    python bench/load.py --receivers 50 --messages 300 [--senders 1] [--size 1024] [--rate 20]
                         [--replicas 3] [--store sqlite|dynamodb] [--runs 3] [--grace 30]
                         [--client-processes 2] [--idle 10000]

Loopback only; every loop is bounded by its message count and timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nacl.signing import SigningKey  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from bocage.client.api import BocageClient  # noqa: E402
from bocage.client.crypto import new_message_id, seal_message  # noqa: E402
from bocage.client.messenger import Messenger  # noqa: E402
from bocage.client.profile import DeviceKeys, Profile, sign_token  # noqa: E402
from bocage.client.ratchet import message_key, new_chain_key, next_chain  # noqa: E402
from bocage.client.trust import activate  # noqa: E402
from chalicelib.domain.activation_link import parse_activation  # noqa: E402
from chalicelib.domain.encoding import b64d, b64e  # noqa: E402

HOST = "127.0.0.1"
CONNECT_PATH = "$connect"
MESSAGE_FRAME = re.compile(r'^\{"type": ?"message"')
MESSAGE_ID = re.compile(r'"message_id": ?"([^"]+)"')
CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest rank: an observed value, never an interpolation."""
    ordered = sorted(values)
    rank = math.ceil(pct / 100 * len(ordered))
    return ordered[max(0, min(len(ordered), rank) - 1)]


# == the client process ===========================================================================


def token_for(device_id: str, seed: str) -> str:
    return sign_token(SigningKey(b64d(seed)), device_id, "GET", CONNECT_PATH, None, b"", now=int(time.time()))


async def open_socket(url: str, device_id: str, seed: str) -> ClientConnection:
    return await connect(
        f"{url}?token={quote(token_for(device_id, seed))}",
        open_timeout=60,
        ping_interval=None,
        compression=None,
        max_size=None,
    )


class Clients:
    """Receivers and senders on live WebSockets, and what they saw."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.arrivals: dict[str, list[float]] = {}
        self.sent: dict[str, float] = {}
        self.acked: dict[str, float] = {}
        self.refused: list[str] = []
        self.receivers: list[ClientConnection] = []
        self.senders: list[ClientConnection] = []
        self.idle: list[ClientConnection] = []
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._readers: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        gate = asyncio.Semaphore(32)

        async def one(spec: dict[str, str]) -> ClientConnection:
            async with gate:
                return await open_socket(spec["url"], spec["device_id"], spec["seed"])

        self.receivers = list(await asyncio.gather(*(one(s) for s in self.plan["receivers"])))
        self.senders = list(await asyncio.gather(*(one(s) for s in self.plan["senders"])))
        # Idle connections (--idle): the server's memory per open WebSocket; never read from.
        self.idle = list(await asyncio.gather(*(one(s) for s in self.plan.get("idle", []))))
        self._readers = [asyncio.create_task(self._receive(ws)) for ws in self.receivers]
        self._readers += [asyncio.create_task(self._acks_of(ws)) for ws in self.senders]

    async def _receive(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                at = time.perf_counter()
                text = raw if isinstance(raw, str) else raw.decode()
                if MESSAGE_FRAME.match(text):
                    match = MESSAGE_ID.search(text)
                    if match:
                        self.arrivals.setdefault(match.group(1), []).append(at)

    async def _acks_of(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                at = time.perf_counter()
                frame = json.loads(raw)
                future = self._acks.pop(str(frame.get("ref")), None)
                if future is None:
                    continue
                if frame.get("type") == "ack":
                    self.acked[str(frame["ref"])] = at
                else:
                    self.refused.append(f"{frame.get('error')}: {frame.get('message')}")
                future.set_result(None)

    def sealed(self, sender: dict[str, str], count: int) -> list[tuple[str, str]]:
        """Every message of one sender, sealed before the clock starts: (message id, send action)."""
        keys = signing_keys(sender["seed"])
        chain = new_chain_key()  # receivers are not asked to open them: delivery is measured
        text = "x" * int(self.plan["size"])
        out = []
        for index in range(count):
            out.append(
                send_action(keys, chain, self.plan["channel_id"], int(self.plan["epoch"]), index, text)
            )
            chain = next_chain(chain)
        return out

    async def run(self, messages: int, rate: float | None) -> None:
        senders = self.plan["senders"]
        if not senders:
            return
        share = [
            messages // len(senders) + (1 if i < messages % len(senders) else 0) for i in range(len(senders))
        ]
        batches = [self.sealed(s, n) for s, n in zip(senders, share, strict=True)]
        started = time.perf_counter()
        await asyncio.gather(
            *(
                self._send_all(ws, batch, rate, started, i, len(senders))
                for i, (ws, batch) in enumerate(zip(self.senders, batches, strict=True))
            )
        )

    async def _send_all(
        self,
        ws: ClientConnection,
        batch: list[tuple[str, str]],
        rate: float | None,
        t0: float,
        i: int,
        n: int,
    ) -> None:
        pending: list[asyncio.Future[None]] = []
        for k, (message_id, action) in enumerate(batch):
            if rate is not None:  # open loop: message k of sender i is due at (k * n + i) / rate
                delay = t0 + (k * n + i) / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            future = asyncio.get_running_loop().create_future()
            self._acks[message_id] = future
            self.sent[message_id] = time.perf_counter()
            await ws.send(action)
            if rate is None:
                await asyncio.wait_for(future, 60)  # closed loop: the next once this one is accepted
            else:
                pending.append(future)
        if pending:
            await asyncio.wait(pending, timeout=120)

    async def settle(self, expected_each: int, grace: float) -> None:
        """Wait until every receiver has every message, or ``grace`` seconds without progress."""
        last, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < grace:
            got = sum(len(v) for k, v in self.arrivals.items() if k in self.sent)
            if got >= expected_each * len(self.sent):
                return
            if got != last:
                last, last_change = got, time.monotonic()
            await asyncio.sleep(0.05)


def signing_keys(seed: str) -> DeviceKeys:
    """A device's keys for sending, from its signing seed (sealing signs; the box key is unused)."""
    from nacl.public import PrivateKey

    return DeviceKeys(SigningKey(b64d(seed)), PrivateKey.generate())


def send_action(
    keys: DeviceKeys, chain: bytes, channel_id: str, epoch: int, index: int, text: str
) -> tuple[str, str]:
    """A real envelope (signed, encrypted with ``chain``'s key), as a ``send`` action: (id, JSON)."""
    message_id = new_message_id()
    envelope = seal_message(
        keys,
        message_key(chain),
        index=index,
        channel_id=channel_id,
        epoch=epoch,
        message_id=message_id,
        content={"type": "text", "text": text},
        sent_at_ms=int(time.time() * 1000),
    )
    action = {"action": "send", "ref": message_id, "envelope": envelope.model_dump(mode="json")}
    return message_id, json.dumps(action)


async def client_process() -> None:
    """Commands as JSON lines on stdin, one JSON answer line each on stdout."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)  # plans and results are large JSON lines
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients: Clients | None = None
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "open":
            clients = Clients(command["plan"])
            await clients.open()
            answer: dict[str, Any] = {
                "open": len(clients.receivers) + len(clients.senders) + len(clients.idle)
            }
        elif command["cmd"] == "reset":
            assert clients is not None
            for kept in (clients.arrivals, clients.sent, clients.acked):
                kept.clear()
            clients.refused.clear()
            answer = {}
        elif command["cmd"] == "run":  # the process with the senders
            assert clients is not None
            await clients.run(int(command["messages"]), command.get("rate"))
            await clients.settle(len(clients.receivers), float(command["grace"]))
            answer = {
                "sent": clients.sent,
                "acked": clients.acked,
                "refused": clients.refused[:5],
                "arrivals": {k: v for k, v in clients.arrivals.items() if k in clients.sent},
            }
        elif command["cmd"] == "collect":  # the others: what arrived of the messages sent
            assert clients is not None
            clients.sent = dict.fromkeys(command["ids"], 0.0)
            await clients.settle(len(clients.receivers), float(command["grace"]))
            answer = {"arrivals": {k: v for k, v in clients.arrivals.items() if k in clients.sent}}
        else:
            break
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


# == the server side ==============================================================================


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


def start_replicas(count: int, env: dict[str, str], data: Path) -> tuple[list[Replica], str]:
    """The replicas, one after the other; returns them and the owner's activation URL."""
    replicas, activation = [], ""
    for i in range(count):
        log = data / f"serve-{i}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "bocage", "serve", "--host", HOST, "--port", "0", "--data", str(data)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while "serving the REST API" not in (text := log.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bocage serve did not start: {text}")
            time.sleep(0.1)
        url = re.search(r"REST API on (\S+)", text)
        found = re.search(r"Activation URL:\s+(\S+)", text)
        assert url is not None
        activation = activation or (found.group(1) if found else "")
        replicas.append(Replica(url.group(1), process))
    return replicas, activation


@dataclass
class Seeded:
    channel_id: str
    epoch: int
    receivers: list[dict[str, str]] = field(default_factory=list)
    senders: list[dict[str, str]] = field(default_factory=list)


def joined(server: str, link: str, name: str, directory: Path) -> Messenger:
    """A member activated from an invitation link (protocol v2), its profile in ``directory``."""
    profile = Profile(directory)
    keys = DeviceKeys.generate()
    profile.save_keys(keys)
    result = activate(
        BocageClient(server),
        profile,
        parse_activation(link),
        keys,
        device_name="load",
        display_name=name,
        now=int(time.time()),
    )
    result.pop("warnings")
    profile.save_info({"server": server, **result})
    return Messenger(profile)


def seed(replicas: list[Replica], activation: str, receivers: int, senders: int, profiles: Path) -> Seeded:
    """The owner, then R + S members with one device each, all in one group (over REST, protocol
    v2: each member invited with a ticket, each addition a signed membership entry)."""
    owner = joined(replicas[0].url, activation, "Owner", profiles / "owner")
    channel_id = owner.create_channel("group", "Load")["channel_id"]
    count = receivers + senders
    links = [owner.trust.invite(f"Member {i}")["activation_url"] for i in range(count)]

    def member(i: int) -> Messenger:
        server = replicas[i % len(replicas)].url
        return joined(server, links[i], f"Member {i}", profiles / f"member-{i}")

    with ThreadPoolExecutor(4) as pool:
        messengers = list(pool.map(member, range(count)))
    members = []
    for i, m in enumerate(messengers):
        owner.add_member(channel_id, str(m.info["member_id"]))  # one signed entry after another
        ws_url = str(BocageClient(replicas[i % len(replicas)].url).health()["ws_url"])
        members.append({"url": ws_url, "device_id": m.keys.device_id, "seed": b64e(bytes(m.keys.signing))})
    epoch = next(c["epoch"] for c in owner.channels() if c["channel_id"] == channel_id)
    return Seeded(channel_id, int(epoch), members[:receivers], members[receivers:])


@contextlib.contextmanager
def store_env(kind: str) -> Iterator[dict[str, str]]:
    if kind == "sqlite":
        yield {}
        return
    if os.environ.get("BOCAGE_DYNAMODB_ENDPOINT"):
        endpoint, process = os.environ["BOCAGE_DYNAMODB_ENDPOINT"], None
    else:
        from tests.conftest import start_moto_server

        process, endpoint = start_moto_server()
    try:
        yield {
            "BOCAGE_STORE": "dynamodb",
            "BOCAGE_DYNAMODB_ENDPOINT": endpoint,
            "BOCAGE_CREATE_TABLE": "1",
            "BOCAGE_TABLE": f"bocage-load-{uuid.uuid4().hex[:8]}",
        }
    finally:
        if process is not None:
            from tests.conftest import stop_moto_server

            stop_moto_server(process)


class ClientProcess:
    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--client-process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def call(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the client process ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def cpu_seconds(self) -> float:
        return cpu_seconds(self._process.pid)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self._process.stdin is not None
            self._process.stdin.close()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()


class RssSampler:
    """The replicas' summed resident memory, sampled on a thread while a run lasts."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.peak = 0
        self._replicas = replicas
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, sum(r.rss_bytes() for r in self._replicas))

    def __enter__(self) -> RssSampler:
        self.peak = sum(r.rss_bytes() for r in self._replicas)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Result:
    accepted_per_s: float
    deliveries_per_s: float
    latencies_ms: list[float]
    lost: int
    duplicates: int
    cpu_s: float
    client_cpu_s: float
    deliveries: int
    peak_rss: int
    refused: list[str]

    def line(self) -> str:
        lat = self.latencies_ms or [float("nan")]
        per_delivery = 1000 * self.cpu_s / max(1, self.deliveries)
        return (
            f"accepted {self.accepted_per_s:7.1f} msg/s, {self.deliveries_per_s:8.0f} deliveries/s, latency "
            f"p50 {percentile(lat, 50):6.1f} p95 {percentile(lat, 95):6.1f} p99 {percentile(lat, 99):6.1f} "
            f"max {max(lat):7.1f} ms, lost {self.lost}, dup {self.duplicates}, "
            f"server CPU {self.cpu_s:5.2f} s ({per_delivery:.3f} ms/delivery), "
            f"client CPU {self.client_cpu_s:5.2f} s, peak RSS {self.peak_rss / 2**20:.0f} MiB"
        )


def idle_rss(
    replicas: list[Replica], clients: list[ClientProcess], seeded: Seeded, count: int, data: Path
) -> str:
    """Open ``count`` more WebSockets (five per clone of the last receiver, in an extra client
    process that never reads them) and report the replicas' resident memory, before and after."""
    from extra_members import PER_DEVICE, clone_members

    from chalicelib.adapters.clocks import SystemClock
    from chalicelib.adapters.sqlite_store import SqliteStore

    store = SqliteStore(str(data / "bocage.sqlite3"), SystemClock())
    try:
        clones = clone_members(store, seeded.receivers[-1]["device_id"], count)
    finally:
        store.close()
    url = seeded.receivers[-1]["url"]
    idle = [{"url": url, "device_id": c.device_id, "seed": c.signing_seed} for c in clones]
    before = sum(r.rss_bytes() for r in replicas)
    idler = ClientProcess()
    clients.append(idler)  # stopped with the others
    plan = {"receivers": [], "senders": [], "idle": [d for d in idle for _ in range(PER_DEVICE)][:count]}
    opened = int(idler.call({"cmd": "open", "plan": plan})["open"])
    time.sleep(2)
    after = sum(r.rss_bytes() for r in replicas)
    return (
        f"{opened:,} opened; RSS {before / 2**20:.0f} MiB before, {after / 2**20:.0f} MiB after "
        f"({(after - before) / max(1, opened) / 1024:.1f} KiB per connection)"
    )


def measure(replicas: list[Replica], clients: list[ClientProcess], args: argparse.Namespace) -> Result:
    for process in clients:
        process.call({"cmd": "reset"})
    cpu_before = sum(r.cpu_seconds() for r in replicas)
    client_before = sum(c.cpu_seconds() for c in clients)
    with RssSampler(replicas) as rss:
        seen = clients[0].call(
            {"cmd": "run", "messages": args.messages, "rate": args.rate, "grace": args.grace}
        )
        for process in clients[1:]:
            more = process.call({"cmd": "collect", "ids": list(seen["sent"]), "grace": args.grace})
            for message_id, times in more["arrivals"].items():
                seen["arrivals"].setdefault(message_id, []).extend(times)
    cpu = sum(r.cpu_seconds() for r in replicas) - cpu_before
    client_cpu = sum(c.cpu_seconds() for c in clients) - client_before
    sent: dict[str, float] = seen["sent"]
    acked: dict[str, float] = seen["acked"]
    arrivals: dict[str, list[float]] = seen["arrivals"]
    t0 = min(sent.values())
    latencies = [(at - sent[m]) * 1000 for m, times in arrivals.items() for at in times]
    every = [at for times in arrivals.values() for at in times]
    expected = len(sent) * args.receivers
    unique = sum(min(len(times), args.receivers) for times in arrivals.values())
    return Result(
        accepted_per_s=len(acked) / (max(acked.values()) - t0) if acked else 0.0,
        deliveries_per_s=len(every) / (max(every) - t0) if every else 0.0,
        latencies_ms=latencies,
        lost=expected - unique,
        duplicates=len(every) - unique,
        cpu_s=cpu,
        client_cpu_s=client_cpu,
        deliveries=len(every),
        peak_rss=rss.peak,
        refused=list(seen["refused"]),
    )


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    mode = f"{args.rate:g} msg/s offered" if args.rate else "as fast as accepted"
    print(
        f"R={args.receivers} receivers, S={args.senders} sender(s), M={args.messages} messages of "
        f"{args.size} B, {mode}, {args.replicas} replica(s) on {args.store}: medians over {len(results)} runs"
    )

    def med(values: Sequence[float]) -> float:
        return statistics.median(values)

    def pct(p: float) -> float:
        return med([percentile(r.latencies_ms, p) for r in results if r.latencies_ms] or [math.nan])

    print(
        f"  accepted {med([r.accepted_per_s for r in results]):.1f} msg/s, "
        f"{med([r.deliveries_per_s for r in results]):,.0f} deliveries/s, latency p50 {pct(50):.1f} ms, "
        f"p95 {pct(95):.1f} ms, p99 {pct(99):.1f} ms, "
        f"max {med([max(r.latencies_ms) for r in results if r.latencies_ms] or [0]):.1f} ms, "
        f"lost {med([r.lost for r in results]):g}, server CPU {med([r.cpu_s for r in results]):.2f} s "
        f"({med([1000 * r.cpu_s / max(1, r.deliveries) for r in results]):.3f} ms/delivery), "
        f"client CPU {med([r.client_cpu_s for r in results]):.2f} s, "
        f"peak RSS {med([r.peak_rss for r in results]) / 2**20:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--senders", type=int, default=1)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--size", type=int, default=1024, help="bytes of text per message")
    parser.add_argument("--rate", type=float, default=None, help="messages per second offered (all senders)")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--store", choices=["sqlite", "dynamodb"], default="sqlite")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--grace", type=float, default=30.0, help="seconds without a delivery before giving up"
    )
    parser.add_argument("--client-processes", type=int, default=1, help="processes sharing the receivers")
    parser.add_argument(
        "--idle", type=int, default=0, help="also open N idle WebSockets: memory per connection"
    )
    parser.add_argument("--client-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_process:
        asyncio.run(client_process())
        return
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOCAGE_")}
    env.update({"PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    env.update({"BOCAGE_PURGE_INTERVAL": "0", "BOCAGE_JOBS_INTERVAL": "0", "BOCAGE_BILLING_INTERVAL": "0"})
    env["BOCAGE_ACTIVATION_RATE"] = "0"  # every simulated device activates from this one address
    # One sender device stands for a whole town's senders: lift the per-connection frame limit
    # (20 a second), or a refused frame, which has no ``ref``, leaves the sender waiting.
    env["BOCAGE_WS_FRAME_RATE"] = "0"
    if args.idle and args.store != "sqlite":
        parser.error("--idle writes its devices to the replicas' SQLite store: use --store sqlite")
    with tempfile.TemporaryDirectory(prefix="bocage-load-") as tmp, store_env(args.store) as store:
        replicas, activation = start_replicas(args.replicas, {**env, **store}, Path(tmp))
        clients = [ClientProcess() for _ in range(args.client_processes)]
        try:
            print(f"{args.replicas} replica(s): {', '.join(r.url for r in replicas)}; seeding...", flush=True)
            seeded = seed(replicas, activation, args.receivers, args.senders, Path(tmp) / "profiles")
            opened = 0
            for i, process in enumerate(clients):  # receivers dealt out; every sender in the first
                plan = {
                    "receivers": seeded.receivers[i :: len(clients)],
                    "senders": seeded.senders if i == 0 else [],
                    "channel_id": seeded.channel_id,
                    "epoch": seeded.epoch,
                    "size": args.size,
                }
                opened += int(process.call({"cmd": "open", "plan": plan})["open"])
            print(f"  {opened} WebSockets open in {len(clients)} client process(es)", flush=True)
            if args.idle:
                measured = idle_rss(replicas, clients, seeded, args.idle, Path(tmp))
                print(f"  with {args.idle:,} idle WebSockets: {measured}")
                return  # no run: every message would pile up on sockets nobody reads
            results = []
            for i in range(args.runs):
                result = measure(replicas, clients, args)
                results.append(result)
                print(f"  run {i + 1}: {result.line()}", flush=True)
                if result.refused:
                    print(f"    refused: {result.refused}", flush=True)
            report(results, args)
        finally:
            for process in clients:
                process.stop()
            for replica in replicas:
                replica.process.terminate()
            for replica in replicas:
                replica.process.wait(30)


if __name__ == "__main__":
    main()
