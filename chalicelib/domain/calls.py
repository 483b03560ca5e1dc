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
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.billing import sending_allowed
from chalicelib.domain.channel import ChannelKind
from chalicelib.domain.organisation import Organisation, Plan
from chalicelib.errors import Conflict, Forbidden, NotFound, TooManyRequests

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


# -- signalling (docs/protocol.md, section 19) ------------------------------------------------

#: A mesh: each device sends its media to every other, so six is the most a phone carries.
MAX_PARTICIPANTS = 6
#: A call's record lives this long at most; a call still open then has ended.
CALL_TTL = 6 * 3600
#: What a sealed signal (an offer, an answer, a candidate) may weigh, base64 included.
MAX_SEALED_CHARS = 24 * 1024
#: Devices one frame may go to: the other participants, or the devices a ring reaches.
MAX_TARGETS = 64
#: Calls a channel may start per CALL_TTL (its records, ended ones included, live that long): a
#: bound on what removing a member or revoking a device reads, whatever a member rings.
MAX_CALLS_PER_TTL = 60
#: Calls going on at once in one channel (a meeting, and a second one on the side).
MAX_OPEN_CALLS = 3
#: A call nobody answered stops counting as open after this long (the web app rings 45 s).
RING_SECONDS = 60

#: Why the server ends a device's part in a call in its own name (19.4): its member left or was
#: removed from the channel or the organisation, or the device was revoked.
REMOVED = "removed"
REVOKED = "revoked"
SERVER_REASONS = frozenset({REMOVED, REVOKED})


class Signal(StrEnum):
    RING = "ring"  # starts the call (a new call id) or rings more devices into it
    ACCEPT = "accept"  # a rung device answers: it is a participant
    DECLINE = "decline"  # a rung device says no; the call goes on for the others
    JOIN = "join"  # a device of the channel joins an ongoing call
    LEAVE = "leave"  # a participant leaves; the call ends when the last one does
    HANGUP = "hangup"  # a participant ends the call for everyone
    OFFER = "offer"  # sealed SDP between two participants
    ANSWER = "answer"  # sealed SDP between two participants
    CANDIDATE = "candidate"  # a sealed ICE candidate between two participants


#: Signals that carry media parameters (SDP, ICE candidates), and only between participants.
#: Every signal is sealed to each device it goes to (section 19.3); these carry more than a date.
MEDIA_SIGNALS = frozenset({Signal.OFFER, Signal.ANSWER, Signal.CANDIDATE})
#: Signals that make the sending device a participant.
JOINING_SIGNALS = frozenset({Signal.RING, Signal.ACCEPT, Signal.JOIN})
#: Signals that answer a ring: the sender's client seals them to its member's other devices too,
#: which stop ringing.
ANSWERING_SIGNALS = frozenset({Signal.ACCEPT, Signal.DECLINE})


class CallFull(Conflict):
    code = "call_full"


class CallEnded(Conflict):
    code = "call_ended"


class NotInCall(Forbidden):
    code = "not_in_call"


class TooManyCalls(TooManyRequests):
    code = "too_many_calls"


class CallsBusy(Conflict):
    """Three calls already open in the channel: join one (distinct from the hourly cap's 429)."""

    code = "calls_busy"


class CallInProgress(Conflict):
    code = "call_in_progress"


class CallRecord(BaseModel):
    """What the server keeps of a call: who, where, when. Never an SDP, a candidate or a
    credential (those are sealed in the frames and relayed, never stored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    call_id: str
    channel_id: str
    caller_member: str
    caller_device: str
    started_at: int
    ended_at: int | None = None
    #: device id -> member id of the devices in the call now
    participants: dict[str, str] = {}
    #: devices that were ever in the call (for the call's summary)
    joined: list[str] = []
    #: participant-seconds so far (for the impact page): each second with at least two devices
    #: in the call counts once per device in it; accrued whenever the participants change
    participant_seconds: int = 0
    #: when the participants last changed (the start of the interval not yet accrued)
    changed_at: int | None = None
    version: int = 0
    expires_at: int

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


def require_room_for_a_call(calls: list[CallRecord], device_id: str, now: int) -> None:
    """A new call in a channel whose current records are ``calls``: refused past the channel's
    calls per 6 hours (429), past its open calls, or while this device's own ring goes on (409).
    A call counts as open while two devices are in it, or while it rings (RING_SECONDS)."""
    if len(calls) >= MAX_CALLS_PER_TTL:
        raise TooManyCalls(f"this channel started {MAX_CALLS_PER_TTL} calls in 6 hours: try again later")
    open_calls = [
        c
        for c in calls
        if not c.ended
        and c.expires_at > now
        and (len(c.participants) >= 2 or now - c.started_at < RING_SECONDS)
    ]
    if any(c.caller_device == device_id and len(c.participants) < 2 for c in open_calls):
        raise CallInProgress("this device's call is still ringing: hang it up first")
    if len(open_calls) >= MAX_OPEN_CALLS:
        raise CallsBusy(f"{MAX_OPEN_CALLS} calls are going on in this channel: join one of them")


def after_signal(
    call: CallRecord | None,
    *,
    call_id: str,
    channel_id: str,
    signal: Signal,
    device_id: str,
    member_id: str,
    targets: list[str],
    now: int,
) -> CallRecord:
    """The call once this signal from this device is applied; refuses what the rules forbid.

    A ring with a new call id starts the call; every other signal needs a call that has not
    ended; media signals go between participants only; the seventh participant is refused."""
    if call is None:
        if signal is not Signal.RING:
            raise NotFound(f"no call {call_id} in this channel")
        return CallRecord(
            call_id=call_id,
            channel_id=channel_id,
            caller_member=member_id,
            caller_device=device_id,
            started_at=now,
            participants={device_id: member_id},
            joined=[device_id],
            changed_at=now,
            version=1,
            expires_at=now + CALL_TTL,
        )
    if call.ended or call.expires_at <= now:
        raise CallEnded("this call has ended")
    inside = device_id in call.participants
    if signal not in JOINING_SIGNALS and signal is not Signal.DECLINE and not inside:
        raise NotInCall("this device is not in the call")
    if signal in MEDIA_SIGNALS:
        outside = [t for t in targets if t not in call.participants]
        if outside:
            raise NotInCall(f"{len(outside)} target device(s) are not in the call")
        return call
    if signal in JOINING_SIGNALS and not inside:
        return _joined(call, device_id, member_id, now)
    if signal is Signal.LEAVE:
        return without(call, {device_id}, now)
    if signal is Signal.HANGUP:
        return call.model_copy(update={"ended_at": now, "version": call.version + 1, **_accrued(call, now)})
    return call  # a decline, or a ring or join from a device already in the call


def _accrued(call: CallRecord, now: int) -> dict[str, int]:
    """The participant-seconds since the last change, added: a device alone in a call (ringing,
    or left by the others) talks to nobody, so it counts only with two devices or more."""
    start = call.started_at if call.changed_at is None else call.changed_at
    present = len(call.participants)
    since = max(0, now - start) * present if present >= 2 else 0
    return {"participant_seconds": call.participant_seconds + since, "changed_at": now}


def ended_now(before: CallRecord | None, after: CallRecord) -> bool:
    """This change ended the call (it is counted then, once: the write is conditional)."""
    return after.ended and (before is None or not before.ended)


def _joined(call: CallRecord, device_id: str, member_id: str, now: int) -> CallRecord:
    if len(call.participants) >= MAX_PARTICIPANTS:
        raise CallFull(f"this call is full: {MAX_PARTICIPANTS} participants at most")
    joined = call.joined if device_id in call.joined else [*call.joined, device_id]
    participants = {**call.participants, device_id: member_id}
    update = {"participants": participants, "joined": joined, "version": call.version + 1}
    return call.model_copy(update={**update, **_accrued(call, now)})


def without(call: CallRecord, devices: set[str], now: int) -> CallRecord:
    """These devices are out of the call (they left, were revoked, or their member left the
    channel); the call ends with its last participant."""
    participants = {d: m for d, m in call.participants.items() if d not in devices}
    return call.model_copy(
        update={
            "participants": participants,
            "ended_at": now if not participants else None,
            "version": call.version + 1,
            **_accrued(call, now),
        }
    )
