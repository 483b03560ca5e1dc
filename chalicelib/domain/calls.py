"""Calls (pro plan): who may start one, and the short-lived TURN credentials a member's device
uses to relay its media through the organisation's TURN server.

The credentials follow the shared-secret scheme TURN servers implement (coturn's
``use-auth-secret``): the username is the expiry time and an opaque user id, the password the
HMAC-SHA1 of that username under a secret only Bocage and the TURN server know. The TURN server
checks both without calling back; nothing is stored. The user id is the member's id, so the
TURN server's log names a member, never a device or a channel.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.billing import sending_allowed
from chalicelib.domain.channel import ChannelKind
from chalicelib.domain.organisation import Organisation, Plan
from chalicelib.errors import Forbidden

#: Plans whose members may call; a pilot while it runs (it tries the pro offer), never a
#: suspended one.
CALL_PLANS = frozenset({Plan.PRO, Plan.PILOT})
#: Channels a call happens in: a tribe is a broadcast, not a meeting.
CALL_KINDS = frozenset({ChannelKind.GROUP, ChannelKind.DIRECT})


class CallsNotInPlan(Forbidden):
    code = "calls_not_in_plan"


class NotACallChannel(Forbidden):
    code = "not_a_call_channel"


def require_calls_allowed(org: Organisation, kind: ChannelKind, at: int) -> None:
    """403 with the reason when this organisation's plan, or this kind of channel, has no calls."""
    if org.plan not in CALL_PLANS:
        raise CallsNotInPlan("calls are part of the pro plan: ask your organisation's owner to move to pro")
    if not sending_allowed(org, at):
        raise CallsNotInPlan("calls are suspended with sending: this organisation's pilot has ended")
    if kind not in CALL_KINDS:
        raise NotACallChannel("calls happen in groups and direct conversations, not in tribes")


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: int


def turn_credential(secret: str, user: str, now: int, ttl: int) -> TurnCredential:
    """``username = "<expiry>:<user>"``, ``credential = base64(HMAC-SHA1(secret, username))``."""
    expires_at = now + ttl
    username = f"{expires_at}:{user}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires_at)


def ice_servers(
    stun_urls: tuple[str, ...], turn_urls: tuple[str, ...], credential: TurnCredential | None
) -> list[dict[str, Any]]:
    """The list a browser's ``RTCPeerConnection`` takes (``iceServers``), as the CLI prints it."""
    servers: list[dict[str, Any]] = [{"urls": list(stun_urls)}] if stun_urls else []
    if turn_urls and credential is not None:
        servers.append(
            {"urls": list(turn_urls), "username": credential.username, "credential": credential.credential}
        )
    return servers
