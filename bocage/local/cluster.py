"""Replicas of ``bocage serve`` on one store, pushing to each other's connections.

Each replica holds some WebSocket connections; presence records name the replica of each
(chalicelib/adapters/records/presence.py). A push to a connection held here is a socket
write; one held elsewhere goes to that replica's internal endpoint, one HTTP request per
replica and message (the frame once, then the ids), signed with the cluster's secret
(HMAC-SHA256 over a timestamp, the path and the body). Replicas find each other's addresses
in the store's directory, which a heartbeat keeps fresh; a replica that refuses connections
is dead, so its connections are gone (their clients reconnect elsewhere and catch up).
The internal endpoint listens apart from the public port (bocage/local/asgi.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import logging
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from bocage.local.connections import ConnectionRegistry
from bocage.local.in_process_push import InProcessPush, check_size
from bocage.local.rest import ClientGone, Receive, Scope, Send, read_body
from chalicelib.adapters.records.cluster import ClusterRecords, Replica
from chalicelib.adapters.records.presence import Presence
from chalicelib.ports import ConnectionGone, Store, Target

logger = logging.getLogger(__name__)

PUSH_PATH = "/cluster/push"
CLOSE_PATH = "/cluster/close"
HEARTBEAT = 5.0  # seconds between a replica's directory writes
REPLICA_TTL = 20  # seconds a replica stays in the directory after its last heartbeat
REFRESH = 2.0  # seconds a replica trusts its copy of the directory
JOIN_MARGIN = 0.5  # seconds past REFRESH a joining replica waits, for the others' reads in flight
SIGNATURE_WINDOW = 60  # seconds a signed request stays valid (clocks of one cluster agree to this)
MAX_BODY = 16 * 1024 * 1024
PEER_TIMEOUT = 5.0


def signature(secret: bytes, timestamp: str, path: str, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}\n{path}\n".encode() + body, hashlib.sha256).hexdigest()


def pack(connection_ids: Sequence[str], data: bytes = b"") -> bytes:
    """Connection ids (URL-safe base64: no comma, no newline), a newline, then the frame as is."""
    return ",".join(connection_ids).encode("ascii") + b"\n" + data


def unpack(body: bytes) -> tuple[list[str], bytes]:
    ids, _, data = body.partition(b"\n")
    return [i for i in ids.decode("ascii").split(",") if i], data


def pack_close(code: int, reason: str) -> bytes:
    """A close's code and reason, after the ids: ``4008 replaced by a newer connection``."""
    return f"{code} {reason}".encode()


def unpack_close(data: bytes) -> tuple[int, str]:
    """The code and reason of ``pack_close``; a bare close (an older replica's) is 1000."""
    code, _, reason = data.decode("utf-8", "replace").partition(" ")
    return (
        (int(code), reason) if code.isascii() and code.isdigit() and 1000 <= int(code) <= 4999 else (1000, "")
    )


class PeerDown(Exception):
    """The replica refused the connection: nothing listens there any more."""


class PeerError(Exception):
    """The replica did not answer as expected (a timeout, an error status)."""


class Peers:
    """Signed HTTP/1.1 requests to other replicas, on keep-alive connections (one per thread and peer)."""

    def __init__(self, secret: bytes, replica_id: str, timeout: float = PEER_TIMEOUT) -> None:
        self._secret = secret
        self._replica_id = replica_id
        self._timeout = timeout
        self._local = threading.local()

    def post(self, address: str, path: str, body: bytes) -> bytes:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Bocage-Replica": self._replica_id,
            "X-Bocage-Time": timestamp,
            "X-Bocage-Signature": signature(self._secret, timestamp, path, body),
        }
        for attempt in (1, 2):  # a kept-alive connection the peer closed meanwhile gets one retry
            connection = self._connection(address, fresh=attempt == 2)
            try:
                connection.request("POST", path, body, headers)
                answer = connection.getresponse()
                data = answer.read()
            except ConnectionRefusedError as exc:
                self._drop(address)
                raise PeerDown(address) from exc
            except (http.client.HTTPException, OSError) as exc:
                self._drop(address)
                if attempt == 2:
                    raise PeerError(f"{type(exc).__name__} from {address}") from exc
                continue
            if answer.status != 200:
                raise PeerError(f"{answer.status} from {address}")
            return data
        raise AssertionError("unreachable")

    def _connection(self, address: str, *, fresh: bool) -> http.client.HTTPConnection:
        pool: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        if fresh or address not in pool:
            self._drop(address)
            parts = urlsplit(address)
            pool[address] = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=self._timeout
            )
        return pool[address]

    def _drop(self, address: str) -> None:
        pool: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        connection = pool.pop(address, None)
        if connection is not None:
            connection.close()


class Directory:
    """The live replicas' addresses, read from the store at most every ``REFRESH`` seconds."""

    def __init__(self, records: ClusterRecords) -> None:
        self._records = records
        self._lock = threading.Lock()
        self._addresses: dict[str, str] = {}
        self._read_at = float("-inf")
        self._down: dict[str, float] = {}  # replica -> when it refused: dead, whatever its record says

    def address(self, replica_id: str) -> str | None:
        with self._lock:
            now = time.monotonic()
            if now - self._down.get(replica_id, float("-inf")) < REPLICA_TTL:
                return None
            stale = now - self._read_at > REFRESH
            if stale or (replica_id not in self._addresses and now - self._read_at > REFRESH / 4):
                self._addresses = {r.replica_id: r.address for r in self._records.replicas()}
                self._read_at = now
            return self._addresses.get(replica_id)

    def alone(self, replica_id: str) -> bool:
        """Whether ``replica_id`` is the only replica listed (a copy at most ``REFRESH`` old;
        a replica that refused lately still counts until its record expires)."""
        with self._lock:
            now = time.monotonic()
            if now - self._read_at > REFRESH:
                self._addresses = {r.replica_id: r.address for r in self._records.replicas()}
                self._read_at = now
            return not (self._addresses.keys() - {replica_id})

    def down(self, replica_id: str) -> None:
        with self._lock:
            self._down[replica_id] = time.monotonic()


class ClusterPush:
    """The Push port of one replica: its own connections in process, the others' through their replica."""

    def __init__(
        self,
        connections: ConnectionRegistry,
        replica_id: str,
        store: Store,
        peers: Peers,
        directory: Directory | None = None,
    ) -> None:
        self._local = InProcessPush(connections)
        self._connections = connections
        self._replica_id = replica_id
        self._presence = Presence(store)
        self._directory = directory or Directory(ClusterRecords(store))
        self._peers = peers

    def send(self, connection_id: str, data: bytes) -> None:
        if connection_id in self._connections:
            self._local.send(connection_id, data)
            return
        check_size(data)
        replica = self._replica_of(connection_id)
        if replica is None or self._forward(replica, PUSH_PATH, [connection_id], data):
            raise ConnectionGone(connection_id)

    def send_many(self, targets: Sequence[Target], data: bytes) -> list[str]:
        check_size(data)
        here: list[Target] = []
        elsewhere: dict[str, list[str]] = {}
        for target in targets:
            if target.replica is None or target.replica == self._replica_id:
                here.append(target)
            else:
                elsewhere.setdefault(target.replica, []).append(target.connection_id)
        gone = self._local.send_many(here, data) if here else []
        for replica, connection_ids in elsewhere.items():
            gone += self._forward(replica, PUSH_PATH, connection_ids, data)
        return gone

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        if self._connections.close(connection_id, code, reason):
            return
        replica = self._replica_of(connection_id)
        if replica is not None:
            self._forward(replica, CLOSE_PATH, [connection_id], pack_close(code, reason))

    def _replica_of(self, connection_id: str) -> str | None:
        """The other replica holding a connection, from its presence record."""
        connection = self._presence.get(connection_id)
        if connection is None or connection.replica in (None, self._replica_id):
            return None
        return connection.replica

    def _forward(self, replica: str, path: str, connection_ids: list[str], data: bytes) -> list[str]:
        """Have ``replica`` act on its connections; returns those that are gone."""
        address = self._directory.address(replica)
        if address is None:  # left the directory, or refused us lately: dead
            return connection_ids
        try:
            answer = self._peers.post(address, path, pack(connection_ids, data))
        except PeerDown:
            self._directory.down(replica)
            logger.warning("replica down: its connections are gone", extra={"replica": replica})
            return connection_ids
        except PeerError as exc:  # alive but not answering: keep its presence, clients catch up
            logger.warning("push to replica failed", extra={"replica": replica, "error": str(exc)})
            return []
        return unpack(answer)[0]


class InternalApi:
    """The internal endpoint: pushes and closes from other replicas, for this replica's connections."""

    def __init__(self, connections: ConnectionRegistry, secret: bytes, read_timeout: float = 10.0) -> None:
        self._connections = connections
        self._secret = secret
        self._read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["method"] != "POST" or path not in (PUSH_PATH, CLOSE_PATH):
            await _answer(send, 404, b"")
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if int(headers.get("content-length") or 0) > MAX_BODY:
            await _answer(send, 413, b"")
            return
        try:
            async with asyncio.timeout(self._read_timeout):
                body = await read_body(receive)
        except (ClientGone, TimeoutError):
            return
        if not self._authentic(headers, path, body):
            await _answer(send, 403, b"")
            return
        connection_ids, data = unpack(body)
        if path == CLOSE_PATH:
            code, reason = unpack_close(data)
            for connection_id in connection_ids:
                self._connections.close(connection_id, code, reason)
            await _answer(send, 200, b"")
            return
        gone = self._connections.post_many(connection_ids, data)
        await _answer(send, 200, ",".join(gone).encode("ascii"))

    def _authentic(self, headers: dict[str, str], path: str, body: bytes) -> bool:
        timestamp = headers.get("x-bocage-time", "")
        if not timestamp.isascii() or not timestamp.isdigit():
            return False
        if abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW:
            return False
        expected = signature(self._secret, timestamp, path, body)
        return hmac.compare_digest(expected, headers.get("x-bocage-signature", ""))


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Membership:
    """This replica's entry in the directory: written at start, renewed by the heartbeat, removed at stop."""

    def __init__(self, store: Store, replica: Replica) -> None:
        self._records = ClusterRecords(store)
        self.replica = replica

    def join(self) -> None:
        """Enter the directory; when other replicas are listed, wait until each has re-read it
        (``REFRESH``, and a margin) before this replica takes its first connection, so none of
        them still believes it is alone when a client of this one connects (PresenceIndex)."""
        self.heartbeat()
        others = [r for r in self._records.replicas() if r.replica_id != self.replica.replica_id]
        if others:
            time.sleep(REFRESH + JOIN_MARGIN)

    def heartbeat(self) -> None:
        self._records.announce(
            Replica(self.replica.replica_id, self.replica.address, int(time.time()) + REPLICA_TTL)
        )

    def leave(self) -> None:
        self._records.leave(self.replica.replica_id)
