"""The organisation's device public keys and member names, kept in the profile.

Opening a message needs its sender device's signing key (and a sealed sender key, that
device's box key). A device's public keys never change once activated and a member's
name is set at activation, so what was learnt once stays true: a pushed message from a
known device opens without asking the server, and only an unknown device (activated
since) makes the directory refresh. Revoked devices stay listed: their old messages
remain verifiable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bocage.client.profile import write_private
from bocage.client.results import MemberWithDevices, RosterDevice


@dataclass
class Directory:
    """Public keys by device id and display names by member id, saved at ``path``."""

    path: Path
    devices: dict[str, RosterDevice] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    _asked: set[str] = field(default_factory=set)  # ids still unknown after a refresh: asked once

    @classmethod
    def load(cls, path: Path) -> Directory:
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text())
        return cls(path, devices=dict(data.get("devices", {})), names=dict(data.get("names", {})))

    def save(self) -> None:
        data = json.dumps({"devices": self.devices, "names": self.names}, sort_keys=True)
        write_private(self.path, data.encode("utf-8"))

    def learn(self, members: list[MemberWithDevices]) -> None:
        """Take in the member list the server gave (every member, every device)."""
        for member in members:
            self.names[member["member_id"]] = member["display_name"]
            for d in member["devices"]:
                self.devices[d["device_id"]] = {
                    "device_id": d["device_id"],
                    "member_id": d["member_id"],
                    "sign_public_key": d["sign_public_key"],
                    "box_public_key": d["box_public_key"],
                }
        self.save()

    def device(self, device_id: str, fetch: Callable[[], list[MemberWithDevices]]) -> RosterDevice | None:
        """A device's public keys, asking the server (``fetch``) only when it is unknown."""
        self._refresh_for(device_id, device_id in self.devices, fetch)
        return self.devices.get(device_id)

    def name(self, member_id: str, fetch: Callable[[], list[MemberWithDevices]]) -> str:
        self._refresh_for(member_id, member_id in self.names, fetch)
        return self.names.get(member_id, "?")

    def _refresh_for(self, wanted: str, known: bool, fetch: Callable[[], list[MemberWithDevices]]) -> None:
        if known or wanted in self._asked:
            return
        self._asked.add(wanted)
        self.learn(fetch())
