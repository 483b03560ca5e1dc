"""The Store on one SQLite file: the embedded default for one machine and pilots.

WAL lets readers run while one writer writes; every conditional write and increment
runs inside ``BEGIN IMMEDIATE``, which takes the file's write lock before reading, so
check-then-write is atomic across threads and across processes sharing the file.

Connections come from a small pool, borrowed for one operation and returned: ``bocage
serve`` runs a thread per HTTP connection, and a connection per thread kept two file
descriptors open for every thread ever seen. New files use incremental auto-vacuum, so
purging expired rows (every request leaves a nonce behind) gives the space back.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from chalicelib.adapters.store_items import (
    EXPIRES_AT,
    batch_ops,
    check_conditions,
    check_increment,
    check_item,
    check_key,
    make_page,
    matches,
    parse_query,
)
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Clock, Item, Page

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        data TEXT NOT NULL,
        expires_at INTEGER NULL,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS items_expires_at ON items (expires_at) WHERE expires_at IS NOT NULL",
)
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_UPSERT = "INSERT OR REPLACE INTO items (pk, sk, data, expires_at) VALUES (?, ?, ?, ?)"


def _dump(item: Mapping[str, Any]) -> str | bytes:
    """An item as its row's ``data``: JSON text, or, when it holds binary attributes, a BLOB.

    JSON has no bytes type and base64 would grow them by a third, so a binary attribute goes
    after the JSON: the BLOB is ``[attributes, [[name, length], ...]]`` as UTF-8 JSON, a NUL
    byte (JSON text never holds a raw one), then the values' bytes in that order.
    """
    binary = [(name, value) for name, value in item.items() if isinstance(value, bytes)]
    if not binary:
        return json.dumps(item, separators=(",", ":"), ensure_ascii=False)
    plain = {name: value for name, value in item.items() if not isinstance(value, bytes)}
    lengths = [[name, len(value)] for name, value in binary]
    head = json.dumps([plain, lengths], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b"".join([head, b"\0", *(value for _, value in binary)])


#: json.loads without its wrappers (a whitespace regex, an end check): every item read is decoded,
#: a channel's presence is ~50 per message, and this halves that. Safe on what ``_dump`` wrote.
_scan_object: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # typeshed omits it


def _scan(data: str) -> Any:
    try:
        return _scan_object(data, 0)[0]
    except StopIteration:  # the scanner's "no value here": never a stray StopIteration in a generator
        raise json.JSONDecodeError("a stored item is not JSON", data, 0) from None


def load_item(data: str | bytes) -> Item:
    """An item from its row's ``data``, as ``_dump`` wrote it, text or BLOB (public for the
    tests and tools that read the file's rows, expired ones included)."""
    if isinstance(data, str):
        item: Item = _scan(data)
        return item
    split = data.index(b"\0")
    plain, lengths = _scan(data[:split].decode("utf-8"))
    at = split + 1
    for name, length in lengths:
        plain[name] = bytes(data[at : at + length])
        at += length
    return dict(plain)


def _row(item: Mapping[str, Any]) -> tuple[str, str, str | bytes, int | None]:
    return item["pk"], item["sk"], _dump(item), item.get(EXPIRES_AT)


def _prefix_end(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix``.

    SQLite compares TEXT bytewise, and UTF-8 byte order is code point order, so
    ``prefix <= sk < _prefix_end(prefix)`` is an index range scan for a prefix match.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:  # surrogates cannot be stored: skip to the next encodable code point
            code = 0xE000
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


class SqliteStore:
    """A ``Store`` on one SQLite file, over a pool of at most ``pool_size`` connections."""

    POOL_SIZE = 8

    def __init__(
        self, path: str, clock: Clock, *, busy_timeout_ms: int = 10_000, pool_size: int = POOL_SIZE
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        _create_private(path)
        self._path = path
        self._clock = clock
        self._busy_timeout_ms = busy_timeout_ms
        self._pool_size = pool_size
        # One lock guards the pool: a borrow is one acquire when a connection is idle (every
        # store operation borrows, a send makes about a dozen). Borrowers beyond the bound wait.
        self._lock = threading.Condition(threading.Lock())
        self._idle: list[sqlite3.Connection] = []  # most recently used last (warm caches)
        self._open = 0  # connections in existence, idle or borrowed: at most pool_size
        self._generation = 0  # bumped by close(): connections borrowed before are not reused
        self._held = threading.local()  # the connection this thread borrowed, if any
        with self._transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions, we issue BEGIN IMMEDIATE ourselves.
        # check_same_thread=False: a pooled connection serves one thread at a time, any thread.
        conn = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            # Only takes effect on a new, empty file (before the first table); a no-op after.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is safe from corruption in WAL mode; a power cut may lose the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, back to the pool after; waits while all are out."""
        held: sqlite3.Connection | None = getattr(self._held, "conn", None)
        if held is not None:  # nested use in one thread: share, never wait on ourselves
            yield held
            return
        conn, generation = self._take()
        self._held.conn = conn
        try:
            yield conn
        finally:
            self._held.conn = None
            self._give_back(conn, generation)

    def _take(self) -> tuple[sqlite3.Connection, int]:
        with self._lock:
            while not self._idle and self._open >= self._pool_size:
                self._lock.wait()
            generation = self._generation
            if self._idle:
                return self._idle.pop(), generation
            self._open += 1  # a slot for the connection opened below
        try:
            return self._connect(), generation
        except BaseException:
            self._release_slot()
            raise

    def _release_slot(self) -> None:
        with self._lock:
            self._open -= 1
            self._lock.notify()

    def _give_back(self, conn: sqlite3.Connection, generation: int) -> None:
        try:
            if conn.in_transaction:  # only after a failure mid-transaction
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            conn.close()  # unusable: the next borrower opens a fresh one
            self._release_slot()
            return
        with self._lock:
            if generation == self._generation:
                self._idle.append(conn)
                self._lock.notify()
                return
        conn.close()  # borrowed before close(): do not revive the old pool
        self._release_slot()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the file's write lock from its first read."""
        with self._borrow() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the idle connections (borrowed ones close when returned); later calls reopen."""
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._lock.notify_all()
        for conn in idle:
            conn.close()

    # -- Store -------------------------------------------------------------------------

    def _get_live(self, conn: sqlite3.Connection, pk: str, sk: str, now: int) -> Item | None:
        row = conn.execute(
            "SELECT data FROM items WHERE pk = ? AND sk = ? AND (expires_at IS NULL OR expires_at > ?)",
            (pk, sk, now),
        ).fetchone()
        return None if row is None else load_item(row[0])

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        """One file, one writer: every read sees every committed write (``consistent`` is moot)."""
        check_key(pk, sk)
        with self._borrow() as conn:
            return self._get_live(conn, pk, sk, self._clock.now())

    def put(
        self,
        item: Item,
        *,
        if_absent: bool = False,
        if_match: Mapping[str, Any] | None = None,
    ) -> None:
        check_item(item)
        check_conditions(if_absent, if_match)
        if not if_absent and if_match is None:
            with self._borrow() as conn:
                conn.execute(_UPSERT, _row(item))
            return
        pk, sk = item["pk"], item["sk"]
        with self._transaction() as conn:
            current = self._get_live(conn, pk, sk, self._clock.now())
            if if_absent and current is not None:
                raise ConditionFailed(f"{pk}/{sk} already exists")
            if if_match is not None and (current is None or not matches(current, if_match)):
                raise ConditionFailed(f"{pk}/{sk} is missing or does not match")
            conn.execute(_UPSERT, _row(item))

    def delete(self, pk: str, sk: str) -> None:
        check_key(pk, sk)
        with self._borrow() as conn:
            conn.execute("DELETE FROM items WHERE pk = ? AND sk = ?", (pk, sk))

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
        key_range, after = parse_query(prefix, start, end, limit, cursor)
        if not isinstance(pk, str) or not pk:
            raise ValueError("pk must be a non-empty string")
        if key_range.is_empty():
            return make_page([], limit)
        clauses = ["pk = ?"]
        params: list[Any] = [pk]
        if key_range.prefix is not None:
            clauses.append("sk >= ?")
            params.append(key_range.prefix)
            upper = _prefix_end(key_range.prefix)
            if upper is not None:
                clauses.append("sk < ?")
                params.append(upper)
        if key_range.start is not None:
            clauses.append("sk >= ?")
            params.append(key_range.start)
        if key_range.end is not None:
            clauses.append("sk <= ?")
            params.append(key_range.end)
        if after is not None:
            clauses.append("sk < ?" if descending else "sk > ?")
            params.append(after)
        clauses.append(_LIVE)
        params.extend([self._clock.now(), limit + 1])
        order = "DESC" if descending else "ASC"
        with self._borrow() as conn:
            rows = conn.execute(
                f"SELECT data FROM items WHERE {' AND '.join(clauses)} ORDER BY sk {order} LIMIT ?",  # noqa: S608
                params,
            ).fetchall()
        return make_page([load_item(data) for (data,) in rows], limit)

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
        value: int = self._add(pk, sk, {attribute: amount, **(also or {})}, expires_at)[attribute]
        return value

    def increment_item(self, pk: str, sk: str, name: str, *, also: Mapping[str, int] | None = None) -> Item:
        return self._add(pk, sk, {name: 1, **(also or {})}, None)

    def _add(self, pk: str, sk: str, amounts: dict[str, int], expires_at: int | None) -> Item:
        """Add each amount to its attribute in one transaction; the item as written."""
        for name, amount_of in amounts.items():
            check_increment(pk, sk, name, amount_of, expires_at)
        with self._transaction() as conn:
            item = self._get_live(conn, pk, sk, self._clock.now()) or {"pk": pk, "sk": sk}
            for name, amount_of in amounts.items():
                current = item.get(name, 0)
                if not isinstance(current, int) or isinstance(current, bool):
                    raise ValueError(f"{pk}/{sk} {name} is not an integer")
                item[name] = current + amount_of
            if expires_at is not None:
                item[EXPIRES_AT] = expires_at
            check_item(item)
            conn.execute(_UPSERT, _row(item))
        return item

    def batch_write(self, puts: Iterable[Item] = (), deletes: Iterable[tuple[str, str]] = ()) -> None:
        ops = batch_ops(puts, deletes)
        with self._transaction() as conn:
            conn.executemany(_UPSERT, [_row(item) for _, _, item in ops if item is not None])
            conn.executemany(
                "DELETE FROM items WHERE pk = ? AND sk = ?",
                [(pk, sk) for pk, sk, item in ops if item is None],
            )

    # -- housekeeping ------------------------------------------------------------------

    def purge_expired(self, limit: int = 1000) -> int:
        """Delete up to ``limit`` expired rows (reads already hide them); return how many."""
        with self._borrow() as conn:
            cur = conn.execute(
                "DELETE FROM items WHERE (pk, sk) IN "
                "(SELECT pk, sk FROM items WHERE expires_at <= ? LIMIT ?)",
                (self._clock.now(), limit),
            )
            return cur.rowcount

    def vacuum(self) -> None:
        """Give free pages back to the file system: release them, then checkpoint the WAL.

        Free pages go only on a file created with incremental auto-vacuum (a no-op on older
        files); the checkpoint truncates the file and the WAL once no reader needs them.
        """
        with self._borrow() as conn:
            # One step frees one page, and execute() steps once: executescript() steps to the end.
            conn.executescript("PRAGMA incremental_vacuum")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def purge_all_expired(self, batch: int = 1000) -> int:
        """Purge in batches of ``batch`` rows (short write locks) until none are left, then
        vacuum if anything went; return how many rows were deleted. Run periodically."""
        total = 0
        while True:
            deleted = self.purge_expired(batch)
            total += deleted
            if deleted < batch:
                break
        if total:
            self.vacuum()
        return total


def _create_private(path: str) -> None:
    """Create the data directory (0700) and the database file (0600) readable by their owner only.

    SQLite gives the -wal and -shm files it creates the database file's permissions, so the
    ciphertext, keys' metadata and nonces never sit in world-readable files. An existing file
    left more open by an older version is tightened.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
