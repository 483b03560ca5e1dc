"""Fault injection for tests: a Store and a Push that fail, time out or hang on chosen calls.

A ``FaultyStore`` wraps a real store and answers every call through it, except the calls a
test picked: "the 3rd put", "every increment on CHAN#c_1/STATE", "the 5th write of any
kind". Store faults are what the adapters really raise: DynamoDB's throttling errors as
botocore's ``ClientError`` once the SDK's own retries gave up, a read timeout, SQLite's
"database is locked", or a lost conditional write (``ConditionFailed``).

A ``FaultyPush`` wraps a push and makes chosen connections fail or hang (a hang is bounded
by ``hang_seconds``, as the real adapters' timeouts bound theirs), so tests can show that
one bad connection neither loses a message nor holds up the others.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

from chalicelib.errors import ConditionFailed
from chalicelib.ports import Item, Page, Push, Store

WRITES = frozenset({"put", "delete", "increment", "batch_write"})

# -- the errors a store really raises -------------------------------------------------------------


def _client_error(code: str, message: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutItem")


def throughput_exceeded() -> Exception:
    """DynamoDB over a table's provisioned capacity, after boto3's retries gave up."""
    return _client_error(
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    )


def throttling() -> Exception:
    """DynamoDB throttling the control plane or an on-demand table's sudden burst."""
    return _client_error("ThrottlingException", "Rate of requests exceeds the allowed throughput.")


def read_timeout() -> Exception:
    """The HTTPS call to DynamoDB sent, never answered: the write may or may not have landed."""
    return ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-3.amazonaws.com/")


def database_locked() -> Exception:
    """SQLite's answer once another writer held the file past the busy timeout."""
    return sqlite3.OperationalError("database is locked")


def condition_failed() -> Exception:
    """A conditional write that lost (as both adapters translate it)."""
    return ConditionFailed("injected: condition not met")


#: Every kind of store fault, by name, for tests that sweep them all.
STORE_FAULTS: dict[str, Callable[[], Exception]] = {
    "throughput_exceeded": throughput_exceeded,
    "throttling": throttling,
    "read_timeout": read_timeout,
    "database_locked": database_locked,
}

# -- the store ---------------------------------------------------------------------------------


@dataclass
class StoreFault:
    """Which calls fail: an operation (or "write"/"read"/"any"), optionally one key, and which
    matching call (``nth``, 1-based, counted from when the fault was set; None: every one).

    ``after``: the call goes through to the inner store first and fails only then, as a
    timeout that hides a write which did land.
    """

    op: str
    error: Callable[[], Exception]
    nth: int | None = None
    key: tuple[str, str] | None = None
    after: bool = False
    seen: int = 0
    fired: int = 0

    def matches(self, op: str, keys: Iterable[tuple[str, str]]) -> bool:
        kind = "write" if op in WRITES else "read"
        return self.op in (op, kind, "any") and (self.key is None or self.key in keys)

    def strikes(self) -> bool:
        """Count a matching call; True when this one is to fail."""
        self.seen += 1
        hit = self.nth is None or self.seen == self.nth
        self.fired += hit
        return hit


class FaultyStore:
    """A Store that delegates to ``inner`` and fails the calls the test chose.

    It also logs every call (operation and keys), so a test can enumerate the steps of a
    use case and then fail each one in turn.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.faults: list[StoreFault] = []
        self.calls: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def fail(
        self,
        op: str,
        *,
        error: Callable[[], Exception] = throughput_exceeded,
        nth: int | None = None,
        key: tuple[str, str] | None = None,
        after: bool = False,
    ) -> StoreFault:
        fault = StoreFault(op, error, nth, key, after)
        with self._lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        """No more faults; the call log restarts."""
        with self._lock:
            self.faults.clear()
            self.calls.clear()

    def writes(self) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        return [call for call in self.calls if call[0] in WRITES]

    def _call(self, op: str, keys: tuple[tuple[str, str], ...], run: Callable[[], Any]) -> Any:
        with self._lock:
            self.calls.append((op, keys))
            self.counts[op] += 1
            struck = [f for f in self.faults if f.matches(op, keys) and f.strikes()]
        if not struck:
            return run()
        if struck[0].after:
            run()
        raise struck[0].error()

    # -- Store --------------------------------------------------------------------------------

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        result: Item | None = self._call(
            "get", ((pk, sk),), lambda: self.inner.get(pk, sk, consistent=consistent)
        )
        return result

    def put(self, item: Item, *, if_absent: bool = False, if_match: Mapping[str, Any] | None = None) -> None:
        key = ((str(item["pk"]), str(item["sk"])),)
        self._call("put", key, lambda: self.inner.put(item, if_absent=if_absent, if_match=if_match))

    def delete(self, pk: str, sk: str) -> None:
        self._call("delete", ((pk, sk),), lambda: self.inner.delete(pk, sk))

    def query(
        self,
        pk: str,
        *,
        prefix: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        descending: bool = False,
        consistent: bool = True,
    ) -> Page:
        def run() -> Page:
            return self.inner.query(
                pk,
                prefix=prefix,
                start=start,
                end=end,
                limit=limit,
                cursor=cursor,
                descending=descending,
                consistent=consistent,
            )

        page: Page = self._call("query", ((pk, prefix or ""),), run)
        return page

    def increment(
        self,
        pk: str,
        sk: str,
        attribute: str,
        amount: int = 1,
        *,
        expires_at: int | None = None,
        also: Mapping[str, int] | None = None,
    ) -> int:
        def run() -> int:
            return self.inner.increment(pk, sk, attribute, amount, expires_at=expires_at, also=also)

        value: int = self._call("increment", ((pk, sk),), run)
        return value

    def increment_item(self, pk: str, sk: str, name: str, *, also: Mapping[str, int] | None = None) -> Item:
        item: Item = self._call(
            "increment", ((pk, sk),), lambda: self.inner.increment_item(pk, sk, name, also=also)
        )
        return item

    def batch_write(self, puts: Iterable[Item] = (), deletes: Iterable[tuple[str, str]] = ()) -> None:
        puts, deletes = list(puts), list(deletes)
        keys = tuple((str(i["pk"]), str(i["sk"])) for i in puts) + tuple(deletes)
        self._call("batch_write", keys, lambda: self.inner.batch_write(puts, deletes))


# -- the push ----------------------------------------------------------------------------------


@dataclass
class FaultyPush:
    """A Push over ``inner`` where chosen connections raise or hang.

    A hung connection blocks its caller until ``release()`` or ``hang_seconds`` and then
    raises ``TimeoutError``, as the in-process push does after its send timeout.
    """

    inner: Push
    hang_seconds: float = 2.0
    failing: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)
    attempts: Counter[str] = field(default_factory=Counter)
    _released: threading.Event = field(default_factory=threading.Event)

    def fail(
        self, connection_id: str, error: Callable[[], Exception] = lambda: ConnectionError("push failed")
    ) -> None:
        self.failing[connection_id] = error

    def hang(self, connection_id: str) -> None:
        self.hanging.add(connection_id)

    def release(self) -> None:
        self._released.set()

    def send(self, connection_id: str, data: bytes) -> None:
        self.attempts[connection_id] += 1
        if connection_id in self.failing:
            raise self.failing[connection_id]()
        if connection_id in self.hanging:
            started = time.monotonic()
            self._released.wait(self.hang_seconds)
            raise TimeoutError(f"push to {connection_id} hung {time.monotonic() - started:.1f} s")
        self.inner.send(connection_id, data)

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        self.inner.close(connection_id, code, reason)
