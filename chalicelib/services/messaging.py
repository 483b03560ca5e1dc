"""Sending and reading messages: one stored copy each, whatever the channel's size.

Order comes from a per-channel sequence (an atomic counter), so catch-up is a
range query after a cursor. A writer can take number n and store it after n+1
is visible; a reader therefore stops at a fresh gap and returns it next time,
and only skips gaps older than ``GAP_GRACE`` (a crashed writer). Gaps wider
than ``MAX_IN_FLIGHT`` numbers cannot all be writers still at work: they are
messages deleted by retention, and are skipped at once. Resends are recognised
by the client's message id.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.messages import IdMarker, MessageRecords
from chalicelib.domain.billing import month_of, require_sending_allowed
from chalicelib.domain.channel import ChannelKind, may_manage, require_may_manage, require_may_send
from chalicelib.domain.envelope import TARGETED, Envelope, Kind
from chalicelib.domain.events import MessageDeleted
from chalicelib.domain.frames import MessageFrame, StoredMessage
from chalicelib.domain.mentions_only import parse_notify
from chalicelib.domain.messages_api import ReadPage, SendResult
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import DAY
from chalicelib.domain.roster import ChannelCounters
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from chalicelib.ports import Clock, Store
from chalicelib.services.channels import ChannelAccess, ChannelService
from chalicelib.services.delivery import Delivery
from chalicelib.services.event_bus import EventBus
from chalicelib.services.impact import ImpactService
from chalicelib.services.organisations import OrganisationService

GAP_GRACE = 10  # seconds a missing sequence number may still be in flight
MAX_IN_FLIGHT = 8  # concurrent senders to one channel that a gap may be waiting for
MAX_READ = 200
#: What wakes an offline device (Web Push): something new to read, not a reaction or a vote.
WAKING_KINDS = frozenset({Kind.MESSAGE, Kind.POLL})

logger = logging.getLogger(__name__)


class SendInFlight(Unavailable):
    """A send of this message id is still at work (or failed moments ago): resend shortly."""

    code = "send_in_flight"


class StaleEpoch(Conflict):
    """The sender used an old epoch: fetch the roster, distribute a new key, resend."""

    code = "stale_epoch"


class MessagingService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        orgs: OrganisationService,
        channels: ChannelService,
        delivery: Delivery,
        impact: ImpactService,
        events: EventBus | None = None,
    ) -> None:
        self._messages = MessageRecords(store)
        self._events = events
        self._counters = ChannelRecords(store)
        self._clock = clock
        self._orgs = orgs
        self._channels = channels
        self._delivery = delivery
        del impact  # impact counts ride on the message number (records/impact.py): no write here

    def send(self, who: Principal, envelope: Envelope, notify: object = None) -> SendResult:
        """``notify``: the members in "mentions only" mode the text mentions (docs/protocol.md,
        section 17), checked here, used by this send's Web Push and never stored."""
        if envelope.sender_device != who.device_id:
            raise Forbidden("sender_device must be the device that signs the request")
        channel_id = envelope.channel_id
        access = self._channels.access(who, channel_id)
        require_may_send(access.channel, access.membership, envelope.kind)
        target = self._check_target(who, access, envelope)
        now = self._clock.now()
        retention = self._retention_for_sending(who, access, envelope, now)
        abandoned: int | None = None
        marker = self._messages.marker(channel_id, envelope.message_id)
        if marker is not None:  # a resend
            resent = self._already_sent(envelope, marker, target, now)
            if resent is not None:
                return resent
            abandoned = marker.seq  # its first attempt never stored it: this one does
        # After the resend check: a member named then may have left before a retry of a send
        # that was stored; the retry answers as the first attempt did.
        named = self._check_notify(channel_id, notify)
        stored = self._store_message(who, envelope, now, retention, abandoned)
        if stored is None:  # another send of this id marked it first
            return self._lost_race(envelope, target, now)
        message, counters = stored
        if envelope.kind is Kind.DELETE and target is not None:
            self._tombstone(target, message.sender_member, now)
        delivered = self._publish(message, named, counters)
        return SendResult(
            message_id=envelope.message_id,
            channel_id=channel_id,
            seq=message.seq,
            expires_at=message.expires_at,
            duplicate=False,
            online=delivered,
        )

    def _store_message(
        self, who: Principal, envelope: Envelope, now: int, retention: int, abandoned: int | None
    ) -> tuple[StoredMessage, ChannelCounters] | None:
        """Number, mark and store a message: three writes, the number's also counting it for
        the month's impact figures (records/impact.py) and returning the channel's counters
        (the fan-out's roster version). None when another send of the same id marked it first
        (this number then stays a gap).

        On a failure the id is given back unless the message may have landed, so the client's
        resend of the same id goes through at once and is stored exactly once.
        """
        attempt = secrets.token_urlsafe(12)
        seq: int | None = None
        try:
            counters = self._counters.next_seq(envelope.channel_id, month_of(now))
            seq = counters.seq
            message = StoredMessage.model_validate(
                {
                    **envelope.model_dump(),
                    "seq": seq,
                    "sender_member": who.member_id,
                    "stored_at": now,
                    "expires_at": now + retention * DAY,
                }
            )
            if not self._messages.mark(message, attempt=attempt, replacing=abandoned):
                return None
            self._messages.store(message)
        except Exception:
            if seq is not None:  # the marker may have landed (a timeout): free it unless stored
                self._give_back(envelope, attempt, seq)
            raise
        return message, counters

    def _give_back(self, envelope: Envelope, attempt: str, seq: int) -> None:
        """Best effort after a failed attempt: free the id unless its message landed."""
        channel_id = envelope.channel_id
        try:
            if self._messages.get(channel_id, seq) is None:
                self._messages.release(channel_id, envelope.message_id, attempt, self._clock.now())
        except Exception:  # the store is failing: the resend settles it (see _already_sent)
            logger.warning("could not give a failed send's message id back", exc_info=True)

    def _lost_race(self, envelope: Envelope, target: StoredMessage | None, now: int) -> SendResult:
        """Two sends of one id at once: the other marked it; answer as its resend would be."""
        marker = self._messages.marker(envelope.channel_id, envelope.message_id)
        resent = None if marker is None else self._already_sent(envelope, marker, target, now)
        if resent is None:
            raise SendInFlight("this message is being stored; retry shortly")
        return resent

    def _check_notify(self, channel_id: str, notify: object) -> tuple[str, ...]:
        """400 unless ``notify`` lists members of this channel (one read per name: few are)."""
        named = parse_notify(notify)
        strangers = [m for m in named if self._channels.membership(channel_id, m) is None]
        if strangers:
            raise BadRequest(f"notify names {len(strangers)} non-member(s) of this channel")
        return named

    def _publish(self, message: StoredMessage, named: tuple[str, ...], counters: ChannelCounters) -> int:
        """Push to the online devices; the message is stored, so a failure here only costs
        them the live copy (they read it on their next catch-up), never the send. ``counters``:
        as numbering the message returned them, read before the roster (roster_cache.py)."""
        try:
            return self._delivery.publish(
                message.channel_id,
                MessageFrame(message=message),
                seq=message.seq,
                skip_device=message.sender_device,  # it has the message: no echo to pay for
                wake=message.kind in WAKING_KINDS,
                named=named,
                counters=counters,
            )
        except Exception:
            logger.warning("fan-out failed for a stored message", exc_info=True)
            return 0

    def _retention_for_sending(
        self, who: Principal, access: ChannelAccess, envelope: Envelope, now: int
    ) -> int:
        """The channel's retention in days, once the envelope's epoch is known to be current."""
        channel_id = envelope.channel_id
        epoch = self._channels.epoch(channel_id)
        if envelope.epoch != epoch.number:
            raise StaleEpoch(f"the channel is at epoch {epoch.number}; distribute a key for it and resend")
        org = self._orgs.get(who.org_id)
        require_sending_allowed(org, now)  # a pilot past its end that chose to suspend
        # Partners' settings too (22.6); the sender's organisation just read is not read again.
        retention = self._channels.retention_days(access.channel, read=org)
        if now - epoch.started_at >= retention * DAY:
            # Keys older than one retention rotate, so every sealed key can expire one
            # retention after its last message (see services/retention.KeyUsage).
            self._channels.rotate_keys(channel_id)
            raise StaleEpoch("the channel's keys are due for rotation; distribute a new key and resend")
        return retention

    def _check_target(
        self, who: Principal, access: ChannelAccess, envelope: Envelope
    ) -> StoredMessage | None:
        """Closing a poll and deleting for everyone act on another message: its sender or a manager."""
        if envelope.kind not in TARGETED or envelope.target is None:
            return None
        target = self.find(envelope.channel_id, envelope.target)
        if target is None:
            raise NotFound(f"no message {envelope.target} in this channel")
        if envelope.kind is Kind.POLL_CLOSE and target.kind is not Kind.POLL:
            raise BadRequest("only a poll can be closed")
        if envelope.kind is Kind.DELETE and target.kind is Kind.DELETE:
            raise BadRequest("a deletion cannot itself be deleted")
        if envelope.kind is Kind.EDIT:
            _require_editable(who, target)
        if target.sender_member != who.member_id and not may_manage(access.org_role, access.membership):
            raise Forbidden("only its sender or the channel's managers may do this")
        return target

    def find(self, channel_id: str, message_id: str) -> StoredMessage | None:
        """A stored message by its client id."""
        return self._messages.find(channel_id, message_id)

    def _tombstone(self, target: StoredMessage, deleted_by: str, now: int) -> None:
        """Delete for everyone: the ciphertext leaves storage; a bodiless marker keeps the order."""
        bodiless = {"nonce": None, "ciphertext": None, "signature": None}
        deleted = {"deleted": True, "deleted_at": now, "deleted_by": deleted_by}
        self._messages.store(target.model_copy(update={**bodiless, **deleted}))
        if self._events is not None:  # what the message carried (a file) goes with it
            self._events.publish(MessageDeleted(target.channel_id, target.message_id))

    def _already_sent(
        self, envelope: Envelope, marker: IdMarker, target: StoredMessage | None, now: int
    ) -> SendResult | None:
        """A resend: the first copy's receipt, after finishing what its send left undone.

        None when the first send marked a number and never stored the message (it failed
        past ``GAP_GRACE`` ago): this send then stores it afresh, taking the marker over.
        """
        channel_id, message_id = envelope.channel_id, envelope.message_id
        if marker.seq is None:  # an older two-step marker, still pending
            raise SendInFlight("this message is being stored; retry shortly")
        first = self._messages.get(channel_id, marker.seq)
        if first is None:
            if now - marker.stored_at < GAP_GRACE:
                raise SendInFlight("this message is being stored; retry shortly")
            return None
        if first.kind is Kind.DELETE and target is not None and not target.deleted:
            self._tombstone(target, first.sender_member, first.stored_at)  # its send failed before this
        return SendResult(
            message_id=message_id,
            channel_id=channel_id,
            seq=marker.seq,
            expires_at=marker.expires_at,
            duplicate=True,
            online=0,
        )

    def read(self, who: Principal, channel_id: str, *, since: int = 0, limit: int = 100) -> ReadPage:
        """Messages after ``since`` (a sequence number), and the cursor to pass next time."""
        access = self._channels.access(who, channel_id)
        limit = max(1, min(limit, MAX_READ))
        now = self._clock.now()
        # Older than the *current* retention is gone, even before the job re-stamps it.
        oldest = now - self._channels.retention_days(access.channel) * DAY
        page = self._messages.after(channel_id, since, limit)
        landed = self._landed(channel_id, page.messages, since, now)
        cursor = landed[-1].seq if landed else since
        messages = [m for m in landed if m.stored_at > oldest]
        more = page.more and len(messages) == len(page.messages)
        if cursor > since:
            self._messages.save_cursor(who.device_id, channel_id, cursor, now)
        return ReadPage(channel_id=channel_id, messages=messages, cursor=cursor, more=more)

    def _landed(
        self, channel_id: str, page: list[StoredMessage], since: int, now: int
    ) -> list[StoredMessage]:
        """The page up to the first fresh gap: an earlier number there may still be landing.

        Gaps below the retention floor are deleted messages, never in flight.
        """
        cursor = since
        floor: int | None = None
        for index, message in enumerate(page):
            gap = message.seq - cursor - 1
            if 0 < gap <= MAX_IN_FLIGHT and now - message.stored_at < GAP_GRACE:
                if floor is None:
                    floor = self._counters.floor(channel_id)
                if message.seq - 1 > floor:
                    return page[:index]
            cursor = message.seq
        return page

    def seen(self, who: Principal, channel_id: str) -> dict[str, Any]:
        """How far each member of the channel has read: the furthest read cursor of their devices
        (the ones unread counts come from; no write per message). Members of a group or a direct
        conversation see it for what they sent; in a tribe only its managers do."""
        access = self._channels.access(who, channel_id)
        if access.channel.kind is ChannelKind.TRIBE:
            require_may_manage(access.org_role, access.membership)
        furthest: dict[str, int] = dict.fromkeys(self._channels.member_ids(channel_id), 0)
        for device in self._channels.roster_devices(channel_id):
            if device.member_id in furthest:
                seq = self._messages.cursor(device.device_id, channel_id)
                furthest[device.member_id] = max(furthest[device.member_id], seq)
        members = [{"member_id": m, "seq": seq} for m, seq in sorted(furthest.items())]
        return {"channel_id": channel_id, "members": members}

    def sync(self, who: Principal) -> dict[str, Any]:
        """My channels with what is new since this device last read each one."""
        cursors = self._messages.cursors(who.device_id)
        result = []
        for channel in self._channels.list_mine(who):
            seen = cursors.get(channel["channel_id"], 0)
            result.append({**channel, "cursor": seen, "unread": max(0, channel["latest_seq"] - seen)})
        return {"channels": result}


def _require_editable(who: Principal, target: StoredMessage) -> None:
    """Only a text message's own sender edits it (managers delete, they do not put words in
    someone's mouth), and not once it is deleted."""
    if target.kind is not Kind.MESSAGE:
        raise BadRequest("only a text message can be edited")
    if target.sender_member != who.member_id:
        raise Forbidden("only its sender may edit a message")
    if target.deleted:
        raise Conflict("this message was deleted for everyone: it cannot be edited")
