"""End-to-end encrypted messaging for one device: the SDK scripts and the CLI use.

Everything secret happens here, on the device: sender keys are made, sealed to
each recipient device and kept in the profile's key ring; messages are sealed
and signed before they leave and verified before they are shown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bocage.client.api import ApiError, BocageClient
from bocage.client.crypto import (
    CryptoError,
    ForgedMessage,
    SenderKeyRing,
    new_message_id,
    open_message,
    open_sender_key,
    seal_message,
    seal_sender_key,
)
from bocage.client.polls import new_poll, tally
from bocage.client.profile import DeviceKeys, Profile, sign_token

KEYS_PER_CALL = 500
CONNECT_PATH = "$connect"


@dataclass
class Directory:
    """Public keys of the organisation's devices (revoked ones too: old messages stay verifiable)."""

    devices: dict[str, dict[str, Any]]
    names: dict[str, str]


class Messenger:
    def __init__(
        self, profile: Profile, client: BocageClient | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.profile = profile
        self.clock = clock
        self.info = profile.info()
        self.keys: DeviceKeys = profile.keys()
        self.client = client or BocageClient(self.info["server"], device=self.keys)
        self.ring_path = profile.dir / "keyring.json"
        self.ring = SenderKeyRing.load(self.ring_path)
        self._directory: Directory | None = None

    @property
    def device_id(self) -> str:
        return self.keys.device_id

    def save(self) -> None:
        self.ring.save(self.ring_path)

    # -- channels ------------------------------------------------------------------------------

    def create_channel(self, kind: str, name: str) -> dict[str, Any]:
        return self.client.request("POST", "/channels", {"kind": kind, "name": name})

    def channels(self) -> list[dict[str, Any]]:
        channels: list[dict[str, Any]] = self.client.request("GET", "/channels")["channels"]
        return channels

    def add_member(self, channel_id: str, member_id: str, role: str = "member") -> dict[str, Any]:
        return self.client.request("PUT", f"/channels/{channel_id}/members/{member_id}", {"role": role})

    def remove_member(self, channel_id: str, member_id: str) -> dict[str, Any]:
        return self.client.request("DELETE", f"/channels/{channel_id}/members/{member_id}")

    # -- sending ---------------------------------------------------------------------------------

    def send(
        self, channel_id: str, content: dict[str, Any], *, kind: str = "message", target: str | None = None
    ) -> dict[str, Any]:
        """Seal, sign and send; distribute this device's key first where it is missing."""
        message_id = new_message_id()
        for attempt in range(2):
            epoch = self.distribute_key(channel_id)
            envelope = seal_message(
                self.keys,
                self.ring.own_key(channel_id, epoch),
                channel_id=channel_id,
                epoch=epoch,
                message_id=message_id,
                content=content,
                kind=kind,
                target=target,
                sent_at_ms=int(time.time() * 1000),
            )
            try:
                result = self.client.request(
                    "POST", f"/channels/{channel_id}/messages", envelope.model_dump(mode="json")
                )
            except ApiError as err:
                if err.code == "stale_epoch" and attempt == 0:
                    continue  # someone left meanwhile: re-key and resend once
                raise
            finally:
                self.save()
            return result
        raise AssertionError("unreachable")

    def send_text(self, channel_id: str, text: str, *, reply_to: str | None = None) -> dict[str, Any]:
        content: dict[str, Any] = {"type": "text", "text": text}
        if reply_to:
            content["reply_to"] = reply_to
        return self.send(channel_id, content)

    def react(self, channel_id: str, message_id: str, emoji: str, *, remove: bool = False) -> dict[str, Any]:
        content = {"type": "reaction", "target": message_id, "emoji": emoji, "remove": remove}
        return self.send(channel_id, content, kind="reaction")

    def delete(self, channel_id: str, message_id: str) -> dict[str, Any]:
        """Delete for everyone: the server removes the ciphertext; clients hide the message."""
        return self.send(
            channel_id, {"type": "delete", "target": message_id}, kind="delete", target=message_id
        )

    def create_poll(
        self,
        channel_id: str,
        question: str,
        options: list[str],
        *,
        multiple: bool = False,
        closes_at: int | None = None,
    ) -> dict[str, Any]:
        poll = new_poll(question, options, multiple=multiple, closes_at=closes_at)
        result = self.send(channel_id, poll, kind="poll")
        return {**result, "poll_id": result["message_id"]}

    def vote(self, channel_id: str, poll_id: str, choices: list[int]) -> dict[str, Any]:
        return self.send(channel_id, {"type": "vote", "poll_id": poll_id, "choices": choices}, kind="vote")

    def close_poll(self, channel_id: str, poll_id: str) -> dict[str, Any]:
        return self.send(channel_id, {"type": "close", "poll_id": poll_id}, kind="poll_close", target=poll_id)

    def poll_results(self, channel_id: str, poll_id: str) -> dict[str, Any]:
        """Tallied here, on the device: the server never sees a question, an option or a vote."""
        members = {d["member_id"] for d in self._roster(channel_id)["devices"]}
        return tally(self.history(channel_id), poll_id, members, now=self.clock())

    def history(self, channel_id: str) -> list[dict[str, Any]]:
        """Every readable message of the channel, opened, oldest first."""
        opened: list[dict[str, Any]] = []
        cursor = 0
        while True:
            page = self.read(channel_id, since=cursor, limit=200)
            opened += page["messages"]
            if page["cursor"] == cursor or not page["more"]:
                return opened
            cursor = page["cursor"]

    def distribute_key(self, channel_id: str, roster: dict[str, Any] | None = None) -> int:
        """Seal my key for the current epoch to every roster device that lacks it; return the epoch."""
        roster = roster or self._roster(channel_id)
        epoch = int(roster["epoch"])
        targets = {d["device_id"]: d for d in roster["devices"] if d["device_id"] != self.device_id}
        missing = self.ring.undistributed(channel_id, epoch, list(targets))
        if missing:
            key = self.ring.own_key(channel_id, epoch)
            sealed = [
                seal_sender_key(self.keys, d, targets[d]["box_public_key"], channel_id, epoch, key)
                for d in missing
            ]
            for i in range(0, len(sealed), KEYS_PER_CALL):
                self.client.request(
                    "PUT",
                    f"/channels/{channel_id}/keys",
                    {"epoch": epoch, "keys": sealed[i : i + KEYS_PER_CALL]},
                )
            self.ring.mark_distributed(channel_id, epoch, missing)
        self.ring.own_key(channel_id, epoch)
        self.save()
        return epoch

    def _roster(self, channel_id: str) -> dict[str, Any]:
        devices: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.client.request(
                "GET", f"/channels/{channel_id}/roster", query={"cursor": cursor} if cursor else None
            )
            devices.extend(page["devices"])
            cursor = page.get("cursor")
            if not cursor:
                return {**page, "devices": devices}

    # -- reading -------------------------------------------------------------------------------

    def share_keys(self, channel_id: str) -> None:
        """If I send in this channel, give my current key to devices that joined since (multi-device).

        Cheap for readers who never sent: they hold no key of their own and ask nothing.
        """
        if not self.ring.has_own(channel_id):
            return
        roster = self._roster(channel_id)
        if self.ring.has_own(channel_id, int(roster["epoch"])):
            self.distribute_key(channel_id, roster)

    def read(self, channel_id: str, since: int = 0, limit: int = 100) -> dict[str, Any]:
        self.share_keys(channel_id)
        page = self.client.request(
            "GET", f"/channels/{channel_id}/messages", query={"since": str(since), "limit": str(limit)}
        )
        messages = [self.open(m) for m in page["messages"]]
        self.save()
        return {
            "channel_id": channel_id,
            "messages": messages,
            "cursor": page["cursor"],
            "more": page["more"],
        }

    def open(self, message: dict[str, Any]) -> dict[str, Any]:
        """Verify then decrypt one stored message; forged or unreadable ones are flagged, not shown."""
        channel_id, epoch, sender = message["channel_id"], int(message["epoch"]), message["sender_device"]
        shown: dict[str, Any] = {
            "message_id": message["message_id"],
            "channel_id": channel_id,
            "seq": message["seq"],
            "kind": message["kind"],
            "sender_member": message["sender_member"],
            "sender_device": sender,
            "sender_name": self.directory().names.get(message["sender_member"], "?"),
            "sent_at_ms": message["sent_at"],
            "stored_at": message["stored_at"],
            "expires_at": message["expires_at"],
            "verified": False,
        }
        if message.get("deleted"):
            return {**shown, "deleted": True, "error": "deleted for everyone"}
        device = self._device(sender)
        key = self._sender_key(channel_id, epoch, sender)
        if device is None or key is None:
            return {**shown, "error": "no key for this message (sent before you joined, or after you left)"}
        try:
            content = open_message(message, key, device["sign_public_key"])
        except ForgedMessage:
            return {**shown, "error": "forged or tampered message: signature does not verify"}
        except CryptoError:
            return {**shown, "error": "could not decrypt this message"}
        shown = {**shown, "verified": True, "content": content, "text": content.get("text")}
        if content.get("reply_to"):
            shown["reply_to"] = content["reply_to"]
        return shown

    def _sender_key(self, channel_id: str, epoch: int, sender: str) -> bytes | None:
        if sender == self.device_id:
            return self.ring.own_key(channel_id, epoch)
        key = self.ring.received(channel_id, epoch, sender)
        if key is not None:
            return key
        try:
            sealed = self.client.request("GET", f"/channels/{channel_id}/keys", query={"epoch": str(epoch)})[
                "keys"
            ]
        except ApiError:
            return None
        for entry in sealed:
            device = self._device(entry["sender_device"])
            if device is None:
                continue
            try:
                opened = open_sender_key(self.keys, entry, device["box_public_key"], channel_id)
            except CryptoError:
                continue  # a bad envelope is ignored, never trusted
            self.ring.add_received(channel_id, epoch, entry["sender_device"], opened)
        return self.ring.received(channel_id, epoch, sender)

    def directory(self, *, refresh: bool = False) -> Directory:
        if self._directory is None or refresh:
            members = self.client.members()
            self._directory = Directory(
                devices={d["device_id"]: d for m in members for d in m["devices"]},
                names={m["member_id"]: m["display_name"] for m in members},
            )
        return self._directory

    def _device(self, device_id: str) -> dict[str, Any] | None:
        device = self.directory().devices.get(device_id)
        if device is None:  # a device activated since we last looked
            device = self.directory(refresh=True).devices.get(device_id)
        return device

    # -- live ------------------------------------------------------------------------------------

    def ws_url(self) -> str:
        url = self.client.request("GET", "/health").get("ws_url")
        if not url:
            raise ApiError(503, "no_websocket", "this server offers no WebSocket endpoint")
        return str(url)

    def listen(
        self,
        *,
        count: int | None = None,
        timeout: float | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Decrypted messages as they arrive, until ``count`` messages or ``timeout`` seconds.

        ``on_ready`` is called once the socket is open, so a caller knows it will miss nothing.
        """
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        token = sign_token(
            self.keys.signing, self.device_id, "GET", CONNECT_PATH, None, b"", now=int(time.time())
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = 0
        with connect(f"{self.ws_url()}?token={quote(token)}", open_timeout=10) as ws:
            if on_ready is not None:
                on_ready()
            while count is None or seen < count:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    raw = ws.recv(timeout=remaining)
                except TimeoutError:
                    return
                except ConnectionClosed:
                    return
                frame = json.loads(raw)
                if frame.get("type") in {"joined", "device"} and frame.get("channel_id"):
                    self.share_keys(frame["channel_id"])  # a new device may be waiting for my key
                if frame.get("type") == "message":
                    seen += 1
                    opened = self.open(frame["message"])
                    self.save()
                    yield opened
