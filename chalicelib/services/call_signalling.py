"""Call signalling over the WebSocket (docs/protocol.md, section 19).

A device sends a ``call`` action naming the channel, the call and the devices it signals; the
server checks who may signal whom, keeps the call's small record (ids and times), and relays
one ``call`` frame to each named device. Every signal is sealed by the sending device to each
receiving one (offers, answers and candidates carry the media parameters; the others a date): the
server relays them and never stores or logs them, and cannot make one up.
"""

from __future__ import annotations

from chalicelib.adapters.records.calls import CallRecords
from chalicelib.domain.calls import (
    MEDIA_SIGNALS,
    REMOVED,
    REVOKED,
    CallRecord,
    Signal,
    after_signal,
    ended_now,
    require_calls_allowed,
    require_room_for_a_call,
    without,
)
from chalicelib.domain.events import ChannelLeft, DeviceRevoked
from chalicelib.domain.frames import CallAckFrame, CallAction, CallFrame
from chalicelib.domain.ids import is_follower_id
from chalicelib.domain.principal import Principal
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, Forbidden
from chalicelib.ports import Clock, Store
from chalicelib.services.channels import ChannelService
from chalicelib.services.delivery import Delivery
from chalicelib.services.event_bus import EventBus
from chalicelib.services.impact import ImpactService
from chalicelib.services.organisations import OrganisationService

#: Conditional writes tried before a busy call is reported (participants joining at once).
ATTEMPTS = 5


class CallSignalling:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        orgs: OrganisationService,
        channels: ChannelService,
        delivery: Delivery,
        impact: ImpactService,
    ) -> None:
        self._calls = CallRecords(store)
        self._impact = impact
        self._clock = clock
        self._orgs = orgs
        self._channels = channels
        self._delivery = delivery

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(ChannelLeft, self.member_left)
        bus.subscribe(DeviceRevoked, self.device_revoked)

    def signal(self, who: Principal, action: CallAction) -> CallAckFrame:
        """Check, apply and relay one signal; nothing is relayed when anything is refused."""
        channel_id = action.channel_id
        access = self._channels.access(who, channel_id)  # another organisation's channel: 404
        if access.membership is None or is_follower_id(who.member_id):
            raise Forbidden("only the channel's members may call in it")
        now = self._clock.now()
        require_calls_allowed(self._orgs.get(who.org_id), access.channel.kind, now)
        if self._channels.roster_device(channel_id, who.device_id) is None:
            raise Forbidden("this device is not in the channel's roster")
        targets = self._targets(channel_id, who, action)
        call = self._apply(who, action, [d for d, _ in targets], now)
        delivered = 0
        for target, member_id in targets:
            frame = CallFrame(
                channel_id=channel_id,
                call_id=action.call_id,
                signal=action.signal.value,
                from_device=who.device_id,
                from_member=who.member_id,
                sealed=next(t.sealed for t in action.to if t.device_id == target),
                at=now,
            )
            delivered += self._delivery.send_to_device(member_id, target, frame)
        return CallAckFrame(
            ref=action.ref,
            call_id=call.call_id,
            signal=action.signal.value,
            delivered=delivered,
            participants=sorted(call.participants),
            ended=call.ended,
        )

    def _targets(self, channel_id: str, who: Principal, action: CallAction) -> list[tuple[str, str]]:
        """(device, member) of each named device, all in the channel's roster, each once, each
        with the signal sealed to it (an accept or a decline names the sender's other devices
        too, so that they stop ringing: the server cannot tell them on its own)."""
        media = action.signal in MEDIA_SIGNALS
        seen: set[str] = set()
        found: list[tuple[str, str]] = []
        for target in action.to:
            if target.device_id == who.device_id:
                raise BadRequest("a device does not signal itself")
            if target.device_id in seen:
                raise BadRequest(f"{target.device_id} is named twice")
            seen.add(target.device_id)
            if not target.sealed:
                raise BadRequest(f"a {action.signal.value} is sealed to each device it goes to")
            device = self._channels.roster_device(channel_id, target.device_id)
            if device is None or is_follower_id(device.member_id):
                raise Forbidden(f"{target.device_id} is not a device of this channel's members")
            found.append((target.device_id, device.member_id))
        if media and not found:
            raise BadRequest(f"a {action.signal.value} goes to at least one device")
        return found

    def _apply(self, who: Principal, action: CallAction, targets: list[str], now: int) -> CallRecord:
        for _ in range(ATTEMPTS):
            before = self._calls.get(action.channel_id, action.call_id)
            if before is None and action.signal is Signal.RING:
                require_room_for_a_call(list(self._calls.of_channel(action.channel_id)), who.device_id, now)
            after = after_signal(
                before,
                call_id=action.call_id,
                channel_id=action.channel_id,
                signal=action.signal,
                device_id=who.device_id,
                member_id=who.member_id,
                targets=targets,
                now=now,
            )
            if after is before:
                return after
            try:
                self._calls.save(before, after)
                self._count_if_ended(who.org_id, before, after)
                return after
            except ConditionFailed:
                continue
        raise Conflict("this call is changing too fast; try again")

    def _count_if_ended(self, org_id: str, before: CallRecord | None, after: CallRecord) -> None:
        """The write that ended the call (only one can: it is conditional) counts its minutes."""
        if ended_now(before, after) and after.ended_at is not None:
            self._impact.record_call(org_id, after.ended_at, after.participant_seconds)

    # -- people who leave -----------------------------------------------------------------

    def member_left(self, event: ChannelLeft) -> None:
        """A member out of the channel is out of its calls: their devices get a hang-up, the
        others a leave for each of their devices."""
        for call in self._channels_calls(event.channel_id):
            gone = {d: m for d, m in call.participants.items() if m == event.member_id}
            if gone:
                self._drop(call, gone, REMOVED)

    def device_revoked(self, event: DeviceRevoked) -> None:
        device = event.device
        for channel_id in self._channels.channel_ids_of(device.member_id):
            for call in self._channels_calls(channel_id):
                if device.device_id in call.participants:
                    self._drop(call, {device.device_id: device.member_id}, REVOKED)

    def _channels_calls(self, channel_id: str) -> list[CallRecord]:
        now = self._clock.now()
        return [c for c in self._calls.of_channel(channel_id) if not c.ended and c.expires_at > now]

    def _drop(self, call: CallRecord, gone: dict[str, str], reason: str) -> None:
        after = call
        for _ in range(ATTEMPTS):
            after = without(call, set(gone), self._clock.now())
            try:
                self._calls.save(call, after)
                channel = self._channels.find(call.channel_id)
                if channel is not None:
                    self._count_if_ended(channel.org_id, call, after)
                break
            except ConditionFailed:
                fresh = self._calls.get(call.channel_id, call.call_id)
                if fresh is None or fresh.ended:
                    return
                call = fresh
        now = self._clock.now()
        for device_id, member_id in gone.items():
            hangup = CallFrame(
                channel_id=call.channel_id,
                call_id=call.call_id,
                signal=Signal.HANGUP.value,
                from_device=device_id,
                from_member=member_id,
                reason=reason,
                at=now,
            )
            self._delivery.send_to_device(member_id, device_id, hangup)
            leave = hangup.model_copy(update={"signal": Signal.LEAVE.value})
            for other, other_member in after.participants.items():
                self._delivery.send_to_device(other_member, other, leave)
