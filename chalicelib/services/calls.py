"""Calls: what a member's device needs before it rings anyone (ICE servers and TURN credentials).

Only a member of the channel gets them (an admin who is not in it does not), only where the
plan has calls; the secret never leaves the server, each answer is good for ``turn_ttl``
seconds (a longer call asks again and restarts ICE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.domain.calls import ice_servers, require_calls_allowed, turn_credential
from chalicelib.domain.principal import Principal
from chalicelib.errors import Forbidden
from chalicelib.ports import Clock
from chalicelib.services.channels import ChannelService
from chalicelib.services.organisations import OrganisationService
from chalicelib.settings import Settings


class CallService:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        orgs: OrganisationService,
        channels: ChannelService,
        turn_secret: Callable[[], str | None] | None = None,
    ) -> None:
        self._settings = settings
        #: Read when a member first asks (on AWS, from SSM): never at start.
        self._turn_secret = turn_secret or (lambda: settings.turn_secret)
        self._clock = clock
        self._orgs = orgs
        self._channels = channels

    def ice(self, who: Principal, channel_id: str) -> dict[str, Any]:
        access = self._channels.access(who, channel_id)
        if access.membership is None:
            raise Forbidden("only the channel's members may call in it")
        now = self._clock.now()
        require_calls_allowed(self._orgs.get(who.org_id), access.channel.kind, now)
        s = self._settings
        secret = self._turn_secret() if s.turn_urls else None
        relay = bool(s.turn_urls and secret)
        credential = turn_credential(secret or "", who.member_id, now, s.turn_ttl) if relay else None
        return {
            "channel_id": channel_id,
            "ice_servers": ice_servers(s.stun_urls, s.turn_urls, credential),
            "relay": relay,
            "expires_at": credential.expires_at if credential else now + s.turn_ttl,
        }
