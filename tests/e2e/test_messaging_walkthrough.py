"""Messaging over real sockets: `bocage serve`, the CLI, WebSocket listeners on loopback."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bocage.client.crypto import CryptoError, open_message
from bocage.client.ratchet import SenderKeyRing, message_key, next_chain
from chalicelib.adapters.records.messages import message_fields
from chalicelib.adapters.sqlite_store import load_item
from tests.e2e.conftest import ROOT, Server, base_env, bocage, bocage_fails


class Listener:
    """`bocage listen` in the background, started and confirmed connected."""

    def __init__(self, profile: Path, count: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bocage",
                "--profile",
                str(profile),
                "listen",
                "--count",
                str(count),
                "--timeout",
                "30",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=base_env(),
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        assert line.strip() == "listening", line + self.process.stderr.read()

    def messages(self) -> list[dict[str, Any]]:
        out, err = self.process.communicate(timeout=40)
        assert self.process.returncode == 0, err
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_tribe_group_live_offline_and_removal(server: Server, tmp_path: Path) -> None:
    p = {name: tmp_path / name for name in ("owner", "alice", "bob_phone", "bob_laptop")}
    bocage("--profile", str(p["owner"]), "activate", server.owner_url(), "--name", "Maire")
    alice_inv = bocage("--profile", str(p["owner"]), "invite", "--name", "Alice")
    bob_inv = bocage("--profile", str(p["owner"]), "invite", "--name", "Bob")
    alice = bocage("--profile", str(p["alice"]), "activate", alice_inv["activation_url"], "--name", "Alice")
    bob = bocage("--profile", str(p["bob_phone"]), "activate", bob_inv["activation_url"], "--name", "Bob")
    link = bocage("--profile", str(p["bob_phone"]), "link-device")
    laptop = bocage("--profile", str(p["bob_laptop"]), "activate", link["activation_url"], "--name", "Bob")
    assert laptop["member_id"] == bob["member_id"] and laptop["device_id"] != bob["device_id"]

    tribe = bocage("--profile", str(p["owner"]), "tribe", "create", "Infos de la mairie")["channel_id"]
    for member in (alice["member_id"], bob["member_id"]):
        bocage("--profile", str(p["owner"]), "channel", "add", tribe, member)
    group = bocage("--profile", str(p["alice"]), "group", "create", "Conseil")["channel_id"]
    bocage("--profile", str(p["alice"]), "channel", "add", group, bob["member_id"])

    # Live: every online device of every member gets the author's message.
    listeners = {name: Listener(p[name], 1) for name in ("alice", "bob_phone", "bob_laptop")}
    tribe_text = "Coupure d'eau rue des Lilas mardi 9h"
    sent = bocage("--profile", str(p["owner"]), "send", tribe, tribe_text)
    assert sent["seq"] == 1 and sent["duplicate"] is False
    for name, listener in listeners.items():
        (got,) = listener.messages()
        assert (got["text"], got["verified"], got["sender_name"]) == (tribe_text, True, "Maire"), name

    # Members read but do not post in a tribe.
    assert bocage_fails("--profile", str(p["alice"]), "send", tribe, "hello")["status"] == 403

    # Offline: Bob's laptop was not listening; it catches up by cursor.
    group_text = "Réunion du conseil jeudi 18h"
    bocage("--profile", str(p["alice"]), "send", group, group_text)
    caught_up = bocage("--profile", str(p["bob_laptop"]), "read", group)
    assert [m["text"] for m in caught_up["messages"]] == [group_text]
    assert (
        bocage("--profile", str(p["bob_laptop"]), "read", group, "--since", str(caught_up["cursor"]))[
            "messages"
        ]
        == []
    )
    unread = {
        c["channel_id"]: c["unread"] for c in bocage("--profile", str(p["bob_phone"]), "channels")["channels"]
    }
    assert unread == {tribe: 1, group: 1}

    # Removal: Bob is refused, and what follows is sealed under keys he never gets.
    bocage("--profile", str(p["alice"]), "channel", "remove", group, bob["member_id"])
    secret_text = "Budget confidentiel 2027"
    bocage("--profile", str(p["alice"]), "send", group, secret_text)
    assert bocage_fails("--profile", str(p["bob_phone"]), "read", group)["status"] == 403

    db = sqlite3.connect(tmp_path / "data" / "bocage.sqlite3")
    rows = [
        message_fields(load_item(data)) | {"pk": pk, "sk": sk}
        for pk, sk, data in db.execute("select pk, sk, data from items where sk like 'MSG#%'")
    ]
    secret_row = next(r for r in rows if r["channel_id"] == group and r["epoch"] == 1)
    for device in ("bob_phone", "bob_laptop"):
        ring = SenderKeyRing.load(p[device] / "keyring.json")
        held = [ring.state(group, e, secret_row["sender_device"]) for e in range(3)]
        for state in [s for s in held if s is not None and s[0] is not None]:
            chain_key = state[0]
            assert chain_key is not None
            for _ in range(50):  # every key the old chain leads to
                try:
                    open_message(secret_row, message_key(chain_key), _sign_key(p["alice"]))
                except CryptoError:
                    chain_key = next_chain(chain_key)
                    continue
                raise AssertionError(f"{device} decrypted a message sent after its removal")

    server.process.terminate()
    server.process.wait(timeout=10)
    dump = "\n".join(str(row) for row in db.execute("select pk, sk, data from items"))
    log = server.output()
    for text in (tribe_text, group_text, secret_text):
        for form in (
            text,
            base64.b64encode(text.encode()).decode(),
            base64.urlsafe_b64encode(text.encode()).decode(),
        ):
            assert form not in dump and form not in log


def _sign_key(profile: Path) -> str:
    from bocage.client.profile import Profile

    return Profile(profile).keys().sign_public_key


def test_listen_times_out_quietly(server: Server, tmp_path: Path) -> None:
    bocage("--profile", str(tmp_path / "o"), "activate", server.owner_url(), "--name", "Maire")
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bocage",
            "--profile",
            str(tmp_path / "o"),
            "listen",
            "--timeout",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=base_env(),
        timeout=30,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == ""
    assert time.monotonic() - started < 15
