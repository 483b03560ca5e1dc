"""Three `bocage serve` replicas on one DynamoDB-API server (moto's, over HTTP), over loopback.

Clients spread over the replicas get every message, whichever replica it was sent through;
a replica killed with SIGKILL mid-stream loses nothing (its clients come back through the
"load balancer", another replica, and catch up); scheduled jobs run once among the replicas.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bocage.client.profile import Profile
from chalicelib.domain.frames import CLOSE_REPLACED
from tests.e2e.conftest import Server, bocage, start_server
from tests.e2e.test_messaging_walkthrough import Listener

pytestmark = pytest.mark.e2e


class FailoverProxy:
    """A TCP load balancer in miniature: each connection goes to the first backend that accepts it."""

    def __init__(self) -> None:
        # Bound before the replicas pick their ports, so none of them can take the balancer's.
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.backends: list[int] = []
        self._stopped = False

    def start(self, backends: list[int]) -> None:
        self.backends = backends
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        for port in self.backends:
            try:
                backend = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                continue
            backend.settimeout(None)
            threading.Thread(target=_pump, args=(backend, client), daemon=True).start()
            _pump(client, backend)
            return
        client.close()

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@dataclass
class Cluster:
    replicas: list[Server]
    ids: list[str]

    def port(self, i: int) -> int:
        return int(self.replicas[i].url.rsplit(":", 1)[1])


def cluster_env(endpoint: str, table: str, **extra: str) -> dict[str, str]:
    return {
        "BOCAGE_STORE": "dynamodb",
        "BOCAGE_DYNAMODB_ENDPOINT": endpoint,
        "BOCAGE_CREATE_TABLE": "1",
        "BOCAGE_TABLE": table,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "BOCAGE_JOBS_INTERVAL": "1",
        **extra,
    }


def start_cluster(tmp_path: Path, endpoint: str, names: str = "abc", **extra: str) -> Cluster:
    env = cluster_env(endpoint, f"bocage-replicas-{uuid.uuid4().hex[:12]}", **extra)
    cluster = Cluster([], [])
    for name in names:  # one after the other: the first one creates the organisation
        add_replica(cluster, tmp_path, name, env)
    return cluster


def add_replica(cluster: Cluster, tmp_path: Path, name: str, env: dict[str, str]) -> Server:
    server = start_server(tmp_path / name, tmp_path / f"{name}.log", port=None, **env)
    cluster.replicas.append(server)
    cluster.ids.append(server.banner.split("replica ", 1)[1].split(",", 1)[0])
    return server


def stop_cluster(cluster: Cluster) -> None:
    for server in cluster.replicas:
        if server.process.poll() is None:
            server.process.terminate()
            server.process.wait(timeout=15)


def point_at(profile: Path, url: str) -> None:
    """Have a device talk to another replica (or to the load balancer)."""
    p = Profile(profile)
    p.save_info({**p.info(), "server": url})


SHOWN_AS = {"owner": "Maire", "alice": "Alice", "bob": "Bob"}  # as the owner named them: that stands


def org(tmp_path: Path, owner_url: str) -> tuple[dict[str, Path], str]:
    """The owner, Alice and Bob, in one group."""
    p = {name: tmp_path / name for name in ("owner", "alice", "bob")}
    bocage("--profile", str(p["owner"]), "activate", owner_url, "--name", SHOWN_AS["owner"])
    group = bocage("--profile", str(p["owner"]), "group", "create", "Conseil")["channel_id"]
    for name in ("alice", "bob"):
        invitation = bocage("--profile", str(p["owner"]), "invite", "--name", SHOWN_AS[name])
        member = bocage("--profile", str(p[name]), "activate", invitation["activation_url"])
        bocage("--profile", str(p["owner"]), "channel", "add", group, member["member_id"])
    return p, group


def job_runs(cluster: Cluster) -> Counter[tuple[str, int]]:
    """Every run of a scheduled job in every replica's log, by (job, slot)."""
    runs: Counter[tuple[str, int]] = Counter()
    for server in cluster.replicas:
        for line in server.output().splitlines():
            if line.startswith("{") and '"scheduled task"' in line:
                entry = json.loads(line)
                runs[(entry["task"], int(entry["slot"]))] += 1
    return runs


@pytest.fixture
def cluster(shared_dynamodb: str, tmp_path: Path) -> Iterator[Cluster]:
    started = start_cluster(tmp_path, shared_dynamodb)
    yield started
    stop_cluster(started)


def test_messages_sent_through_each_replica_reach_clients_on_all(cluster: Cluster, tmp_path: Path) -> None:
    p, group = org(tmp_path, cluster.replicas[0].owner_url())
    senders = {"owner": 0, "alice": 1, "bob": 2}  # each device talks to a replica of its own
    for name, replica in senders.items():
        point_at(p[name], cluster.replicas[replica].url)
    listeners = {name: Listener(p[name], 2) for name in senders}
    for name in senders:
        bocage("--profile", str(p[name]), "send", group, f"de {name}")
    for name, listener in listeners.items():
        got = listener.messages()
        # every other member's message, never its own device's back (the sender has it)
        assert sorted(m["text"] for m in got) == sorted(f"de {n}" for n in senders if n != name), name
    started = time.monotonic()
    time.sleep(max(0.0, 4 - (time.monotonic() - started)))
    runs = job_runs(cluster)
    retention = [slot for (task, slot), n in runs.items() if task == "retention"]
    assert len(retention) >= 3  # a run a second, among the three replicas...
    assert set(runs.values()) == {1}  # ...each one by a single replica


def test_a_replica_killed_mid_stream_loses_no_message(shared_dynamodb: str, tmp_path: Path) -> None:
    balancer = FailoverProxy()
    try:
        cluster = start_cluster(
            tmp_path,
            shared_dynamodb,
            BOCAGE_PUBLIC_URL=f"http://127.0.0.1:{balancer.port}",
            BOCAGE_WS_URL=f"ws://127.0.0.1:{balancer.port}/ws",
        )
    except BaseException:
        balancer.stop()
        raise
    # The balancer prefers the third replica: the listeners' connections all land there.
    balancer.start([cluster.port(2), cluster.port(1), cluster.port(0)])
    try:
        p, group = org(tmp_path, cluster.replicas[0].owner_url())  # its links name the balancer
        point_at(p["owner"], cluster.replicas[0].url)  # the sender talks to the first replica only
        listeners = {name: Listener(p[name], 10) for name in ("alice", "bob")}
        held_by = {
            str(i["replica"]) for i in cluster.replicas[0].stored_items() if str(i["pk"]).startswith("CONN#")
        }
        assert held_by == {cluster.ids[2]}
        for i in range(10):
            if i == 4:
                cluster.replicas[2].process.kill()  # SIGKILL: no $disconnect, no goodbye
                cluster.replicas[2].process.wait(timeout=10)
            bocage("--profile", str(p["owner"]), "send", group, f"message {i}")
        for name, listener in listeners.items():
            texts = [m["text"] for m in listener.messages()]
            assert sorted(texts) == sorted(f"message {i}" for i in range(10)), name  # each exactly once
    finally:
        balancer.stop()
        stop_cluster(cluster)


def test_a_sixth_connection_on_another_replica_closes_the_oldest_with_4008(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The per-device cap across replicas: the close and its code travel to the replica holding
    the oldest connection (its internal endpoint), as the `replaced` error frame does."""
    from tests.e2e.test_websocket_limits import frames_until_closed, open_socket

    bocage(
        "--profile", str(tmp_path / "owner"), "activate", cluster.replicas[0].owner_url(), "--name", "Maire"
    )
    owner = Profile(tmp_path / "owner")
    with contextlib.ExitStack() as opened:
        first = [open_socket(opened, cluster.replicas[0], owner) for _ in range(5)]
        sixth = open_socket(opened, cluster.replicas[1], owner)
        oldest = frames_until_closed(first[0])
        assert [(f["type"], f["error"]) for f in oldest] == [("error", "replaced")]
        assert first[0].close_code == CLOSE_REPLACED
        for ws in [*first[1:], sixth]:
            ws.send('{"action": "ping", "ref": "still"}')
            assert json.loads(ws.recv(timeout=5)) == {"type": "pong", "ref": "still"}


def test_a_replica_joining_a_lone_one_is_pushed_to_at_once(shared_dynamodb: str, tmp_path: Path) -> None:
    """A replica alone pushes from its memory of its own connections; once a second one is in
    the directory, a client that connects to the newcomer gets the next message sent through
    the first live (no catch-up: its listener connected before the send), and the reverse."""
    env = cluster_env(shared_dynamodb, f"bocage-replicas-{uuid.uuid4().hex[:12]}")
    cluster = Cluster([], [])
    try:
        first = add_replica(cluster, tmp_path, "a", env)
        p, group = org(tmp_path, first.owner_url())
        alice = Listener(p["alice"], 3)  # on the first replica, alone: pushed from memory
        bocage("--profile", str(p["owner"]), "send", group, "seul")
        second = add_replica(cluster, tmp_path, "b", env)
        point_at(p["bob"], second.url)
        bob = Listener(p["bob"], 2)  # on the newcomer as soon as it serves
        held_by = {
            str(i["member_id"]): str(i["replica"])
            for i in first.stored_items()
            if str(i["pk"]).startswith("CONN#")
        }
        assert sorted(held_by.values()) == sorted([cluster.ids[0], cluster.ids[1]])
        bocage("--profile", str(p["owner"]), "send", group, "à deux")  # through the first
        point_at(p["owner"], second.url)
        bocage("--profile", str(p["owner"]), "send", group, "par l'autre")  # through the second
        assert [m["text"] for m in alice.messages()] == ["seul", "à deux", "par l'autre"]
        assert [m["text"] for m in bob.messages()] == ["à deux", "par l'autre"]
    finally:
        stop_cluster(cluster)
