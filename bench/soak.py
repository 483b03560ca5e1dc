"""Soak: N live clients on one `bocage serve` for T seconds, with churn; nothing lost, memory flat,
file descriptors and threads back where they were once the clients leave (issue 19, item 3).

The clients are member devices of one organisation, each in one group of 10 to 50 members and
in one tribe of everyone; the owner's device (a client too) is in every channel and is the one
that posts in the tribe (only administrators may). Each client holds a real WebSocket on
loopback, in one of several client processes, sends a real envelope (signed, encrypted) to its
group at a steady rate (``--rate`` messages a second over all clients, well under the frame
limit), and now and then drops its connection (half clean closes, half aborted sockets),
stays away 0.5 to 3 s, reconnects, and catches up over REST from the highest sequence number
it holds with nothing missing before it (docs/protocol.md, section 10), as the web client
does. A send whose ack the connection did not bring is resent with the same message id after
reconnecting (the server answers a resend as a duplicate and stores nothing more).

Counted at the end, with every message id the server acknowledged: expected deliveries (each
message times its channel's member devices, the sender's own included: it holds its message from
the ack, since the server never pushes a message back to its sender), delivered (distinct
(device, message id) pairs, live or through catch-up), lost (expected minus delivered), and
duplicates (copies a device received beyond the first: a catch-up overlapping what arrived live;
they are removed by message id, as clients do). The server's RSS is read after warm-up and at
the end of the run; its file descriptors and threads (/proc/<pid>/fd, /proc/<pid>/status) before
the clients come and after they leave.

    python bench/soak.py --clients 1000 --minutes 10 [--rate 50] [--churn 0.2]
                         [--client-processes 4] [--json]

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # bench/load.py as ``load``, as mypy names it

from load import (  # noqa: E402
    Replica,
    joined,
    open_socket,
    send_action,
    signing_keys,
    start_replicas,
)
from websockets.asyncio.client import ClientConnection  # noqa: E402
from websockets.exceptions import ConnectionClosed, WebSocketException  # noqa: E402

from bocage.client.api import BocageClient  # noqa: E402
from bocage.client.ratchet import new_chain_key, next_chain  # noqa: E402
from chalicelib.domain.encoding import b64e  # noqa: E402

TEXT = "soak " * 20  # 100 characters: the volume is in the count of messages, not their size
READ_PAGE = 200


# == the client process ===========================================================================


@dataclass
class ChannelState:
    """What one device holds of one channel: the seqs seen, and the highest with no gap below."""

    seqs: set[int] = field(default_factory=set)
    contiguous: int = 0

    def saw(self, seq: int) -> None:
        self.seqs.add(seq)
        while self.contiguous + 1 in self.seqs:
            self.contiguous += 1


class SoakClient:
    """One member device: its socket, its sends, and every message id it received."""

    def __init__(self, spec: dict[str, Any], server: str, ws_url: str, rng: random.Random) -> None:
        self.spec = spec
        self.server = server
        self.ws_url = ws_url
        self.rng = rng
        self.keys = signing_keys(spec["seed"])
        self.channels = {c["channel_id"]: ChannelState() for c in spec["channels"]}
        self.received: Counter[str] = Counter()
        self.acked: dict[str, str] = {}  # message id -> channel id
        self.unacked: dict[str, str] = {}  # message id -> the send action, resent after a reconnect
        self.chain = new_chain_key()
        self.index = 0
        self.reconnects = 0
        self.errors: Counter[str] = Counter()
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.cut = False  # the server closed the socket (e.g. dropped a client that fell behind)
        self.server_closes: Counter[str] = Counter()  # by close code

    def record(self, message: dict[str, Any]) -> None:
        self.received[str(message["message_id"])] += 1
        state = self.channels.get(str(message["channel_id"]))
        if state is not None:
            state.saw(int(message["seq"]))

    async def read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    self.record(frame["message"])
                elif kind == "ack":
                    if self.unacked.pop(str(frame["ref"]), None) is not None:
                        self.acked[str(frame["message_id"])] = str(frame["channel_id"])
                        self.record(frame)  # the sender holds its message: it is not pushed back
                elif kind == "error":
                    self.errors[str(frame.get("error"))] += 1
        if ws is self.ws:  # not one of our own drops: come back, as clients do
            self.cut = True
            self.server_closes[str(ws.close_code)] += 1

    async def connect(self) -> None:
        """Open the socket (a refused or failed handshake is retried, a few times) and read it."""
        for attempt in range(5):
            try:
                self.ws = await open_socket(self.ws_url, self.spec["device_id"], self.spec["seed"])
                break
            except (OSError, WebSocketException, TimeoutError):
                if attempt == 4:
                    raise
                self.errors["connect_failed"] += 1
                await asyncio.sleep(1.0 + attempt)
        assert self.ws is not None
        self.reader = asyncio.create_task(self.read(self.ws))

    async def catch_up(self, pool: ThreadPoolExecutor) -> None:
        """After a reconnect: each channel from its gap-free watermark, page by page, over REST."""
        client = BocageClient(self.server, device=self.keys)
        for channel_id, state in self.channels.items():
            since = state.contiguous
            while True:
                page = await asyncio.get_running_loop().run_in_executor(
                    pool, functools.partial(client.messages, channel_id, since=since, limit=READ_PAGE)
                )
                for message in page["messages"]:
                    self.record(dict(message))
                if not page["more"] or page["cursor"] == since:
                    break
                since = int(page["cursor"])

    async def send_one(self) -> None:
        channel = self.rng.choice([c for c in self.spec["channels"] if c["post"]])
        message_id, action = send_action(
            self.keys, self.chain, channel["channel_id"], int(channel["epoch"]), self.index, TEXT
        )
        self.chain, self.index = next_chain(self.chain), self.index + 1
        self.unacked[message_id] = action
        assert self.ws is not None
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(action)

    async def resend(self) -> None:
        assert self.ws is not None
        for action in list(self.unacked.values()):
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(action)

    async def drop(self) -> None:
        """A random disconnect: half clean closes, half sockets that just vanish."""
        ws, self.ws = self.ws, None
        if ws is None:
            return
        if self.rng.random() < 0.5:
            await ws.close()
        else:
            ws.transport.abort()
        if self.reader is not None:
            await self.reader

    def life(self, mean_life: float) -> float:
        return time.monotonic() + self.rng.expovariate(1 / mean_life) if mean_life else float("inf")

    async def run(self, until: float, period: float, mean_life: float, pool: ThreadPoolExecutor) -> None:
        """Send every ``period`` seconds until ``until``; drop and come back every ``mean_life``."""
        next_send = time.monotonic() + self.rng.uniform(0, period)
        leave_at = self.life(mean_life)
        while (now := time.monotonic()) < until:
            if self.cut or now >= leave_at:
                if not self.cut:
                    await self.drop()
                await asyncio.sleep(self.rng.uniform(0.5, 3.0))
                await self.come_back(pool)
                leave_at = self.life(mean_life)
            if now >= next_send:
                await self.send_one()
                next_send += period
            await asyncio.sleep(min(0.5, max(0.0, min(next_send, leave_at, until) - time.monotonic())))

    async def come_back(self, pool: ThreadPoolExecutor) -> None:
        """Reconnect, catch up over REST, resend what was not acknowledged."""
        if self.reader is not None:
            await self.reader
        self.cut = False
        await self.connect()
        self.reconnects += 1
        await self.catch_up(pool)
        await self.resend()

    async def finish(self, settle: float, pool: ThreadPoolExecutor) -> None:
        """Every send acknowledged (resent while not), back first if the server closed the socket."""
        deadline = time.monotonic() + settle
        while (self.unacked or self.cut) and time.monotonic() < deadline:
            if self.cut:
                await self.come_back(pool)
            else:
                await self.resend()
            await asyncio.sleep(1.0)

    def report(self) -> dict[str, Any]:
        return {
            "received": dict(self.received),
            "acked": self.acked,
            "unacked": len(self.unacked),
            "reconnects": self.reconnects,
            "errors": dict(self.errors),
            "server_closes": dict(self.server_closes),
        }


async def quiet(clients: list[SoakClient], settle: float) -> None:
    """Wait until no client has received anything for 3 s (pushes in flight land), at most ``settle``."""
    deadline, last, still_since = time.monotonic() + settle, -1, time.monotonic()
    while time.monotonic() < deadline:
        total = sum(sum(c.received.values()) for c in clients)
        if total != last:
            last, still_since = total, time.monotonic()
        elif time.monotonic() - still_since >= 3.0:
            return
        await asyncio.sleep(0.5)


async def client_process(command: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(command["seed"])
    clients = [SoakClient(spec, command["server"], command["ws_url"], rng) for spec in command["clients"]]
    until = time.monotonic() + command["until_wall"] - time.time()  # each process has its own monotonic
    gate = asyncio.Semaphore(50)
    pool = ThreadPoolExecutor(8)

    async def run(client: SoakClient) -> None:
        async with gate:  # the handshakes, 50 at a time; then each client runs on its own
            await client.connect()
        await client.catch_up(pool)  # what was sent before this client's socket opened
        await client.run(until, command["period"], command["mean_life"], pool)

    await asyncio.gather(*(run(c) for c in clients))
    await asyncio.gather(*(c.finish(command["settle"], pool) for c in clients))
    # Every process done sending (resends included) before any stops listening: a barrier.
    sys.stdout.write('{"sent": true}\n')
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await quiet(clients, command["settle"])
    for _ in range(3):  # a client the server closed meanwhile comes back and catches up
        cut = [c for c in clients if c.cut]
        if not cut:
            break
        await asyncio.gather(*(c.come_back(pool) for c in cut))
        await quiet(clients, command["settle"])
    for client in clients:
        await client.drop()  # half close, half vanish: the server must clean up after both
    pool.shutdown()
    return {"clients": [c.report() for c in clients]}


def client_main() -> None:
    """The command (a JSON line) on stdin; ``{"sent": true}`` once done sending, then, after a line
    on stdin (every process is done), what the clients saw, as JSON on stdout."""
    command = json.loads(sys.stdin.readline())
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sys.stdout.write(json.dumps(asyncio.run(client_process(command))))


# == the harness ==================================================================================


@dataclass
class Plan:
    channels: dict[str, list[int]]  # channel id -> the clients in it
    clients: list[dict[str, Any]]


def group_sizes(members: int, rng: random.Random, low: int = 10, high: int = 50) -> list[int]:
    """Members dealt into groups of ``low`` to ``high`` (the owner, in each, is not counted)."""
    sizes: list[int] = []
    left = members
    while left > 0:
        size = min(left, rng.randint(low, high))
        if 0 < left - size < low:  # never leave a group under ``low``: this one takes the rest
            size = left if left <= high else left - low
        sizes.append(size)
        left -= size
    return sizes


def seed_org(replica: Replica, activation: str, clients: int, profiles: Path, rng: random.Random) -> Plan:
    """The owner and ``clients - 1`` members over REST (protocol v2), the tribe and the groups."""
    owner = joined(replica.url, activation, "Owner", profiles / "owner")
    links = [owner.trust.invite(f"Member {i}")["activation_url"] for i in range(1, clients)]
    with ThreadPoolExecutor(4) as pool:
        members = [
            owner,
            *pool.map(
                lambda i: joined(replica.url, links[i - 1], f"Member {i}", profiles / f"m{i}"),
                range(1, clients),
            ),
        ]
    tribe = owner.create_channel("tribe", "Everyone")["channel_id"]
    channels: dict[str, list[int]] = {tribe: list(range(clients))}
    posts: dict[int, list[str]] = {0: [tribe]}
    for i in range(1, clients):
        owner.add_member(tribe, str(members[i].info["member_id"]))
    start = 1
    for n, size in enumerate(group_sizes(clients - 1, rng)):
        group = owner.create_channel("group", f"Group {n}")["channel_id"]
        channels[group] = [0, *range(start, start + size)]
        for i in range(start, start + size):
            owner.add_member(group, str(members[i].info["member_id"]))
            posts[i] = [group]
        start += size
    epochs = {c["channel_id"]: int(c["epoch"]) for c in owner.channels()}
    specs = []
    for i, m in enumerate(members):
        mine = [c for c, who in channels.items() if i in who]
        specs.append(
            {
                "device_id": m.keys.device_id,
                "seed": b64e(bytes(m.keys.signing)),
                "channels": [
                    {"channel_id": c, "epoch": epochs[c], "post": c in posts.get(i, [])} for c in mine
                ],
            }
        )
    return Plan(channels, specs)


def process_counts(pid: int) -> tuple[int, int]:
    """Open file descriptors and threads of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Threads:")
    )
    return fds, threads


def warm_server(replica: Replica, owner: dict[str, Any], count: int = 48) -> None:
    """Every handler thread and pooled SQLite connection started (both are opened as requests
    need them, then kept): a baseline that the clients' leaving can be compared with."""
    client = BocageClient(replica.url, device=signing_keys(owner["seed"]))
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(lambda _: client.channels(), range(count * 4)))


@dataclass
class SoakResult:
    clients: int
    groups: int
    seconds: float
    messages: int
    expected: int
    delivered: int
    lost: int
    duplicates: int
    unacked: int
    reconnects: int
    errors: dict[str, int]
    server_closes: dict[str, int]
    rss_start: int
    rss_end: int
    fds: tuple[int, int]
    threads: tuple[int, int]
    missing: list[str]

    @property
    def rss_growth(self) -> float:
        return (self.rss_end - self.rss_start) / self.rss_start

    def lines(self) -> str:
        return (
            f"{self.clients} clients ({self.groups} groups of 10-50 and one tribe of all), "
            f"{self.seconds:.0f} s: {self.messages} messages sent and acknowledged, "
            f"{self.expected} deliveries expected, {self.delivered} delivered, lost {self.lost}, "
            f"duplicates before de-dup {self.duplicates}, unacknowledged {self.unacked}, "
            f"reconnects {self.reconnects}, error frames {self.errors or 0}, "
            f"closed by the server (by code) {self.server_closes or 0}\n"
            f"server RSS {self.rss_start / 2**20:.1f} MiB after warm-up, {self.rss_end / 2**20:.1f} MiB "
            f"at the end ({100 * self.rss_growth:+.1f} %); file descriptors {self.fds[0]} before, "
            f"{self.fds[1]} after the clients left; threads {self.threads[0]} before, {self.threads[1]} after"
            + "".join(f"\n  lost: {line}" for line in self.missing)
        )


def tally(plan: Plan, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Expected, delivered (distinct per device), lost, duplicates, over every acknowledged message."""
    acked: dict[str, str] = {}
    for report in reports:
        acked.update(report["acked"])
    members = {c: set(who) for c, who in plan.channels.items()}
    expected = sum(len(members[c]) for c in acked.values())
    delivered = duplicates = 0
    missing: list[str] = []
    for i, report in enumerate(reports):
        for message_id, copies in report["received"].items():
            channel = acked.get(message_id)
            if channel is not None and i in members[channel]:
                delivered += 1
                duplicates += copies - 1
        if len(missing) < 5:  # a few of the lost, to look into
            mine = (m for m, c in acked.items() if i in members[c] and m not in report["received"])
            missing += [f"client {i} ({report['reconnects']} reconnects): {m} in {acked[m]}" for m in mine]
    counts = {"messages": len(acked), "expected": expected, "delivered": delivered, "duplicates": duplicates}
    return {**counts, "missing": missing[:5]}


def soak(
    clients: int, seconds: float, *, rate: float, churn: float, processes: int, seed: int = 7
) -> SoakResult:
    """Start a server, seed, run the clients, count; ``churn``: disconnects per client-minute."""
    rng = random.Random(seed)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOCAGE_")}
    env.update({"PYTHONPATH": str(ROOT), "BOCAGE_ACTIVATION_RATE": "0", "BOCAGE_PURGE_INTERVAL": "0"})
    env.update({"BOCAGE_JOBS_INTERVAL": "0", "BOCAGE_BILLING_INTERVAL": "0"})
    with tempfile.TemporaryDirectory(prefix="bocage-soak-") as tmp:
        (replica,), activation = start_replicas(1, env, Path(tmp))
        try:
            plan = seed_org(replica, activation, clients, Path(tmp) / "profiles", rng)
            warm_server(replica, plan.clients[0])
            time.sleep(1.0)
            fds_before, threads_before = process_counts(replica.process.pid)
            warm_up = min(60.0, seconds / 3)
            until_wall = time.time() + 15 + seconds  # 15 s to start the processes and connect
            ws_url = str(BocageClient(replica.url).health()["ws_url"])
            commands = []
            for p in range(processes):
                commands.append(
                    {
                        "server": replica.url,
                        "ws_url": ws_url,
                        "clients": plan.clients[p::processes],
                        "until_wall": until_wall,
                        "period": clients / rate,
                        "mean_life": 60 / churn if churn else 0,
                        "settle": 60.0,
                        "seed": seed * 1000 + p,
                    }
                )
            runners = [
                subprocess.Popen(
                    [sys.executable, __file__, "--client-process"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                )
                for _ in commands
            ]
            for runner, command in zip(runners, commands, strict=True):
                assert runner.stdin is not None
                runner.stdin.write(json.dumps(command) + "\n")
                runner.stdin.flush()
            time.sleep(max(0.0, until_wall - seconds - time.time() + warm_up))
            rss_start = replica.rss_bytes()
            time.sleep(max(0.0, until_wall - time.time()))
            rss_end = replica.rss_bytes()
            reports: list[dict[str, Any]] = []
            for runner in runners:  # the barrier: all done sending, then all may stop listening
                assert runner.stdout is not None
                if json.loads(runner.stdout.readline() or "{}") != {"sent": True}:
                    raise RuntimeError("a client process failed")
            for runner in runners:
                assert runner.stdin is not None
                runner.stdin.write("go\n")
                runner.stdin.close()
            for runner in runners:
                assert runner.stdout is not None
                reports += json.loads(runner.stdout.read())["clients"]
                runner.wait(60)
            fds_after, threads_after = settle_counts(replica.process.pid, fds_before, threads_before)
        finally:
            replica.process.terminate()
            replica.process.wait(30)
    # reports come back process by process: put them back in the plan's order
    ordered = [reports[0]] * clients
    k = 0
    for p in range(processes):
        for i in range(p, clients, processes):
            ordered[i] = reports[k]
            k += 1
    counts = tally(plan, ordered)
    errors: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    for report in ordered:
        errors.update(report["errors"])
        closes.update(report["server_closes"])
    return SoakResult(
        clients=clients,
        groups=len(plan.channels) - 1,
        seconds=seconds,
        messages=counts["messages"],
        expected=counts["expected"],
        delivered=counts["delivered"],
        lost=counts["expected"] - counts["delivered"],
        duplicates=counts["duplicates"],
        missing=counts["missing"],
        unacked=sum(r["unacked"] for r in ordered),
        reconnects=sum(r["reconnects"] for r in ordered),
        errors=dict(errors),
        server_closes=dict(closes),
        rss_start=rss_start,
        rss_end=rss_end,
        fds=(fds_before, fds_after),
        threads=(threads_before, threads_after),
    )


def settle_counts(pid: int, fds: int, threads: int, wait: float = 30.0) -> tuple[int, int]:
    """The server's fds and threads once they are back to ``fds``/``threads``, or after ``wait`` s
    (its $disconnect handlers run after the clients left)."""
    deadline = time.monotonic() + wait
    while True:
        now = process_counts(pid)
        if (now[0] <= fds and now[1] <= threads) or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate", type=float, default=None, help="messages a second, all clients (default N/20)"
    )
    parser.add_argument("--churn", type=float, default=0.2, help="disconnects per client and minute")
    parser.add_argument("--client-processes", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--client-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_process:
        client_main()
        return
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = soak(
        args.clients,
        args.minutes * 60,
        rate=args.rate or args.clients / 20,
        churn=args.churn,
        processes=args.client_processes or max(2, args.clients // 250),
    )
    print(json.dumps(asdict(result)) if args.json else result.lines())


if __name__ == "__main__":
    main()
