"""A confirmed message survives: `kill -9` of `bocage serve` under load, and backup and restore
while it serves. Real processes on loopback, a real client sending in a loop."""

from __future__ import annotations

import random
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bocage.client.api import BocageClient
from bocage.client.crypto import new_message_id
from bocage.client.messenger import Messenger
from bocage.client.profile import Profile
from tests.e2e.conftest import SQLITE_ONLY, Server, bocage, bocage_fails, start_server

SQLITE_ONLY.update(
    {
        "test_kill_9_under_load_loses_no_confirmed_message": "kills the process that holds the SQLite file",
        "test_backup_while_serving_then_restore_reads_back_every_message": "backs up the SQLite file",
    }
)
MAX_MESSAGES = 400  # bounds the load loop whatever happens


def messenger_on(server: Server, profile_dir: Path) -> Messenger:
    """The profile's device, talking to this server (its port changes with each start)."""
    profile = Profile(profile_dir)
    return Messenger(profile, client=BocageClient(server.url, device=profile.keys()))


@dataclass
class Load:
    """One client sending numbered messages in a loop until stopped or cut off.

    ``acked`` holds (message id, text) of every send the server confirmed, in order;
    ``in_flight`` the one envelope whose answer never came (the server died under it).
    """

    messenger: Messenger
    channel_id: str
    acked: list[tuple[str, str]] = field(default_factory=list)
    in_flight: Any = None
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for i in range(MAX_MESSAGES):
            if self.stop.is_set():
                return
            text = f"message {i}"
            try:  # sealing may ask the server for the channel's roster, sending always does
                self.in_flight = self.messenger.seal(
                    self.channel_id, new_message_id(), {"type": "text", "text": text}, "message", None
                )
                receipt = self.messenger.client.send_message(self.in_flight)
            except Exception as exc:  # the server is gone: this one may or may not be stored
                self.error = exc
                return
            assert receipt["message_id"] == self.in_flight.message_id and not receipt["duplicate"]
            self.acked.append((self.in_flight.message_id, text))
            self.in_flight = None

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert time.monotonic() < deadline and self.thread.is_alive(), (len(self.acked), self.error)
            time.sleep(0.005)


def read_all(messenger: Messenger, channel_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = messenger.read(channel_id, since=cursor, limit=200)
        messages += page["messages"]
        if not page["more"]:
            return messages
        cursor = page["cursor"]


def group_with_owner(server: Server, profile_dir: Path) -> str:
    bocage("--profile", str(profile_dir), "activate", server.owner_url(), "--name", "Maire")
    return str(bocage("--profile", str(profile_dir), "group", "create", "Conseil")["channel_id"])


def stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(timeout=10)


def test_kill_9_under_load_loses_no_confirmed_message(tmp_path: Path) -> None:
    data, owner = tmp_path / "data", tmp_path / "owner"
    server = start_server(data, tmp_path / "serve-1.log")
    try:
        channel_id = group_with_owner(server, owner)
        load = Load(messenger_on(server, owner), channel_id)
        load.thread.start()
        load.wait_for(random.randint(20, 120))  # a random moment in the middle of the load
        server.process.kill()  # SIGKILL: no handler runs, no connection is closed
        server.process.wait(timeout=10)
        load.thread.join(timeout=30)
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert load.error is not None, "the load finished before the kill"
    unconfirmed = load.in_flight.message_id if load.in_flight is not None else None

    again = start_server(data, tmp_path / "serve-2.log")
    try:
        assert "Activation URL" not in again.banner  # the same store, not a fresh one
        messages = read_all(messenger_on(again, owner), load.channel_id)
        copies = {
            m["message_id"]: sum(1 for n in messages if n["message_id"] == m["message_id"]) for m in messages
        }
        assert set(copies.values()) == {1}
        confirmed = [(m["message_id"], m["text"]) for m in messages if m["message_id"] != unconfirmed]
        assert confirmed == load.acked  # every confirmed message, once, in order, nothing else
        assert all(m["verified"] for m in messages)
        # The server takes new messages on the recovered store (numbers after the old ones).
        receipt = messenger_on(again, owner).send_text(load.channel_id, "after the crash")
        assert receipt["seq"] > len(load.acked)
    finally:
        stop(again)


def test_backup_while_serving_then_restore_reads_back_every_message(tmp_path: Path) -> None:
    data, owner, backup_file = tmp_path / "data", tmp_path / "owner", tmp_path / "backups" / "bocage.backup"
    server = start_server(data, tmp_path / "serve-1.log")
    try:
        channel_id = group_with_owner(server, owner)
        load = Load(messenger_on(server, owner), channel_id)
        load.thread.start()
        load.wait_for(30)
        before = len(load.acked)
        made = bocage("backup", "--data", str(data), "--out", str(backup_file))
        load.wait_for(before + 10)  # still serving and writing after the backup
        load.stop.set()
        load.thread.join(timeout=30)
    finally:
        stop(server)
    assert load.error is None
    assert stat.S_IMODE(backup_file.stat().st_mode) == 0o600
    assert made["items"] > 0 and made["backup"] == str(backup_file)
    with sqlite3.connect(backup_file) as db:  # one self-contained file
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)

    # Restore refuses to overwrite a store that holds items, and files that are no store.
    refused = bocage_fails("restore", str(backup_file), "--data", str(data))
    assert "--force" in refused["message"]
    (tmp_path / "notes.txt").write_text("not a store")
    assert (
        "not a Bocage store"
        in bocage_fails("restore", str(tmp_path / "notes.txt"), "--data", str(tmp_path / "x"))["message"]
    )

    restored_dir = tmp_path / "restored"
    restored = bocage("restore", str(backup_file), "--data", str(restored_dir))
    assert restored["items"] == made["items"]
    assert stat.S_IMODE(restored_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((restored_dir / "bocage.sqlite3").stat().st_mode) == 0o600

    again = start_server(restored_dir, tmp_path / "serve-2.log")
    try:
        assert "Activation URL" not in again.banner
        messages = read_all(messenger_on(again, owner), load.channel_id)
        in_backup = [(m["message_id"], m["text"]) for m in messages]
        # The backup's moment: everything confirmed before it began, then a prefix of the rest.
        assert before <= len(in_backup) <= len(load.acked)
        assert in_backup == load.acked[: len(in_backup)]
        assert all(m["verified"] for m in messages)
    finally:
        stop(again)
    forced = bocage("restore", str(backup_file), "--data", str(data), "--force")
    assert forced["items"] == made["items"]


def test_restore_checks_the_file_before_touching_the_data_directory(tmp_path: Path) -> None:
    target = tmp_path / "data"
    missing = bocage_fails("restore", str(tmp_path / "nowhere.backup"), "--data", str(target))
    assert "does not exist" in missing["message"] and not target.exists()
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    assert "not a Bocage store" in bocage_fails("restore", str(other), "--data", str(target))["message"]
    assert not target.exists()
