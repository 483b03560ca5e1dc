"""Web Push: waking the devices of a channel that have no live WebSocket.

A device registers its own subscription (and removes it); a revoked device loses it. For each
new message (or poll) the fan-out asks ``notify`` with the devices it reached live: every other
device of the channel's roster with a subscription gets one push, unless it muted the channel,
its member chose "mentions only" there and the sender did not name them, or it got one in the
last ``COALESCE`` seconds (a slot in the store, with a TTL: one push per device per burst,
not per message). The payload names the channel by its opaque id only, sealed for the device;
the device shows the channel's name it knows itself (docs/protocol.md, "Web Push").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from chalicelib.adapters.records.mention_choices import MentionChoiceRecords
from chalicelib.adapters.records.push import PushRecords
from chalicelib.domain.events import DeviceRevoked
from chalicelib.domain.mentions_only import wakes
from chalicelib.domain.principal import Principal
from chalicelib.domain.push import PushSubscription, check_endpoint, check_keys
from chalicelib.domain.roster import ChannelCounters
from chalicelib.errors import NotConfigured, NotFound
from chalicelib.ports import Clock, PushRequest, Store, WebPush
from chalicelib.services.event_bus import EventBus
from chalicelib.services.roster_cache import RosterCache, RosterEntry

#: At most one push per device in this many seconds.
COALESCE = 5
PRECHECK = 8  # subscriptions a sender reads, at most, to tell whether a wake-up is worth queueing


class PushNotifications:
    def __init__(self, store: Store, clock: Clock, sender: WebPush | None, services: Iterable[str]) -> None:
        self._records = PushRecords(store)
        self._roster = RosterCache(store, clock)  # read on every message: kept while its version holds
        self._choices = MentionChoiceRecords(store)
        self._clock = clock
        self._sender = sender
        self._services = tuple(services)

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(DeviceRevoked, self.device_revoked)

    @property
    def enabled(self) -> bool:
        return self._sender is not None

    @property
    def public_key(self) -> str | None:
        """The VAPID public key devices subscribe with; None when pushes are not configured."""
        return None if self._sender is None else self._sender.public_key

    def register(
        self,
        who: Principal,
        device_id: str,
        endpoint: str,
        p256dh: str,
        auth: str,
        *,
        muted: Iterable[str] = (),
    ) -> PushSubscription:
        """The caller's own device only: any other id, of this organisation or another, is 404.
        Registering again replaces the subscription (a new endpoint, another list of muted channels)."""
        self._own(who, device_id)
        if self._sender is None:
            raise NotConfigured("Web Push is not configured on this server")
        check_keys(p256dh, auth)
        subscription = PushSubscription(
            device_id=device_id,
            member_id=who.member_id,
            endpoint=check_endpoint(endpoint, self._services),
            p256dh=p256dh,
            auth=auth,
            created_at=self._clock.now(),
            muted=tuple(sorted(set(muted))),
        )
        self._records.save(subscription)
        return subscription

    def remove(self, who: Principal, device_id: str) -> None:
        self._own(who, device_id)
        self._records.delete(device_id)

    def device_revoked(self, event: DeviceRevoked) -> None:
        self._records.delete(event.device.device_id)

    @staticmethod
    def _own(who: Principal, device_id: str) -> None:
        if device_id != who.device_id:
            raise NotFound("no such device")

    def anyone_to_wake(
        self, channel_id: str, reached: Iterable[str], counters: ChannelCounters | None = None
    ) -> bool:
        """Whether ``notify`` may have a device to push to: False only when no device of the
        channel's roster outside ``reached`` has a subscription that leaves the channel unmuted,
        so a send hands nothing to the queue. Reads at most ``PRECHECK`` subscriptions (past
        them: True, the consumer reads the rest), so the sender's cost stays bounded.
        ``counters``: the channel's, as the send's numbering returned them (no read of the
        roster version)."""
        if self._sender is None:
            return False
        for read, device in enumerate(self._offline(channel_id, reached, counters)):
            if read == PRECHECK or self._subscription(channel_id, device) is not None:
                return True
        return False

    def notify(
        self,
        channel_id: str,
        reached: Iterable[str],
        named: Iterable[str] = (),
        counters: ChannelCounters | None = None,
    ) -> int:
        """Push to the channel's devices not in ``reached``; returns how many pushes went.

        ``named``: the members the sender's ``notify`` names; a member who chose "mentions
        only" here is woken only when named (the choices are read once, and only when some
        device is left to push to). ``counters``: as for ``anyone_to_wake`` (a sender pushing
        inline, with no queue); a queue's consumer reads the roster version itself."""
        if self._sender is None:
            return 0
        subscriptions = [
            s
            for d in self._offline(channel_id, reached, counters)
            if (s := self._subscription(channel_id, d)) is not None
        ]
        if subscriptions:
            quiet = self._choices.mentions_only(channel_id)
            subscriptions = [s for s in subscriptions if wakes(s.member_id, quiet, named)]
        until = self._clock.now() + COALESCE
        due = [s for s in subscriptions if self._records.take_slot(s.device_id, until)]
        if not due:
            return 0
        payload = json.dumps({"channel_id": channel_id}, separators=(",", ":")).encode()
        gone = self._sender.send_many(
            [PushRequest(s.device_id, s.endpoint, s.p256dh, s.auth, payload) for s in due]
        )
        for device_id in gone:
            self._records.delete(device_id)
        return len(due) - len(gone)

    def _offline(
        self, channel_id: str, reached: Iterable[str], counters: ChannelCounters | None = None
    ) -> Iterator[RosterEntry]:
        skip = set(reached)
        return (d for d in self._roster.devices(channel_id, counters) if d.device_id not in skip)

    def _subscription(self, channel_id: str, device: RosterEntry) -> PushSubscription | None:
        """The device's subscription, unless it has none or it mutes the channel."""
        subscription = self._records.get(device.device_id)
        return None if subscription is None or channel_id in subscription.muted else subscription
