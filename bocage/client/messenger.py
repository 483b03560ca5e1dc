"""End-to-end encrypted messaging for one device: the SDK scripts and the CLI use.

Everything secret happens here, on the device: sender keys are made, sealed to
each recipient device and kept in the profile's key ring; messages are sealed
and signed before they leave and verified before they are shown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any, TypeGuard
from urllib.parse import quote

from websockets.exceptions import WebSocketException

from bocage.client import issuing, questions
from bocage.client.api import ApiError, BocageClient
from bocage.client.calls import Calls
from bocage.client.certs import TrustWarning
from bocage.client.crypto import (
    CryptoError,
    ForgedMessage,
    MislabelledMessage,
    new_message_id,
    open_sender_key,
    open_verified,
    seal_message,
    seal_sender_key,
    verify_envelope,
)
from bocage.client.directory import Directory
from bocage.client.edits import apply_edits
from bocage.client.followers import is_follower_device
from bocage.client.live import ConnectionReplaced, LiveSession
from bocage.client.mentions import to_notify
from bocage.client.partners import Partners
from bocage.client.polls import new_poll, tally
from bocage.client.profile import DeviceKeys, Profile, sign_token
from bocage.client.ratchet import KeyUnavailable, ReplayedMessage, SenderKeyRing, TooFarAhead
from bocage.client.recent_history import signs_for_managers, verified_choice, withdrawn
from bocage.client.results import Channel, ChannelSync, Document, Receipt, Roster, RosterDevice
from bocage.client.rosters import RosterCache
from bocage.client.trust import MembershipRefused, Trust
from chalicelib.domain.activation_link import with_fragment_params
from chalicelib.domain.direct import is_direct_of, new_channel_seed
from chalicelib.domain.envelope import Envelope
from chalicelib.domain.followers import DAY, JoinTarget
from chalicelib.domain.frames import (
    DeviceFrame,
    JoinedFrame,
    LeftFrame,
    MessageFrame,
    RevokedFrame,
    RoleFrame,
    RotatedFrame,
    ServerFrame,
)
from chalicelib.domain.ids import is_follower_id, new_id
from chalicelib.domain.questions import ANSWER_PURPOSE, QUESTION_PURPOSE
from chalicelib.domain.x25519 import UnsafeBoxKey


def _verified(message: dict[str, Any], certified: dict[str, str] | None) -> Envelope | dict[str, Any]:
    """The message's envelope, its signature verified with the certified sender device's key
    (the one verification: ``open_verified`` decrypts it), or why it is not opened at all."""
    if message.get("deleted"):
        return {"deleted": True, "error": "deleted for everyone"}
    if certified is None:
        return {"error": "sent from a device that is not certified: not shown"}
    if is_follower_id(str(certified["member_id"])) and message["kind"] not in FOLLOWER_KINDS:
        # 16.3: followers react and vote, nothing more, whatever a server stored in their name
        return {"error": "a follower may only react and vote: not shown"}
    try:  # before any verdict on the sender: a server's rewrite (of sent_at, say) is no member's doing
        return verify_envelope(message, str(certified["sign_public_key"]))
    except ForgedMessage:
        return {"error": "forged or tampered message: signature does not verify"}
    except CryptoError:
        return {"error": "could not decrypt this message"}


#: What a follower's device may send (docs/protocol.md, 16.3): any other kind in a follower's name
#: (a post, an edit, a deletion) is not applied, whoever stored it.
FOLLOWER_KINDS = frozenset({"reaction", "vote"})

# Sealed keys per PUT /keys: the server takes up to 500, but at ~400 bytes of JSON each, 500 are
# over the 128 KiB body limit (413); 200 stay well under it (bench/followers.py found it).
KEYS_PER_CALL = 200
CONNECT_PATH = "$connect"
RECONNECT_DELAY = 0.5  # seconds, times the attempt number, at most 5
DIRECT_ATTEMPTS = 5  # the other member may be opening the same direct conversation


class CatchUp:
    """Where a listener stands in each channel, so that after a reconnection every message
    stored meanwhile is shown once, whether it came live or from the catch-up read."""

    def __init__(self, heads: dict[str, int]) -> None:
        self._read_up_to = dict(heads)  # every message at or below this seq was shown (or predates us)
        self._shown: dict[str, set[int]] = {}  # shown live above that
        self.shown = 0  # messages shown in all

    def since(self, channel_id: str) -> int:
        return self._read_up_to.get(channel_id, 0)

    def first_time(self, message: dict[str, Any]) -> bool:
        channel_id, seq = message["channel_id"], int(message["seq"])
        shown = self._shown.setdefault(channel_id, set())
        if seq <= self.since(channel_id) or seq in shown:
            return False
        shown.add(seq)
        self.shown += 1
        return True

    def read_up_to(self, channel_id: str, seq: int) -> None:
        """A catch-up read every message of the channel up to ``seq``."""
        self._read_up_to[channel_id] = max(seq, self.since(channel_id))
        self._shown[channel_id] = {s for s in self._shown.get(channel_id, set()) if s > seq}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class Messenger:
    def __init__(
        self, profile: Profile, client: BocageClient | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.profile = profile
        self.clock = clock
        self.info = profile.info()
        self.keys: DeviceKeys = profile.keys()
        self.client = client or BocageClient(self.info["server"], device=self.keys, clock=clock)
        self.ring_path = profile.dir / "keyring.json"
        self.ring = SenderKeyRing.load(self.ring_path)
        self.directory = Directory.load(profile.dir / "directory.json")
        self.rosters = RosterCache()
        self.trust = Trust(profile, self.client, self.keys, clock)
        self.partners = Partners(self.trust, str(self.info["server"]))
        self._session: LiveSession | None = None
        self.calls = Calls(self)
        self._session_thread: int | None = None  # the thread that opened it
        # Channels the listing calls direct, with the other member it names; dropped once the
        # verified log proves it is our conversation with them (14.1).
        self._listed_direct: dict[str, str] = {}
        self._proven_direct: set[str] = set()

    @property
    def device_id(self) -> str:
        return self.keys.device_id

    def save(self) -> None:
        self.ring.save(self.ring_path)

    # -- channels ------------------------------------------------------------------------------

    def create_channel(self, kind: str, name: str) -> Channel:
        """A channel whose id and signed creation entry this device makes (docs/protocol.md, 14)."""
        seed = new_channel_seed()
        entry = self.trust.new_channel_entry(kind, seed)
        channel = self.client.create_channel(kind, name, entry, seed)
        self.trust.created(entry)
        return channel

    def open_direct(self, member_id: str) -> Channel:
        """The direct conversation with ``member_id``, found again or created. When the other
        member opens it at the same moment the server says so (409): ask again shortly."""
        for attempt in range(DIRECT_ATTEMPTS):
            try:
                channel = self.client.open_direct(member_id, self.trust.direct_entries(member_id))
            except ApiError as err:
                if err.status != 409 or attempt == DIRECT_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
                continue
            self._require_direct(str(channel["channel_id"]), member_id)
            return channel
        raise AssertionError("unreachable")

    def _require_direct(self, channel_id: str, member_id: str) -> None:
        """The server's answer is not the proof: the pair's id could be a group someone else made
        under it (14.1). Only a verified ``direct`` log of exactly us two is our conversation."""
        me = self.info["member_id"]
        state = self.trust.membership(channel_id)
        if not is_direct_of(channel_id, self.trust.org_id, state.kind, state.members, me, member_id):
            warning = TrustWarning(
                "direct_squatted",
                f"{channel_id}: not the direct conversation with {member_id} "
                f"(its signed log is a {state.kind!r} of {sorted(state.members)}); nothing is sent there",
                member_id,
                None,
            )
            self.trust.warn(warning)
            raise MembershipRefused(warning)

    def _require_listed_direct(self, channel_id: str) -> None:
        """A channel the listing calls our direct conversation with someone is sent to only once
        its verified log says so: a group listed as a direct one would seal to its own members
        (14.1; the web app refuses it the same way)."""
        other = self._listed_direct.get(channel_id)
        if other is None:
            return
        self._require_direct(channel_id, other)
        del self._listed_direct[channel_id]
        self._proven_direct.add(channel_id)

    def channels(self) -> list[ChannelSync]:
        channels = self.client.channels()["channels"]
        me = self.info["member_id"]
        for c in channels:
            self.rosters.heard(c["channel_id"], version=c["roster"], epoch=c["epoch"])
            others = [m for m in c.get("direct_members") or [] if m != me]
            if c["kind"] == "direct" and c["channel_id"] not in self._proven_direct:
                self._listed_direct[c["channel_id"]] = others[0] if others else ""
        self.ring.forget(int(self.clock()), {c["channel_id"]: c["epoch"] for c in channels})
        self.save()
        return channels

    def add_member(self, channel_id: str, member_id: str, role: str = "member") -> Document:
        """Add a member (or change their role) with a signed membership entry."""
        op = "role" if member_id in self.trust.membership(channel_id).members else "add"
        result = self._signed_change(
            channel_id,
            lambda: self.trust.next_entry(channel_id, op, member_id, role),
            lambda entry: self.client.add_channel_member(channel_id, member_id, role, entry),
        )
        self.rosters.forget(channel_id)
        return result

    def remove_member(self, channel_id: str, member_id: str) -> Document:
        """Remove a member, or leave (oneself), with a signed membership entry."""
        op = "leave" if member_id == self.info["member_id"] else "remove"
        result = self._signed_change(
            channel_id,
            lambda: self.trust.next_entry(channel_id, op, member_id, None),
            lambda entry: self.client.remove_channel_member(channel_id, member_id, entry),
            verify_after=op != "leave",  # once out, the channel's log is not ours to read
        )
        self.rosters.forget(channel_id)
        return result

    def _signed_change(
        self,
        channel_id: str,
        sign: Callable[[], Document],
        post: Callable[[Document], Document],
        *,
        verify_after: bool = True,
    ) -> Document:
        """Sign the next log entry and post it; if another writer took that number, sign again once."""
        for attempt in range(2):
            entry = sign()
            try:
                result = post(entry)
            except ApiError as err:
                if err.status == 409 and attempt == 0:
                    continue
                raise
            if verify_after:
                self.trust.membership(channel_id)
            return result
        raise AssertionError("unreachable")

    # -- sending ---------------------------------------------------------------------------------

    def send(
        self,
        channel_id: str,
        content: dict[str, Any],
        *,
        kind: str = "message",
        target: str | None = None,
        live: bool | None = None,
        notify: Sequence[str] = (),
    ) -> Receipt:
        """Seal, sign and send; distribute this device's key first where it is missing.

        Over the live connection when this thread opened one (``live()``): the ``send`` action,
        no REST request and no token to spend (docs/protocol.md, section 9); if the socket
        closes or leaves the send unanswered, over REST under the same message id, which the
        server stores once. Else over REST. ``live=True``: the socket or an error;
        ``live=False``: REST. ``notify``: beside the envelope, the mentioned members in
        "mentions only" mode whom this message may wake (``notify_for``).
        """
        self._require_listed_direct(channel_id)
        post = self._poster(live)
        message_id = new_message_id()
        for attempt in range(2):
            envelope = self.seal(channel_id, message_id, content, kind, target)
            try:
                receipt = post(envelope, notify)
                if not receipt["duplicate"]:  # a duplicate's key is the first attempt's
                    self.ring.confirm(
                        channel_id,
                        envelope.epoch,
                        envelope.index,
                        seq=receipt["seq"],
                        expires_at=receipt["expires_at"],
                    )
                return receipt
            except ApiError as err:
                if err.code == "stale_epoch" and attempt == 0:
                    self.rosters.forget(channel_id)
                    continue  # someone left meanwhile: re-key and resend once
                raise
            finally:
                self.save()
        raise AssertionError("unreachable")

    def seal(
        self, channel_id: str, message_id: str, content: dict[str, Any], kind: str, target: str | None
    ) -> Envelope:
        """The next envelope of this device's chain, sealed but not sent (``send`` sends it).

        The ring is saved before the envelope leaves: after a crash this device still reads its
        own message back, and never seals another one under the same index.
        """
        epoch = self.distribute_key(channel_id)
        self.recent_history(channel_id, force=False)  # a snapshot of my chain if it opens history
        index, message_key = self.ring.next_key(channel_id, epoch, message_id, int(self.clock()))
        self.save()
        return seal_message(
            self.keys,
            message_key,
            index=index,
            channel_id=channel_id,
            epoch=epoch,
            message_id=message_id,
            content=content,
            kind=kind,
            target=target,
            sent_at_ms=int(self.clock() * 1000),
        )

    def send_text(
        self,
        channel_id: str,
        text: str,
        *,
        reply_to: str | None = None,
        mentions: list[str] | None = None,
        live: bool | None = None,
    ) -> Receipt:
        """A text; ``mentions`` are member ids whose ``@Name`` the text holds (protocol section 7)."""
        content: dict[str, Any] = {"type": "text", "text": text}
        if reply_to:
            content["reply_to"] = reply_to
        notify: list[str] = []
        if mentions:
            content["mentions"] = list(dict.fromkeys(mentions))
            notify = self.notify_for(channel_id, content["mentions"])
        return self.send(channel_id, content, live=live, notify=notify)

    def notify_for(self, channel_id: str, mentioned: list[str]) -> list[str]:
        """The mentioned members whose own signed choice here is "mentions only" (protocol
        section 17): one request, made only for a text that mentions someone. If it fails, the
        message still goes, naming nobody (as the web app does): only a notification is lost."""
        try:
            statements = list(self.client.channel_members(channel_id).get("notify") or [])
        except (ApiError, OSError):
            return []
        view = self.trust.view()
        signers = {s.get("by_device") for s in statements if isinstance(s, dict)}
        if any(isinstance(d, str) and view.device(d) is None for d in signers):
            view = self.trust.view(refresh=True)  # a device linked since the kept listing
        return to_notify(view, self.trust.org_id, channel_id, mentioned, statements)

    def set_mentions_only(self, channel_id: str, mentions_only: bool) -> Document:
        """Sign and post this member's choice for the channel: be woken only when mentioned,
        or by every message (``False``)."""
        statement = issuing.notify_choice(
            self.keys.signing,
            self.device_id,
            org_id=self.trust.org_id,
            channel_id=channel_id,
            member_id=self.trust.member_id,
            mentions_only=mentions_only,
            now=self.trust.now(),
        )
        return self.client.choose_notify(channel_id, statement)

    def edit(self, channel_id: str, message_id: str, text: str) -> Receipt:
        """Replace the text of one of this member's messages, on every device (an ``edit``)."""
        content = {"type": "edit", "target": message_id, "text": text}
        return self.send(channel_id, content, kind="edit", target=message_id)

    def react(self, channel_id: str, message_id: str, emoji: str, *, remove: bool = False) -> Receipt:
        content = {"type": "reaction", "target": message_id, "emoji": emoji, "remove": remove}
        return self.send(channel_id, content, kind="reaction")

    def delete(self, channel_id: str, message_id: str) -> Receipt:
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
        show_voters: bool = False,
    ) -> dict[str, Any]:
        poll = new_poll(question, options, multiple=multiple, closes_at=closes_at, show_voters=show_voters)
        result = self.send(channel_id, poll, kind="poll")
        return {**result, "poll_id": result["message_id"]}

    def vote(self, channel_id: str, poll_id: str, choices: list[int]) -> Receipt:
        return self.send(channel_id, {"type": "vote", "poll_id": poll_id, "choices": choices}, kind="vote")

    def close_poll(self, channel_id: str, poll_id: str) -> Receipt:
        return self.send(channel_id, {"type": "close", "poll_id": poll_id}, kind="poll_close", target=poll_id)

    def poll_results(self, channel_id: str, poll_id: str) -> dict[str, Any]:
        """Tallied here, on the device: the server never sees a question, an option or a vote.

        Voters are the members of the verified membership cut at the partnership ends this
        device saw (as senders are judged: an ended partner's member votes no more, whatever the
        server's roster says), and those still in when a closed poll closed; in a public tribe,
        the followers this device verified (one device each, so one vote per device), counted
        apart."""
        messages = self.history(channel_id)
        state = self.trust.judged_fresh(channel_id)
        followers = {f["member_id"] for f in self.trust.followers.get(channel_id, {}).values()}
        if self.trust.is_follower:
            followers.add(self.trust.member_id)  # a follower's own vote counts in their own tally
        voters = set(state.members) | followers
        return tally(messages, poll_id, voters, now=self.clock(), departed=state.former)

    def seen_by(self, channel_id: str, message_id: str) -> dict[str, Any]:
        """Who of the channel's other members has read up to one message ("vu par N / M"), from
        the read cursors the server keeps (for the sender and, in a tribe, its managers)."""
        message = next((m for m in self.history(channel_id) if m["message_id"] == message_id), None)
        if message is None:
            raise LookupError(f"no message {message_id} in this channel")
        members = self.client.seen(channel_id)["members"]
        others = [m for m in members if m["member_id"] != message["sender_member"]]
        seen = sorted(m["member_id"] for m in others if m["seq"] >= message["seq"])
        return {
            "channel_id": channel_id,
            "message_id": message_id,
            "seq": message["seq"],
            "seen_by": seen,
            "not_seen_by": sorted(m["member_id"] for m in others if m["seq"] < message["seq"]),
            "count": len(seen),
            "total": len(others),
        }

    def history(self, channel_id: str) -> list[dict[str, Any]]:
        """Every readable message of the channel, opened, oldest first."""
        opened: list[dict[str, Any]] = []
        cursor = 0
        while True:
            page = self.read(channel_id, since=cursor, limit=200)
            opened += page["messages"]
            if page["cursor"] == cursor or not page["more"]:
                return apply_edits(opened)
            cursor = page["cursor"]

    def distribute_key(self, channel_id: str, roster: Roster | None = None) -> int:
        """Seal my key for the current epoch to every roster device that lacks it; return the epoch."""
        roster = roster or self.roster(channel_id)
        epoch = int(roster["epoch"])
        # Only certified devices of members in the verified membership (docs/protocol.md, 14);
        # the box key is the certificate's, never the roster's.
        devices = [dict(d) for d in roster["devices"]]
        targets = self.trust.recipients(channel_id, devices, watched=self.rosters.watched)
        missing = self.ring.undistributed(channel_id, epoch, list(targets))
        if missing:
            current = self.ring.own_state(channel_id, epoch)
            followers = {str(d["device_id"]) for d in devices if is_follower_device(d)} & set(missing)
            window = current
            if followers and self.recent_history(channel_id, force=True) > 0:
                window = self.ring.history_state(channel_id, epoch, int(self.clock()))
            sealed = []
            for d in missing:
                chain_key, index = window if d in followers else current
                try:
                    sealed.append(
                        seal_sender_key(self.keys, d, targets[d], channel_id, epoch, chain_key, index)
                    )
                except UnsafeBoxKey:
                    continue  # anyone could open it: never sealed to (the certificate checks report it)
            for i in range(0, len(sealed), KEYS_PER_CALL):
                self.client.put_sender_keys(channel_id, epoch, sealed[i : i + KEYS_PER_CALL])
            self.ring.mark_distributed(channel_id, epoch, [k["recipient_device"] for k in sealed])
        self.ring.own_state(channel_id, epoch)
        self.ring.forget(int(self.clock()), {channel_id: epoch})
        self.save()
        return epoch

    def roster(self, channel_id: str) -> Roster:
        """The channel's devices: the kept roster while a live connection vouches for it."""
        if self._session is not None:
            self._session.pump()  # hear what the server announced before trusting the kept one
        roster = self.rosters.get(channel_id)
        if roster is None:
            roster = self.client.roster(channel_id)
            self.rosters.put(channel_id, roster)
        return roster

    # -- reading -------------------------------------------------------------------------------

    def share_keys(self, channel_id: str) -> None:
        """If I send in this channel, give my current key to devices that joined since (multi-device).

        Cheap for readers who never sent: they hold no key of their own and ask nothing.
        """
        if not self.ring.has_own(channel_id):
            return
        roster = self.roster(channel_id)
        if self.ring.has_own(channel_id, int(roster["epoch"])):
            self.distribute_key(channel_id, roster)

    def read(self, channel_id: str, since: int = 0, limit: int = 100) -> dict[str, Any]:
        if not self.rosters.watched:  # nothing heard of changes: the page's senders need the log's head
            self.trust.changed(channel_id)
        self.share_keys(channel_id)
        page = self.client.messages(channel_id, since=since, limit=limit)
        self._learn_followers(channel_id, page["messages"])
        messages = apply_edits([self.open(m) for m in page["messages"]])
        self.ring.forget(int(self.clock()))
        self.save()
        return {
            "channel_id": channel_id,
            "messages": messages,
            "cursor": page["cursor"],
            "more": page["more"],
        }

    def open(self, message: dict[str, Any]) -> dict[str, Any]:
        """Verify then decrypt one stored message; forged or unreadable ones are flagged, not shown."""
        channel_id, sender = message["channel_id"], message["sender_device"]
        # The sender shown is the device certificate's member, never the server's sender_member.
        certified, forged_sender = self.trust.sender(sender, message.get("sender_member"), channel_id)
        shown: dict[str, Any] = {
            "message_id": message["message_id"],
            "channel_id": channel_id,
            "seq": message["seq"],
            "kind": message["kind"],
            "sender_member": certified["member_id"] if certified else None,
            "sender_device": sender,
            "sender_name": certified["display_name"] if certified else None,
            "sender_verified": certified is not None and not forged_sender,
            "sent_at_ms": message["sent_at"],
            "stored_at": message["stored_at"],
            "expires_at": message["expires_at"],
            "verified": False,
        }
        envelope = _verified(message, certified)
        if not isinstance(envelope, Envelope) or certified is None:
            return {**shown, **(envelope if isinstance(envelope, dict) else {})}
        member_id = str(certified["member_id"])
        # 14.2: a certified device of someone not in the channel (a follower is checked against
        # the tribe's ticket instead, 16.3) sends nothing here, whatever the server let through.
        why = (
            None
            if is_follower_id(member_id)
            else self.trust.refuses_sender(channel_id, member_id, sender, message["sent_at"], message["kind"])
        )
        if why is not None:
            return {**shown, "sender_verified": False, "error": f"{why}: not shown"}
        try:
            content = self._open_sealed(message, envelope)
        except MislabelledMessage as err:
            return {**shown, "error": f"mislabelled message, dropped: {err}"}
        except ReplayedMessage as err:
            return {**shown, "replayed": True, "error": str(err)}
        except (KeyUnavailable, TooFarAhead) as err:
            return {**shown, "error": f"no key for this message: {err}"}
        except CryptoError:
            return {**shown, "error": "could not decrypt this message"}
        shown = {**shown, "verified": True, "content": content, "text": content.get("text")}
        if content.get("reply_to"):
            shown["reply_to"] = content["reply_to"]
        mentions = content.get("mentions")
        if isinstance(mentions, list) and all(isinstance(m, str) for m in mentions):
            shown["mentions"] = mentions
        return shown

    def _open_sealed(self, message: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
        """Derive the message's key from the sender's chain, then decrypt ``envelope`` (the
        message's, already verified) and check its labels."""
        channel_id, epoch, sender = message["channel_id"], message["epoch"], message["sender_device"]
        index, seq = message.get("index"), message.get("seq")
        if not (_is_int(epoch) and _is_int(index) and _is_int(seq)):
            raise CryptoError("malformed message")
        own = sender == self.device_id
        if not own and not self.ring.holds(channel_id, epoch, sender):
            self._fetch_keys(channel_id, epoch)
        return self.ring.open_with(
            channel_id,
            epoch,
            None if own else sender,
            index,
            seq=seq,
            message_id=message["message_id"],
            expires_at=int(message["expires_at"]),
            opener=lambda key: open_verified(envelope, key),
        )

    def _learn_followers(self, channel_id: str, messages: list[dict[str, Any]]) -> None:
        """A public tribe's followers react and vote: verify them from the roster when one appears
        (the server's ``sender_member`` only says when to look; the certificates decide)."""
        unknown = any(
            is_follower_id(str(m.get("sender_member")))
            and m["sender_device"] not in self.trust.followers.get(channel_id, {})
            for m in messages
        )
        if unknown and not self.trust.is_follower:
            self.trust.learn_followers(channel_id, [dict(d) for d in self.roster(channel_id)["devices"]])

    # -- public tribes (docs/protocol.md, 16) ------------------------------------------------------

    def follow(self, target: JoinTarget, display_name: str, *, device_name: str = "") -> dict[str, Any]:
        """This follower's device follows another public tribe of its organisation (16.2): the
        same keys, a new certificate signed with that tribe's join ticket."""
        if not self.trust.is_follower:
            raise ValueError("only a follower's device follows a tribe from a join link")
        if target.org != self.trust.org_id or target.root != self.trust.state.root:
            raise ValueError("this join link is another organisation's: join it with a new profile")
        keys_of = {"sign_public_key": self.keys.sign_public_key, "box_public_key": self.keys.box_public_key}
        cert = issuing.follower_cert(target, **keys_of, display_name=display_name, now=self.trust.now())
        result = dict(self.client.join(target.link, self.keys, cert, device_name=device_name))
        if result.get("device_id") != self.device_id or result.get("org_id") != self.trust.org_id:
            raise ValueError("the server answered for another device or organisation")
        return result

    # -- questions to the town hall (docs/protocol.md, 20) ------------------------------------------

    def ask(self, channel_id: str, text: str) -> dict[str, Any]:
        """A follower's private question, sealed on this device for the tribe's managers' devices
        as this device verifies them (never a device on the server's word), and a copy for itself."""
        if not self.trust.is_follower:
            raise ValueError("only a follower asks the town hall; members write in the tribe")
        text = questions.check_text(text)
        state = self.trust.membership(channel_id)
        managers = questions.managers_devices(self.trust.view(refresh=True), state)
        if not managers:
            raise ValueError("no certified device of this tribe's managers to seal the question to")
        question_id = new_id("q")
        recipients = {**managers, self.device_id: self.keys.box_public_key}
        sealed = {
            device_id: questions.seal(
                self.keys,
                device_id,
                box_key,
                purpose=QUESTION_PURPOSE,
                channel_id=channel_id,
                question_id=question_id,
                text=text,
            )
            for device_id, box_key in recipients.items()
        }
        stored = self.client.ask_question(channel_id, question_id, sealed)
        return {**self._question(channel_id, dict(stored)), "warnings": self.trust.take_warnings()}

    def questions(self, channel_id: str) -> list[dict[str, Any]]:
        """The tribe's questions (a manager) or my own (a follower), opened on this device."""
        listed = self.client.questions(channel_id)
        if not self.trust.is_follower and listed:
            self.trust.learn_followers(
                channel_id, [dict(d) for d in self.client.roster(channel_id)["devices"]]
            )
        return sorted((self._question(channel_id, q) for q in listed), key=lambda q: q["asked_at"])

    def answer(
        self, channel_id: str, question_id: str, text: str, *, publish: bool = False
    ) -> dict[str, Any]:
        """Answer a follower privately, sealed to their device; ``publish``: also in the tribe."""
        text = questions.check_text(text)
        found = {q["question_id"]: q for q in self.questions(channel_id)}.get(question_id)
        if found is None:
            raise ValueError(f"no question {question_id} in this tribe")
        asker = self.trust.followers.get(channel_id, {}).get(found["asker_device"])
        if asker is None:
            raise ValueError("the asker is not a follower of this tribe that this device could verify")
        published = None
        if publish:
            quoted = f"« {found['text']} »\n{text}" if found.get("text") else text
            published = self.send_text(channel_id, quoted)["message_id"]
        sealed = questions.seal(
            self.keys,
            asker["device_id"],
            asker["box_public_key"],
            purpose=ANSWER_PURPOSE,
            channel_id=channel_id,
            question_id=question_id,
            text=text,
            published_message_id=published,
        )
        stored = self.client.answer_question(channel_id, question_id, sealed, published)
        return self._question(channel_id, dict(stored))

    def _question(self, channel_id: str, listed: dict[str, Any]) -> dict[str, Any]:
        """One listed question, its text and answer opened here when this device can verify who
        sealed them (the asker, a follower of this tribe; the answer's device, a manager's)."""
        question_id, asker_device = str(listed["question_id"]), str(listed["asker_device"])
        shown: dict[str, Any] = {
            "question_id": question_id,
            "channel_id": channel_id,
            "asked_at": listed["asked_at"],
            "asker": listed["asker"],
            "asker_device": asker_device,
            "asker_name": None,
            "text": None,
            "answered": listed.get("answer") is not None,
            "answer": None,
            "published_message_id": None,
        }
        if asker_device == self.device_id:
            asker_keys: dict[str, str] | None = {
                "box_public_key": self.keys.box_public_key,
                "display_name": str(self.profile.info().get("display_name", "")),
            }
        else:
            asker_keys = self.trust.followers.get(channel_id, {}).get(asker_device)
        if asker_keys is not None and listed.get("sealed"):
            shown["asker_name"] = asker_keys["display_name"]
            try:
                shown["text"] = questions.open_box(
                    self.keys,
                    str(listed["sealed"]),
                    asker_device,
                    asker_keys["box_public_key"],
                    purpose=QUESTION_PURPOSE,
                    channel_id=channel_id,
                    question_id=question_id,
                )["text"]
            except CryptoError:
                shown["text"] = None
        answer = listed.get("answer")
        if answer and asker_device == self.device_id:
            shown["answer"], shown["published_message_id"] = self._open_answer(
                channel_id, question_id, answer
            )
        return shown

    def _open_answer(
        self, channel_id: str, question_id: str, answer: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, str | None]:
        by_device, by_member = str(answer["by_device"]), str(answer["by_member"])
        view, state = self.trust.view(refresh=True), self.trust.membership(channel_id)
        if not questions.is_manager(view, state, by_device, by_member):
            self.trust.warn(
                TrustWarning(
                    "uncertified_answer",
                    f"{by_device}: an answer from a device that is not a certified manager's of this tribe",
                    by_member,
                    by_device,
                )
            )
            return None, None
        usable = view.usable(by_device)
        member = view.member(by_member)
        assert usable is not None
        try:
            payload = questions.open_box(
                self.keys,
                str(answer["sealed"]),
                by_device,
                usable.box_public_key,
                purpose=ANSWER_PURPOSE,
                channel_id=channel_id,
                question_id=question_id,
            )
        except CryptoError:
            return None, None
        opened = {
            "text": payload["text"],
            "by_member": by_member,
            "by_name": member.display_name if member else None,
            "answered_at": answer["answered_at"],
        }
        return opened, payload.get("published_message_id")

    def publish(self, channel_id: str, *, cap: int | None = None, days: int = 365) -> dict[str, Any]:
        """Make a tribe public: a join link whose fragment carries the ticket's seed and our root."""
        if not 1 <= days <= 5 * 365:
            raise ValueError("a join link lasts 1 to 1825 days")
        ticket = issuing.follower_ticket(
            self.keys.signing,
            self.device_id,
            self.trust.org_id,
            channel_id,
            self.trust.now(),
            lifetime=days * 86400,
        )
        answer = dict(self.client.publish_tribe(channel_id, ticket.statement, cap=cap))
        url = with_fragment_params(
            answer["join_url"], ticket=ticket.fragment_seed, root=self.trust.state.root
        )
        self.profile.save_join_link(channel_id, url)  # kept for the poster, never sent
        return {**answer, "join_url": url}

    def set_recent_history(self, channel_id: str, days: int) -> dict[str, Any]:
        """A manager lets new followers of a public tribe read its last ``days`` days (0: from
        joining), signed by this device; the authors' devices verify it before sharing."""
        statement = issuing.history_choice(
            self.keys.signing,
            self.device_id,
            org_id=self.trust.org_id,
            channel_id=channel_id,
            days=days,
            now=self.trust.now(),
        )
        self.client.choose_history(channel_id, statement)
        return {"channel_id": channel_id, "days": self.recent_history(channel_id, force=True)}

    def recent_history(self, channel_id: str, *, force: bool) -> int:
        """How many days of this tribe this device shares with a new follower (section 23): the
        latest choice it verified as a manager's (asked again once a day, or ``force``); 0 for
        a channel that is not a tribe, on a follower's device, or with no valid choice."""
        if self.trust.is_follower:
            return 0
        if force and channel_id not in self.trust.state.logs:
            self.trust.membership(channel_id)
        log = self.trust.state.logs.get(channel_id)
        if not log or log.get("kind") != "tribe":
            return 0
        now = int(self.clock())
        window = self.ring.window(channel_id)
        if force or window is None or now - window.checked_at >= DAY:
            try:
                statement = self.client.recent_history(channel_id).get("statement")
            except ApiError:
                statement = None  # keep the choice verified before, if any
            state = self.trust.membership(channel_id)
            found = verified_choice(statement, self.trust.view(), state, self.trust.org_id, channel_id, now)
            if isinstance(found, TrustWarning):  # perhaps signed on a device linked since
                found = verified_choice(
                    statement, self.trust.view(refresh=True), state, self.trust.org_id, channel_id, now
                )
            if isinstance(found, TrustWarning):
                self.trust.warn(found)
                found = None
            if found is None:
                self.ring.mark_checked(channel_id, now)
            else:
                self.ring.set_window(channel_id, found.days, found.issued_at, now, found.by_device)
            kept = self.ring.window(channel_id)
            if (
                kept is not None
                and kept.days > 0
                and not signs_for_managers(self.trust.view(), state, kept.by_device)
            ):
                self.trust.warn(withdrawn(channel_id))
                self.ring.withdraw_window(channel_id, now)
            self.save()
            window = self.ring.window(channel_id)
        return 0 if window is None else window.days

    def _fetch_keys(self, channel_id: str, epoch: int) -> None:
        """Open every chain state sealed to this device for the epoch that the ring does not hold."""
        try:
            sealed = self.client.sender_keys(channel_id, epoch)["keys"]
        except ApiError:
            return
        for entry in sealed:
            device = self._device(entry["sender_device"], channel_id)
            if device is None or self.ring.holds(channel_id, epoch, entry["sender_device"]):
                continue
            try:
                chain_key, index = open_sender_key(self.keys, entry, device["box_public_key"], channel_id)
            except CryptoError:
                continue  # a bad envelope is ignored, never trusted
            self.ring.add_received(channel_id, epoch, entry["sender_device"], chain_key, index)

    def _device(self, device_id: str, channel_id: str) -> RosterDevice | None:
        """A certified device's keys (from its certificate), revoked ones included for old messages."""
        certified, _ = self.trust.sender(device_id, None, channel_id)
        if certified is None:
            return None
        return {k: certified[k] for k in ("device_id", "member_id", "sign_public_key", "box_public_key")}  # type: ignore[return-value]

    # -- live ------------------------------------------------------------------------------------

    def ws_url(self) -> str:
        url = self.client.health().get("ws_url")
        if not url:
            raise ApiError(503, "no_websocket", "this server offers no WebSocket endpoint")
        return str(url)

    @contextmanager
    def live(self) -> Iterator[LiveSession]:
        """An open WebSocket connection: pushed frames, and ``send(..., live=True)`` over it.

        While it is open, what the server announces keeps the kept rosters current.
        """
        from websockets.sync.client import connect

        now = int(self.clock())
        token = sign_token(self.keys.signing, self.device_id, "GET", CONNECT_PATH, None, b"", now=now)
        with connect(f"{self.ws_url()}?token={quote(token)}", open_timeout=10) as ws:
            self._session = LiveSession(ws, on_frame=self.note)
            self._session_thread = threading.get_ident()  # a session is one thread's (live.py)
            self.rosters.watched = True
            try:
                yield self._session
            finally:
                self._session = None
                self._session_thread = None
                self.rosters.watched = False

    def _poster(self, live: bool | None) -> Callable[[Envelope, Sequence[str]], Receipt]:
        """How this send goes out (see ``send``)."""
        if live:
            live_session = self._live_session()
            return lambda envelope, notify: live_session.send(envelope, notify=notify)
        session = self._session if live is None and self._session_thread == threading.get_ident() else None
        if session is None or session.closed:
            return self.client.send_message

        def over_socket(envelope: Envelope, notify: Sequence[str]) -> Receipt:
            try:
                return session.send(envelope, notify=notify)
            except (ConnectionError, TimeoutError, WebSocketException):  # REST settles it
                return self.client.send_message(envelope, notify)

        return over_socket

    def _live_session(self) -> LiveSession:
        if self._session is None:
            raise RuntimeError("no live connection is open: send inside `with messenger.live():`")
        return self._session

    def note(self, frame: ServerFrame) -> None:
        """Keep what a frame announces: a roster's new version, a channel's new epoch."""
        if isinstance(frame, JoinedFrame | DeviceFrame):
            self.rosters.heard(frame.channel_id, version=frame.roster)
        elif isinstance(frame, LeftFrame | RevokedFrame | RotatedFrame):
            self.rosters.heard(frame.channel_id, epoch=frame.epoch)
        if isinstance(frame, JoinedFrame | LeftFrame | RoleFrame | DeviceFrame | RevokedFrame):
            self.trust.changed(frame.channel_id)  # the signed log and the certificates, fetched again

    def listen(
        self,
        *,
        count: int | None = None,
        timeout: float | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Decrypted messages as they arrive, until ``count`` messages or ``timeout`` seconds.

        ``on_ready`` is called once the socket is open, so a caller knows it will miss nothing:
        when the server closes the connection with a code that asks for it (a replica stopping
        or dying, an idle timeout, a client that fell behind), this reconnects and first yields,
        once each, the messages stored meanwhile.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        catch_up = CatchUp({c["channel_id"]: c["latest_seq"] for c in self.channels()})
        attempt = 0
        while True:
            try:
                with self.live() as session:
                    if attempt == 0 and on_ready is not None:
                        on_ready()
                    remaining = None if deadline is None else deadline - time.monotonic()
                    live = self._opened(session.frames(remaining))
                    for opened in chain(self._caught_up(catch_up) if attempt else (), live):
                        if catch_up.first_time(opened):
                            yield opened
                            if catch_up.shown == count:
                                return
                pause = session.pause_before_reconnecting()
                if pause is None:
                    return
            except (OSError, ApiError, WebSocketException) as exc:
                # The server was never reached, or wants this connection gone (reconnecting
                # would close the device's newer connection in turn): say so.
                if attempt == 0 or isinstance(exc, ConnectionReplaced):
                    raise
                pause = 0.0
            if deadline is not None and time.monotonic() >= deadline:
                return
            attempt += 1
            time.sleep(max(pause, min(RECONNECT_DELAY * attempt, 5.0)))

    def _opened(self, frames: Iterator[ServerFrame]) -> Iterator[dict[str, Any]]:
        for frame in frames:
            opened = self.handle(frame)
            if opened is not None:
                yield opened

    def _caught_up(self, catch_up: CatchUp) -> Iterator[dict[str, Any]]:
        """What every channel stored since the last catch-up (or since listening began)."""
        for channel in self.channels():
            channel_id = channel["channel_id"]
            since = catch_up.since(channel_id)
            while True:
                page = self.read(channel_id, since=since, limit=200)
                yield from page["messages"]
                if page["cursor"] == since or not page["more"]:
                    break
                since = page["cursor"]
            catch_up.read_up_to(channel_id, page["cursor"])

    def handle(self, frame: ServerFrame) -> dict[str, Any] | None:
        """Act on a pushed frame; a message comes back opened."""
        if isinstance(frame, MessageFrame):
            opened = self.open(frame.message.wire())
            self.save()
            return opened
        if isinstance(frame, JoinedFrame | DeviceFrame):
            self.share_keys(frame.channel_id)  # a new device may be waiting for my key
        return None
