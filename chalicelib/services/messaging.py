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

from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.billing import require_sending_allowed
from chalicelib.domain.channel import may_manage, require_may_send
from chalicelib.domain.envelope import TARGETED, Envelope, Kind
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import DAY, effective_days
from chalicelib.errors import BadRequest, BocageError, ConditionFailed, Conflict, Forbidden, NotFound
from chalicelib.ports import Clock, Item, Store
from chalicelib.services.channels import ChannelAccess, ChannelService
from chalicelib.services.delivery import Delivery, message_frame, public_message
from chalicelib.services.impact import ImpactService
from chalicelib.services.organisations import OrganisationService

GAP_GRACE = 10  # seconds a missing sequence number may still be in flight
MAX_IN_FLIGHT = 8  # concurrent senders to one channel that a gap may be waiting for
PENDING_TTL = 60  # a send that crashed midway frees its message id after this
MAX_READ = 200


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
    ) -> None:
        self._store = store
        self._clock = clock
        self._orgs = orgs
        self._channels = channels
        self._delivery = delivery
        self._impact = impact

    def send(self, who: Principal, envelope: Envelope) -> dict[str, Any]:
        if envelope.sender_device != who.device_id:
            raise Forbidden("sender_device must be the device that signs the request")
        channel_id = envelope.channel_id
        access = self._channels.access(who, channel_id)
        require_may_send(access.channel, access.membership, envelope.kind)
        target = self._check_target(who, access, envelope)
        epoch = self._channels.epoch(channel_id)
        if envelope.epoch != epoch.number:
            raise StaleEpoch(f"the channel is at epoch {epoch.number}; distribute a key for it and resend")

        now = self._clock.now()
        org = self._orgs.get(who.org_id)
        require_sending_allowed(org, now)  # a pilot past its end that chose to suspend
        retention = effective_days(org.retention_days, access.channel.retention_days)
        if now - epoch.started_at >= retention * DAY:
            # Keys older than one retention rotate, so every sealed key can expire one
            # retention after its last message (see services/retention.KeyUsage).
            self._channels.rekey(channel_id, {"type": "rotated", "channel_id": channel_id})
            raise StaleEpoch("the channel's keys are due for rotation; distribute a new key and resend")
        marker_pk, marker_sk = keys.message_marker(channel_id, envelope.message_id)
        try:
            self._store.put(
                {"pk": marker_pk, "sk": marker_sk, "state": "pending", "expires_at": now + PENDING_TTL},
                if_absent=True,
            )
        except ConditionFailed:
            return self._already_sent(channel_id, envelope.message_id)

        seq = self._store.increment(*keys.channel_state(channel_id), "seq")
        expires_at = now + retention * DAY
        pk, sk = keys.message(channel_id, seq)
        item = {
            "pk": pk,
            "sk": sk,
            **envelope.model_dump(mode="json"),
            "seq": seq,
            "sender_member": who.member_id,
            "stored_at": now,
            "expires_at": expires_at,
        }
        self._store.put(item)
        self._store.put(
            {
                "pk": marker_pk,
                "sk": marker_sk,
                "state": "stored",
                "seq": seq,
                "stored_at": now,
                "expires_at": expires_at,
            }
        )
        if envelope.kind is Kind.DELETE and target is not None:
            self._tombstone(target, who, now)
        recipients = self._channels.member_count(channel_id) - 1
        self._impact.record_message(who.org_id, now, max(0, recipients))  # metadata only: counts
        delivered = self._delivery.publish(channel_id, message_frame(item), seq=seq)
        return {
            "message_id": envelope.message_id,
            "channel_id": channel_id,
            "seq": seq,
            "expires_at": expires_at,
            "duplicate": False,
            "online": delivered,
        }

    def _check_target(self, who: Principal, access: ChannelAccess, envelope: Envelope) -> Item | None:
        """Closing a poll and deleting for everyone act on another message: its sender or a manager."""
        if envelope.kind not in TARGETED or envelope.target is None:
            return None
        target = self.find(envelope.channel_id, envelope.target)
        if target is None:
            raise NotFound(f"no message {envelope.target} in this channel")
        if envelope.kind is Kind.POLL_CLOSE and target["kind"] != Kind.POLL:
            raise BadRequest("only a poll can be closed")
        if envelope.kind is Kind.DELETE and target["kind"] == Kind.DELETE:
            raise BadRequest("a deletion cannot itself be deleted")
        if target["sender_member"] != who.member_id and not may_manage(who.role, access.membership):
            raise Forbidden("only its sender or the channel's managers may do this")
        return target

    def find(self, channel_id: str, message_id: str) -> Item | None:
        """A stored message by its client id (through its id marker)."""
        marker = self._store.get(*keys.message_marker(channel_id, message_id))
        if marker is None or marker.get("state") != "stored":
            return None
        return self._store.get(*keys.message(channel_id, int(marker["seq"])))

    def _tombstone(self, target: Item, who: Principal, now: int) -> None:
        """Delete for everyone: the ciphertext leaves storage; a bodiless marker keeps the order."""
        kept = {k: v for k, v in target.items() if k not in ("nonce", "ciphertext", "signature")}
        self._store.put({**kept, "deleted": True, "deleted_at": now, "deleted_by": who.member_id})

    def _already_sent(self, channel_id: str, message_id: str) -> dict[str, Any]:
        marker = self._store.get(*keys.message_marker(channel_id, message_id)) or {}
        if marker.get("state") != "stored":
            raise Conflict("this message is being stored; retry in a minute if it does not show")
        return {
            "message_id": message_id,
            "channel_id": channel_id,
            "seq": marker["seq"],
            "expires_at": marker["expires_at"],
            "duplicate": True,
            "online": 0,
        }

    def read(self, who: Principal, channel_id: str, *, since: int = 0, limit: int = 100) -> dict[str, Any]:
        """Messages after ``since`` (a sequence number), and the cursor to pass next time."""
        access = self._channels.access(who, channel_id)
        limit = max(1, min(limit, MAX_READ))
        now = self._clock.now()
        # Older than the *current* retention is gone, even before the job re-stamps it.
        oldest = now - self._channels.retention_days(access.channel) * DAY
        page = self._store.query(
            f"CHAN#{channel_id}",
            start=keys.message_sk(since + 1),
            end=keys.message_sk(keys.MAX_SEQ),
            limit=limit,
        )
        messages: list[dict[str, Any]] = []
        cursor = since
        floor: int | None = None
        for item in page.items:
            gap = item["seq"] - cursor - 1
            if 0 < gap <= MAX_IN_FLIGHT and now - int(item["stored_at"]) < GAP_GRACE:
                if floor is None:
                    floor = int((self._store.get(*keys.channel_floor(channel_id)) or {}).get("seq", 0))
                if item["seq"] - 1 > floor:
                    break  # an earlier number may still be landing: stop before the gap
            cursor = item["seq"]
            if int(item["stored_at"]) > oldest:
                messages.append(public_message(item))
        more = page.cursor is not None and len(messages) == len(page.items)
        if cursor > since:
            self._store.put(
                keys.record(keys.read_cursor(who.device_id, channel_id), {"seq": cursor, "at": now})
            )
        return {"channel_id": channel_id, "messages": messages, "cursor": cursor, "more": more}

    def sync(self, who: Principal) -> dict[str, Any]:
        """My channels with what is new since this device last read each one."""
        cursors = {
            i["sk"].removeprefix("CURSOR#"): int(i["seq"])
            for i in query_all(self._store, f"DEVICE#{who.device_id}", "CURSOR#")
        }
        result = []
        for channel in self._channels.list_mine(who):
            seen = cursors.get(channel["channel_id"], 0)
            result.append({**channel, "cursor": seen, "unread": max(0, channel["latest_seq"] - seen)})
        return {"channels": result}


def error_frame(error: BocageError, ref: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "status": error.status, **error.to_body()}
    if ref:
        frame["ref"] = ref
    return frame
