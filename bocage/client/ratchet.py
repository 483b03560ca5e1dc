"""The sender-key ratchet and the key ring that keeps it (docs/protocol.md, section 6).

A sender key is a chain: ``chain_0`` is random, ``chain_{i+1} = HMAC-SHA256(chain_i, 0x02)`` and
message ``i`` is sealed under ``HMAC-SHA256(chain_i, 0x01)``. The chain only moves forward, so a
device given the state at index ``n`` (a member who joins, a newly linked device) derives no
key of a message before ``n``, and a device that has forgotten a message key cannot get it back.

The ring keeps, per (channel, epoch, sending device), the chain's frontier (the next index it
can derive) and the message keys it still needs: those of messages opened (or skipped over)
until the message's ``expires_at``, so history stays readable while the server stores it, and
never a chain state from which an expired message's key could be derived.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bocage.client.crypto import CryptoError
from bocage.client.profile import write_private
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.followers import DAY, dated_ahead, window_start

KEY_BYTES = 32
#: How far ahead of its frontier a receiver derives at once: out-of-order and missing messages
#: within this window still open; a message further ahead is refused with a clear error.
MAX_SKIP = 2000
#: A sender keeps the key of a message the server never confirmed (the send failed) this long.
UNCONFIRMED_TTL = 7 * 86400
#: How long a retired chain's tombstone stops the ring from re-opening its stored sealed key
#: (the server keeps sealed keys at most one retention, 5 years, after an epoch's last message).
TOMBSTONE_TTL = 5 * 366 * 86400
_MESSAGE_KEY = b"\x01"
_NEXT_CHAIN = b"\x02"

T = TypeVar("T")


class KeyUnavailable(CryptoError):
    """No key for this message: sent before this device joined, or forgotten once expired."""


class TooFarAhead(CryptoError):
    """The message's index is more than MAX_SKIP past what this device's chain reached."""


class ReplayedMessage(CryptoError):
    """This signed envelope (or one with its index or message id) was already shown."""


def new_chain_key() -> bytes:
    """A fresh chain for one (channel, epoch, sending device)."""
    return os.urandom(KEY_BYTES)


def message_key(chain_key: bytes) -> bytes:
    return hmac.digest(chain_key, _MESSAGE_KEY, hashlib.sha256)


def next_chain(chain_key: bytes) -> bytes:
    return hmac.digest(chain_key, _NEXT_CHAIN, hashlib.sha256)


def advance(chain_key: bytes, steps: int) -> bytes:
    """The chain ``steps`` indexes further on."""
    for _ in range(steps):
        chain_key = next_chain(chain_key)
    return chain_key


@dataclass
class Kept:
    """A message key the device still needs, and the message it opened (if it did)."""

    key: bytes
    expires_at: int
    seq: int | None = None
    message_id: str | None = None


@dataclass
class Chain:
    """One sender's chain as this device holds it: its frontier and the keys behind it it keeps.

    ``chain_key`` is None once the chain is retired: a tombstone that stops the ring from
    opening the same sealed key again (and so re-deriving keys it chose to forget).
    """

    chain_key: bytes | None
    index: int
    kept: dict[int, Kept] = field(default_factory=dict)
    retired_until: int | None = None


@dataclass
class Snapshot:
    """My chain as it was before my first message of a UTC day in a public tribe that opens
    recent history to new followers (docs/protocol.md, 23): what a new follower is sealed."""

    at: int
    index: int
    chain_key: bytes


@dataclass
class Window:
    """The verified "last N days" choice of a tribe: ``issued_at`` of the statement that set it
    (an older one served later is not believed), when this device last asked, and the device
    that signed it (checked again at each asking: a signer no longer a manager's usable device
    withdraws the choice)."""

    days: int
    issued_at: int
    checked_at: int
    by_device: str = ""


Slot = tuple[str, int, str]  # (channel, epoch, sender device); the sender is OWN for my own chains
OWN = ""


class SenderKeyRing:
    """Every chain a device holds: its own (one per channel and epoch) and those it received.

    Kept in the profile (mode 0600) so a restart neither loses keys nor redistributes them.
    """

    VERSION = 2

    def __init__(self) -> None:
        self._chains: dict[Slot, Chain] = {}
        self._distributed: dict[tuple[str, int], set[str]] = {}
        self._seen: dict[tuple[str, str], tuple[Slot, int]] = {}  # (channel, message id) -> where
        self._snapshots: dict[tuple[str, int], list[Snapshot]] = {}
        self._windows: dict[str, Window] = {}

    # -- my own chains ---------------------------------------------------------------------------

    def own_state(self, channel_id: str, epoch: int) -> tuple[bytes, int]:
        """My chain's current (chain key, index) for (channel, epoch), created on first use:
        what I seal to a device that joins now, which then reads from my next message on."""
        chain = self._chains.get((channel_id, epoch, OWN))
        if chain is None or chain.chain_key is None:
            chain = self._chains[(channel_id, epoch, OWN)] = Chain(new_chain_key(), 0)
        assert chain.chain_key is not None
        return chain.chain_key, chain.index

    def has_own(self, channel_id: str, epoch: int | None = None) -> bool:
        """Whether I send in this channel (in this epoch, or in any)."""
        return any(
            s == OWN and c == channel_id and epoch in (None, e) and chain.chain_key is not None
            for (c, e, s), chain in self._chains.items()
        )

    def next_key(self, channel_id: str, epoch: int, message_id: str, now: int) -> tuple[int, bytes]:
        """The (index, key) for my next message; the chain moves on and the key is kept to read
        my own message back (until the server confirms its expiry, at most UNCONFIRMED_TTL)."""
        chain_key, index = self.own_state(channel_id, epoch)
        self._snapshot(channel_id, epoch, chain_key, index, now)
        key = message_key(chain_key)
        chain = self._chains[(channel_id, epoch, OWN)]
        chain.kept[index] = Kept(key, now + UNCONFIRMED_TTL, None, message_id)
        chain.chain_key, chain.index = next_chain(chain_key), index + 1
        return index, key

    def confirm(self, channel_id: str, epoch: int, index: int, *, seq: int, expires_at: int) -> None:
        """The server stored my message at ``index``: keep its key exactly until it expires."""
        kept = self._chains.get((channel_id, epoch, OWN), Chain(None, 0)).kept.get(index)
        if kept is not None:
            kept.seq, kept.expires_at = seq, expires_at

    # -- recent history for new followers (docs/protocol.md, 23) -------------------------------

    def window(self, channel_id: str) -> Window | None:
        return self._windows.get(channel_id)

    def set_window(self, channel_id: str, days: int, issued_at: int, now: int, by_device: str = "") -> None:
        """Take a verified choice, unless it is older than the one kept (a replay); a kept one
        dated ahead of ``now`` (believed before devices refused those) is no newer than any."""
        kept = self._kept_window(channel_id, now)
        if kept is not None and issued_at < kept.issued_at:
            kept.checked_at = now
        else:
            self._windows[channel_id] = Window(days, issued_at, now, by_device)
        self._prune_snapshots(now)

    def withdraw_window(self, channel_id: str, now: int) -> None:
        """The kept choice's signer is no longer a manager: 0 days (its snapshots go), and
        still no older choice believed after it (unless it was dated ahead of ``now``)."""
        kept = self._kept_window(channel_id, now)
        self._windows[channel_id] = Window(0, kept.issued_at if kept else 0, now)
        self._prune_snapshots(now)

    def _kept_window(self, channel_id: str, now: int) -> Window | None:
        """The kept choice, unless it is dated further ahead of ``now`` than the skew (23)."""
        kept = self._windows.get(channel_id)
        return None if kept is None or dated_ahead(kept.issued_at, now) else kept

    def mark_checked(self, channel_id: str, now: int) -> None:
        """Asked, and no newer valid choice: keep the one kept (none, or one dated ahead of
        ``now``: read from joining)."""
        kept = self._kept_window(channel_id, now)
        if kept is None:
            self._windows[channel_id] = Window(0, 0, now)
        else:
            kept.checked_at = now
        self._prune_snapshots(now)

    def _snapshot(self, channel_id: str, epoch: int, chain_key: bytes, index: int, now: int) -> None:
        window = self._windows.get(channel_id)
        if window is None or window.days <= 0:
            return
        taken = self._snapshots.setdefault((channel_id, epoch), [])
        if not taken or taken[-1].at // DAY != now // DAY:
            taken.append(Snapshot(now, index, chain_key))

    def history_state(self, channel_id: str, epoch: int, now: int) -> tuple[bytes, int]:
        """What to seal to a new follower: my chain at my first message in the window (so the
        follower derives that message's key and every later one), within MAX_SKIP of my
        current index so that it can still reach my next message; else my current state."""
        chain_key, index = self.own_state(channel_id, epoch)
        window = self._windows.get(channel_id)
        if window is None or window.days <= 0:
            return chain_key, index
        self._prune_snapshots(now)  # a message may have expired since the last forget()
        start = window_start(now, window.days)
        for snap in self._snapshots.get((channel_id, epoch), []):
            if snap.at >= start and index - snap.index <= MAX_SKIP:
                return snap.chain_key, snap.index
        return chain_key, index

    def _prune_snapshots(self, now: int) -> None:
        """Keep a snapshot only inside its tribe's current window, only in a chain still held,
        and only while every key it derives is still kept (none of an expired message)."""
        for (channel_id, epoch), taken in list(self._snapshots.items()):
            window = self._windows.get(channel_id)
            chain = self._chains.get((channel_id, epoch, OWN))
            start = window_start(now, window.days if window else 0)
            kept = [
                s
                for s in taken
                if chain is not None
                and chain.chain_key is not None
                and s.at >= start
                and _derives_only_live_keys(chain, s.index, now)
            ]
            if kept:
                self._snapshots[(channel_id, epoch)] = kept
            else:
                del self._snapshots[(channel_id, epoch)]

    # -- received chains -------------------------------------------------------------------------

    def add_received(
        self, channel_id: str, epoch: int, sender_device: str, chain_key: bytes, index: int
    ) -> bool:
        """Take another device's chain; False (and ignored) if I hold or held that slot already.

        The first state wins: an earlier one would undo forgetting, a later one would only lose
        messages in between.
        """
        if len(chain_key) != KEY_BYTES:
            raise ValueError(f"a chain key is {KEY_BYTES} bytes")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ValueError("a chain index is a non-negative integer")
        slot = (channel_id, epoch, sender_device)
        if slot in self._chains or not sender_device:
            return False
        self._chains[slot] = Chain(chain_key, index)
        return True

    def holds(self, channel_id: str, epoch: int, sender_device: str) -> bool:
        """Whether the slot is known (held or retired): then its sealed key is not fetched again."""
        return (channel_id, epoch, sender_device) in self._chains

    def state(
        self, channel_id: str, epoch: int, sender_device: str | None
    ) -> tuple[bytes | None, int] | None:
        """The (chain key, index) held for a slot (None: my own); for tests and inspection."""
        chain = self._chains.get((channel_id, epoch, sender_device or OWN))
        return None if chain is None else (chain.chain_key, chain.index)

    # -- opening ---------------------------------------------------------------------------------

    def open_with(
        self,
        channel_id: str,
        epoch: int,
        sender_device: str | None,
        index: int,
        *,
        seq: int,
        message_id: str,
        expires_at: int,
        opener: Callable[[bytes], T],
    ) -> T:
        """Open message ``index`` of a chain (``sender_device`` None: mine) with ``opener``.

        The chain moves on, and keys are kept, only once ``opener`` succeeded (it verifies the
        signature and decrypts), so a message that does not open changes nothing. Raises
        KeyUnavailable, TooFarAhead or ReplayedMessage, or whatever ``opener`` raises.
        """
        slot = (channel_id, epoch, sender_device or OWN)
        chain = self._chains.get(slot)
        if chain is None:
            raise KeyUnavailable("no key from this sender for this epoch")
        kept = chain.kept.get(index)
        if kept is not None:
            result = opener(kept.key)
            self._check_replay(slot, index, seq, message_id)
            kept.seq, kept.message_id, kept.expires_at = seq, message_id, expires_at
            self._seen[(channel_id, message_id)] = (slot, index)
            return result
        if chain.chain_key is None or index < chain.index or sender_device is None:
            raise KeyUnavailable(
                "this message's key is not on this device: sent before it received the sender's key "
                "(before it joined), or forgotten once the message expired"
            )
        if index - chain.index > MAX_SKIP:
            raise TooFarAhead(
                f"message {index} is {index - chain.index} steps past this device's key for the sender "
                f"(at most {MAX_SKIP} messages can be missing)"
            )
        skipped: dict[int, Kept] = {}
        chain_key = chain.chain_key
        for i in range(chain.index, index):
            skipped[i] = Kept(message_key(chain_key), expires_at)  # sent before: expires no later
            chain_key = next_chain(chain_key)
        result = opener(message_key(chain_key))
        self._check_replay(slot, index, seq, message_id)
        chain.kept.update(skipped)
        chain.kept[index] = Kept(message_key(chain_key), expires_at, seq, message_id)
        chain.chain_key, chain.index = next_chain(chain_key), index + 1
        self._seen[(channel_id, message_id)] = (slot, index)
        return result

    def _check_replay(self, slot: Slot, index: int, seq: int, message_id: str) -> None:
        kept = self._chains[slot].kept.get(index)
        if kept is not None and kept.seq is not None and kept.seq != seq:
            raise ReplayedMessage(f"replayed: this message was already shown at seq {kept.seq}")
        if kept is not None and kept.message_id is not None and kept.message_id != message_id:
            raise ReplayedMessage("replayed: another message was already shown with this index")
        where = self._seen.get((slot[0], message_id))
        if where is not None and where != (slot, index):
            raise ReplayedMessage("replayed: a message with this id was already shown")

    # -- forgetting ------------------------------------------------------------------------------

    def forget(self, now: int, current_epochs: dict[str, int] | None = None) -> None:
        """Drop expired message keys; retire chains of past epochs that keep no key any more.

        ``current_epochs``: the epoch each channel is at, when known. A past epoch takes no new
        message, so once its kept keys are gone its frontier goes too (a tombstone stays so that
        its stored sealed key is not opened again).
        """
        current_epochs = current_epochs or {}
        for slot, chain in list(self._chains.items()):
            chain.kept = {i: k for i, k in chain.kept.items() if k.expires_at > now}
            if chain.retired_until is not None and chain.retired_until <= now:
                del self._chains[slot]
            elif chain.chain_key is not None and not chain.kept and slot[1] < current_epochs.get(slot[0], -1):
                chain.chain_key, chain.retired_until = None, now + TOMBSTONE_TTL
        self._prune_snapshots(now)
        self._reindex()

    def _reindex(self) -> None:
        """Where each message id was shown (or, mine, stored), from the keys kept."""
        self._seen = {
            (c, k.message_id): ((c, e, s), i)
            for (c, e, s), chain in self._chains.items()
            for i, k in chain.kept.items()
            if k.message_id is not None and k.seq is not None
        }

    # -- distribution ----------------------------------------------------------------------------

    def mark_distributed(self, channel_id: str, epoch: int, device_ids: list[str] | set[str]) -> None:
        self._distributed.setdefault((channel_id, epoch), set()).update(device_ids)

    def undistributed(self, channel_id: str, epoch: int, device_ids: list[str] | set[str]) -> list[str]:
        """Devices (in the given order, without duplicates) that still need my chain."""
        done = self._distributed.get((channel_id, epoch), set())
        return [d for d in dict.fromkeys(device_ids) if d not in done]

    # -- persistence -----------------------------------------------------------------------------

    def to_json(self) -> str:
        data = {
            "v": self.VERSION,
            "chains": [
                {
                    "channel_id": c,
                    "epoch": e,
                    "sender_device": s or None,
                    "chain_key": None if chain.chain_key is None else b64e(chain.chain_key),
                    "index": chain.index,
                    "retired_until": chain.retired_until,
                    "keys": [
                        {
                            "index": i,
                            "key": b64e(k.key),
                            "expires_at": k.expires_at,
                            "seq": k.seq,
                            "message_id": k.message_id,
                        }
                        for i, k in sorted(chain.kept.items())
                    ],
                }
                for (c, e, s), chain in sorted(self._chains.items())
            ],
            "distributed": [
                {"channel_id": c, "epoch": e, "devices": sorted(ds)}
                for (c, e), ds in sorted(self._distributed.items())
            ],
            "snapshots": [
                {"channel_id": c, "epoch": e, "at": s.at, "index": s.index, "chain_key": b64e(s.chain_key)}
                for (c, e), taken in sorted(self._snapshots.items())
                for s in taken
            ],
            "windows": [
                {
                    "channel_id": c,
                    "days": w.days,
                    "issued_at": w.issued_at,
                    "checked_at": w.checked_at,
                    "by_device": w.by_device,
                }
                for c, w in sorted(self._windows.items())
            ],
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SenderKeyRing:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != cls.VERSION:
            raise ValueError("not a sender key ring of version 2 (a version 1 ring predates the ratchet)")
        ring = cls()
        try:
            for item in data["chains"]:
                slot = (str(item["channel_id"]), int(item["epoch"]), str(item["sender_device"] or OWN))
                ring._chains[slot] = _chain(item)
            for item in data["distributed"]:
                ring.mark_distributed(
                    str(item["channel_id"]), int(item["epoch"]), [str(d) for d in item["devices"]]
                )
            for item in data.get("snapshots", []):
                snap = Snapshot(int(item["at"]), int(item["index"]), _key(item["chain_key"]))
                ring._snapshots.setdefault((str(item["channel_id"]), int(item["epoch"])), []).append(snap)
            for item in data.get("windows", []):
                window = Window(
                    int(item["days"]),
                    int(item["issued_at"]),
                    int(item["checked_at"]),
                    str(item.get("by_device") or ""),
                )
                ring._windows[str(item["channel_id"])] = window
        except (KeyError, TypeError) as exc:
            raise ValueError("malformed sender key ring") from exc
        ring._reindex()
        return ring

    def save(self, path: str | Path) -> None:
        write_private(Path(path), self.to_json().encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path) -> SenderKeyRing:
        """The ring at ``path``, or an empty one if there is none yet (a new device)."""
        p = Path(path)
        try:
            mode = os.stat(p).st_mode
        except FileNotFoundError:
            return cls()
        if mode & 0o077:
            raise PermissionError(f"{p} must not be readable by others (chmod 600)")
        return cls.from_json(p.read_text(encoding="utf-8"))


def _key(text: Any) -> bytes:
    key = b64d(text)
    if len(key) != KEY_BYTES:
        raise ValueError(f"a ring key is {KEY_BYTES} bytes")
    return key


def _chain(item: dict[str, Any]) -> Chain:
    kept = {
        int(k["index"]): Kept(
            _key(k["key"]),
            int(k["expires_at"]),
            None if k["seq"] is None else int(k["seq"]),
            None if k["message_id"] is None else str(k["message_id"]),
        )
        for k in item["keys"]
    }
    chain_key = None if item["chain_key"] is None else _key(item["chain_key"])
    retired = item.get("retired_until")
    return Chain(chain_key, int(item["index"]), kept, None if retired is None else int(retired))


def _derives_only_live_keys(chain: Chain, start: int, now: int) -> bool:
    """Every message key from ``start`` to the chain's frontier is still kept and unexpired: a
    state sealed from ``start`` lets its holder read nothing that has expired."""
    return all(i in chain.kept and chain.kept[i].expires_at > now for i in range(start, chain.index))
