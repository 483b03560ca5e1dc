"""Backing up and restoring the one-machine store: ``bocage backup`` and ``bocage restore``.

A backup is SQLite's online backup API run in one step: it copies the store as of one
moment inside a read transaction, which in WAL mode never blocks ``bocage serve``'s
writers (and is never restarted by them, as a step-by-step copy would be under load).
The copy is written beside its destination, checked, and renamed into place, so a
crash mid-backup leaves the previous backup whole. Every file is its owner's only (0600):
a backup holds what the store holds, ciphertext and key metadata.

A restore refuses a file that is not a Bocage store, and a data directory whose store
already holds items unless forced; it copies through the same API into the store file,
so a stale write-ahead log beside it is never replayed over the restored pages.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.sqlite_store import SqliteStore

STORE_FILE = "bocage.sqlite3"  # where wiring.build_store keeps the embedded store
_COLUMNS = ("pk", "sk", "data", "expires_at")
_BUSY_MS = 10_000


class BackupError(ValueError):
    """A backup or restore that cannot go ahead, with the reason a person can act on."""


def store_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / STORE_FILE


@contextlib.contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=_BUSY_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        yield conn
    finally:
        conn.close()


def check_store(path: Path) -> int:
    """The number of items in a Bocage store file; BackupError if it is not one, or damaged."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    try:
        with _open(path) as conn:
            columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(items)"))
            if columns != _COLUMNS:
                raise BackupError(
                    f"{path} is not a Bocage store (no items table of pk, sk, data, expires_at)"
                )
            (verdict,) = conn.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise BackupError(f"{path} is damaged: {verdict}")
            (count,) = conn.execute("SELECT count(*) FROM items").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a Bocage store: {exc}") from None
    return int(count)


def _private_file(path: Path) -> None:
    """Create ``path`` empty and readable by its owner only, replacing any leftover."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


@contextlib.contextmanager
def _sqlite_errors(doing: str) -> Iterator[None]:
    """SQLite's own failures (a lock held past the timeout, a full disk) as a BackupError."""
    try:
        yield
    except sqlite3.Error as exc:
        raise BackupError(f"{doing} failed: {exc}") from exc


def backup(data_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Copy the store in ``data_dir`` to ``out`` as of one moment, while it may be serving."""
    with _sqlite_errors("the backup"):
        return _backup(store_path(data_dir), Path(out))


def restore(
    file: str | os.PathLike[str], data_dir: str | os.PathLike[str], *, force: bool = False
) -> dict[str, Any]:
    """Put a backup in place as the store of ``data_dir`` (stop ``bocage serve`` first)."""
    with _sqlite_errors("the restore"):
        return _restore(Path(file), data_dir, force=force)


def _backup(source: Path, target: Path) -> dict[str, Any]:
    check_store(source)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    _private_file(partial)
    try:
        with _open(source) as src, _open(partial) as dst:
            src.backup(dst)  # pages=-1: one step, one snapshot, writers go on meanwhile
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        items = check_store(partial)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return {"backup": str(target), "items": items, "bytes": target.stat().st_size}


def _refuse_to_overwrite(target: Path) -> None:
    """A store with items (or a file that is no store) is never replaced without ``--force``."""
    if target.exists() and target.stat().st_size and check_store(target):
        raise BackupError(f"{target} already holds a store with items; pass --force to replace it")


def _restore(source: Path, data_dir: str | os.PathLike[str], *, force: bool) -> dict[str, Any]:
    target = store_path(data_dir)
    items = check_store(source)
    if not force:
        _refuse_to_overwrite(target)
    SqliteStore(str(target), SystemClock()).close()  # the directory 0700, the file 0600, WAL mode
    with _open(source) as src, _open(target) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = WAL")
    restored = check_store(target)
    if restored != items:
        raise BackupError(f"restored {restored} items of {items}; the store in {data_dir} is incomplete")
    return {"restored": str(source), "data": str(data_dir), "items": restored}
