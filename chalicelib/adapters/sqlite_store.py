"""The Store on one SQLite file: the embedded default for one machine and pilots.

WAL lets readers run while one writer writes; every conditional write and increment
runs inside ``BEGIN IMMEDIATE``, which takes the file's write lock before reading, so
check-then-write is atomic across threads and across processes sharing the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
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


def _dump(item: Mapping[str, Any]) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def _row(item: Mapping[str, Any]) -> tuple[str, str, str, int | None]:
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
    """A ``Store`` on one SQLite file, one connection per thread."""

    def __init__(self, path: str, clock: Clock, *, busy_timeout_ms: int = 10_000) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._path = path
        self._clock = clock
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    # -- connections -------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection: sqlite3 connections must not be shared between threads."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: no implicit transactions, we issue BEGIN IMMEDIATE ourselves.
            # check_same_thread=False only so that close() may close every thread's connection.
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is safe from corruption in WAL mode; a power cut may lose the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the file's write lock from its first read."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close every thread's connection; a later call reopens one."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            conn.close()

    # -- Store -------------------------------------------------------------------------

    def _get_live(self, conn: sqlite3.Connection, pk: str, sk: str, now: int) -> Item | None:
        row = conn.execute(
            "SELECT data FROM items WHERE pk = ? AND sk = ? AND (expires_at IS NULL OR expires_at > ?)",
            (pk, sk, now),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def get(self, pk: str, sk: str) -> Item | None:
        check_key(pk, sk)
        return self._get_live(self._conn(), pk, sk, self._clock.now())

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
            self._conn().execute(_UPSERT, _row(item))
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
        self._conn().execute("DELETE FROM items WHERE pk = ? AND sk = ?", (pk, sk))

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
        rows = self._conn().execute(
            f"SELECT data FROM items WHERE {' AND '.join(clauses)} ORDER BY sk {order} LIMIT ?",  # noqa: S608
            params,
        )
        return make_page([dict(json.loads(data)) for (data,) in rows], limit)

    def increment(
        self, pk: str, sk: str, attribute: str, amount: int = 1, *, expires_at: int | None = None
    ) -> int:
        check_increment(pk, sk, attribute, amount, expires_at)
        with self._transaction() as conn:
            item = self._get_live(conn, pk, sk, self._clock.now()) or {"pk": pk, "sk": sk}
            current = item.get(attribute, 0)
            if not isinstance(current, int) or isinstance(current, bool):
                raise ValueError(f"{pk}/{sk} {attribute} is not an integer")
            item[attribute] = current + amount
            if expires_at is not None:
                item[EXPIRES_AT] = expires_at
            check_item(item)
            conn.execute(_UPSERT, _row(item))
        value: int = item[attribute]
        return value

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
        cur = self._conn().execute(
            "DELETE FROM items WHERE (pk, sk) IN (SELECT pk, sk FROM items WHERE expires_at <= ? LIMIT ?)",
            (self._clock.now(), limit),
        )
        return cur.rowcount
