"""The embedded store's files hold ciphertext and metadata: only their owner may read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.sqlite_store import SqliteStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_directory_and_every_database_file_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SqliteStore(str(data / "bocage.sqlite3"), SystemClock())
    store.put({"pk": "P", "sk": "S", "v": 1})  # a write opens the WAL and its index
    files = sorted(p.name for p in data.iterdir())
    assert files[0] == "bocage.sqlite3" and "bocage.sqlite3-wal" in files
    assert _mode(data) == 0o700
    assert {name: _mode(data / name) for name in files} == {name: 0o600 for name in files}
    store.close()


def test_a_file_left_world_readable_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "bocage.sqlite3"
    SqliteStore(str(path), SystemClock()).close()
    os.chmod(path, 0o644)
    store = SqliteStore(str(path), SystemClock())
    assert _mode(path) == 0o600
    assert store.get("P", "S") is None
    store.close()
