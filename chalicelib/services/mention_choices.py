""" "@mention me only": members' signed choices per channel (docs/protocol.md, section 17).

The server keeps each member's latest choice for a channel and serves them with the channel's
member list, which a sender's client fetches only when its text mentions someone. It checks the
statement (the caller's own, signed by the calling device) but clients never trust it for that:
they verify it against their own trust view before naming anyone in ``notify``.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.records.mention_choices import MentionChoiceRecords
from chalicelib.domain.events import ChannelLeft, DeviceRevoked
from chalicelib.domain.mentions_only import CLOCK_SKEW, MentionChoice, check_choice
from chalicelib.domain.principal import Principal
from chalicelib.errors import Forbidden, NotFound
from chalicelib.ports import Clock, Store
from chalicelib.services.channels import ChannelService
from chalicelib.services.event_bus import EventBus
from chalicelib.services.organisations import OrganisationService


class MentionChoices:
    def __init__(
        self, store: Store, clock: Clock, orgs: OrganisationService, channels: ChannelService
    ) -> None:
        self._records = MentionChoiceRecords(store)
        self._clock = clock
        self._orgs = orgs
        self._channels = channels

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(ChannelLeft, self.member_left)
        bus.subscribe(DeviceRevoked, self.device_revoked)

    def member_left(self, event: ChannelLeft) -> None:
        """A member out of the channel has no choice there any more (nor if they come back)."""
        self._records.delete(event.channel_id, event.member_id)

    def device_revoked(self, event: DeviceRevoked) -> None:
        """A choice signed by a revoked device no longer verifies for senders, who would never
        name its member: the server forgets it too, so the member is woken by every message
        again (never silenced by a choice nobody can check) until they choose anew."""
        device = event.device
        for channel_id in self._channels.channel_ids_of(device.member_id):
            kept = self._records.get(channel_id, device.member_id)
            if kept is not None and kept.by_device == device.device_id:
                self._records.delete(channel_id, device.member_id)

    def choose(self, who: Principal, channel_id: str, statement: object) -> MentionChoice:
        """A member's own choice, signed by the calling device; an older one than stored is
        accepted and ignored (the latest counts), so a retried request converges, and the answer
        is the choice kept."""
        access = self._channels.access(who, channel_id)
        if access.membership is None:
            raise Forbidden("you are not a member of this channel")
        device = self._orgs.get_device(who.device_id)
        if device is None or device.is_revoked:
            raise NotFound("the calling device is unknown")
        choice = check_choice(
            statement,
            org_id=who.org_id,
            channel_id=channel_id,
            member_id=who.member_id,
            device_id=who.device_id,
            sign_public_key=device.sign_public_key,
            now=self._clock.now(),
        )
        if not self._records.save(choice, not_after=self._clock.now() + CLOCK_SKEW):
            return self._records.get(channel_id, who.member_id) or choice  # a newer one stands: say which
        self._forget_if_revoked_meanwhile(choice)
        return choice

    def _forget_if_revoked_meanwhile(self, choice: MentionChoice) -> None:
        """A revocation that landed between the check above and the write found nothing to
        forget: read the device again after writing (the revocation handler reads choices after
        its own write, so one of the two sees the other) and forget the choice it signed."""
        device = self._orgs.get_device(choice.by_device)
        if device is not None and not device.is_revoked:
            return
        kept = self._records.get(choice.channel_id, choice.member_id)
        if kept is not None and kept.by_device == choice.by_device:
            self._records.delete(choice.channel_id, choice.member_id)

    def members(self, who: Principal, channel_id: str) -> dict[str, Any]:
        """The channel's member list (access checked there) with every member's latest choice."""
        answer = self._channels.members(who, channel_id)
        answer["notify"] = [c.statement for c in self._records.of_channel(channel_id)]
        return answer
