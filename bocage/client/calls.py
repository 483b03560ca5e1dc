"""Calls from the Python SDK (docs/protocol.md, section 19): signals sealed to certified devices.

``Calls`` builds each ``call`` action (every signal sealed to the receiving device's certified
box key: offers, answers and candidates with their media parameters, the others with the time
they were made) and opens each ``call`` frame the server relays, accepting only a signal sealed
by a device the trust view certifies and has not revoked, of a member in the channel's signed
membership.
A frame the server sends on its own account (``reason`` set: a participant removed or revoked)
is a leave or a hang-up only, shown as the server's, and only when this device's own trust view
or the channel's verified membership shows that removal or revocation.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bocage.client.api import ApiError
from bocage.client.crypto import CryptoError, open_call_signal, seal_call_signal
from bocage.client.membership import MembershipRefused
from chalicelib.domain.calls import ANSWERING_SIGNALS, MEDIA_SIGNALS, SERVER_REASONS, Signal
from chalicelib.domain.frames import CallAckFrame, CallAction, CallFrame, CallTarget, ServerFrame
from chalicelib.domain.ids import new_id

if TYPE_CHECKING:
    from bocage.client.certs import TrustView
    from bocage.client.messenger import Messenger


class UntrustedSignal(CryptoError):
    """A call frame from a device the trust view does not certify for this channel, or whose
    sealed payload does not open: never acted on."""


@dataclass(frozen=True)
class CallSignal:
    """A call frame, checked and opened."""

    channel_id: str
    call_id: str
    signal: Signal
    from_device: str
    from_member: str
    at: int
    data: dict[str, Any] | None = None  # the opened offer, answer or candidate
    by_server: str | None = None  # the server's reason when the server sent it (removed, revoked)
    display_name: str = field(default="?")
    #: an accept or a decline from another device of this member: stop ringing, nothing more
    #: (19.4; the server could forge it, and it opens no connection to anyone)
    elsewhere: bool = False


#: How far from this device's clock the date sealed in a ring, an accept, a join, a decline, a
#: leave or a hang-up may be (19.3): older ones are a server replaying them.
FRESH_SECONDS = 300


def new_call_id() -> str:
    return new_id("k")


class Calls:
    def __init__(self, messenger: Messenger) -> None:
        self._m = messenger

    # -- building signals ------------------------------------------------------------------

    def devices(self, channel_id: str) -> dict[str, str]:
        """Device id -> certified box key of the other devices of the channel's certified members."""
        roster = self._m.roster(channel_id)
        return self._m.trust.recipients(
            channel_id, [dict(d) for d in roster["devices"]], watched=self._m.rosters.watched
        )

    def action(
        self,
        channel_id: str,
        call_id: str,
        signal: Signal | str,
        to: Mapping[str, Mapping[str, Any] | None] | list[str],
    ) -> CallAction:
        """A ``call`` action to these devices, sealed to each (its certified box key; never the
        roster's): for an offer, an answer or a candidate ``to`` maps each device to its data; the
        other signals carry the time they were made, and an accept or a decline also goes to this
        member's other devices, so that they stop ringing."""
        signal = Signal(signal)
        payloads: dict[str, Mapping[str, Any]] = {}
        if signal in MEDIA_SIGNALS:
            if not isinstance(to, Mapping):
                raise ValueError(f"a {signal.value} maps each device to its data")
            payloads = {device_id: data or {} for device_id, data in to.items()}
        else:
            named = list(to)
            if signal in (Signal.LEAVE, Signal.HANGUP):  # one revoked meanwhile stops no one hearing it
                certified = self.devices(channel_id)
                named = [d for d in named if d in certified]
            if signal in ANSWERING_SIGNALS:
                named += [d for d in self._own_other_devices(channel_id) if d not in named]
            now = self._m.trust.now()
            payloads = {device_id: {"at": now} for device_id in named}
        keys = self._certified(channel_id, list(payloads))
        targets = [
            CallTarget(
                device_id=device_id,
                sealed=seal_call_signal(
                    self._m.keys, device_id, keys[device_id], channel_id, call_id, signal.value, data
                ),
            )
            for device_id, data in payloads.items()
        ]
        ref = secrets.token_hex(8)
        return CallAction(ref=ref, channel_id=channel_id, call_id=call_id, signal=signal, to=targets)

    def _own_other_devices(self, channel_id: str) -> list[str]:
        """This member's other devices on the channel's roster that the trust view certifies."""
        certified = self.devices(channel_id)
        roster = self._m.roster(channel_id)["devices"]
        mine = self._m.info["member_id"]
        return sorted(
            d["device_id"]
            for d in roster
            if d["member_id"] == mine and d["device_id"] != self._m.device_id and d["device_id"] in certified
        )

    def _certified(self, channel_id: str, device_ids: list[str]) -> dict[str, str]:
        keys = self.devices(channel_id)
        missing = [d for d in device_ids if d not in keys]
        if missing:
            raise UntrustedSignal(f"not a certified device of this channel's members: {', '.join(missing)}")
        return keys

    # -- over the open connection ---------------------------------------------------------------

    def send(self, action: CallAction) -> CallAckFrame:
        """Send over ``messenger.live()``; ApiError when the server refuses (``call_full``, ...)."""
        return self._m._live_session().call(action)

    def ring(self, channel_id: str, devices: list[str] | None = None) -> tuple[str, CallAckFrame]:
        """Start a call: ring these devices (by default every other certified device of the channel)."""
        call_id = new_call_id()
        targets = devices if devices is not None else sorted(self.devices(channel_id))
        return call_id, self.send(self.action(channel_id, call_id, Signal.RING, targets))

    def signal(
        self,
        channel_id: str,
        call_id: str,
        signal: Signal | str,
        to: Mapping[str, Mapping[str, Any] | None] | list[str],
    ) -> CallAckFrame:
        return self.send(self.action(channel_id, call_id, signal, to))

    def signals(self, timeout: float) -> Iterator[CallSignal]:
        """The call frames that arrive within ``timeout`` seconds, checked and opened; a frame
        from an uncertified device is dropped (its warning kept in the trust view)."""
        session = self._m._live_session()
        others: list[ServerFrame] = []  # messages and the rest: kept for whoever reads them next
        try:
            for frame in session.frames(timeout):
                if not isinstance(frame, CallFrame):
                    others.append(frame)
                    continue
                try:
                    yield self.open(frame)
                except UntrustedSignal:
                    continue
        finally:
            session.keep(others)

    # -- receiving -----------------------------------------------------------------------------

    def _require_fresh(self, signal: Signal, data: Mapping[str, Any] | None) -> None:
        at = (data or {}).get("at")
        if not isinstance(at, int) or isinstance(at, bool) or abs(self._m.trust.now() - at) > FRESH_SECONDS:
            raise UntrustedSignal(f"a {signal.value} made more than {FRESH_SECONDS} s from now, or undated")

    def _server_notice(self, frame: CallFrame, signal: Signal) -> CallSignal:
        """The server ends a device's part in its own name (19.4): a leave or a hang-up, nothing
        sealed, for a reason this device sees for itself."""
        if signal not in (Signal.LEAVE, Signal.HANGUP) or frame.sealed is not None:
            raise UntrustedSignal("the server only ever ends a device's part in a call")
        if frame.reason not in SERVER_REASONS or not self._gone(frame):
            raise UntrustedSignal(
                f"the server ends {frame.from_device}'s part ({frame.reason}), which this device "
                "sees neither revoked nor out of the channel"
            )
        return CallSignal(
            frame.channel_id,
            frame.call_id,
            signal,
            frame.from_device,
            frame.from_member,
            frame.at,
            by_server=frame.reason,
        )

    def _gone(self, frame: CallFrame) -> bool:
        """Whether the named device, certified for the named member, is revoked or of a removed
        member in this device's trust view (asked again if not), or that member is out of the
        channel's verified membership."""
        trust = self._m.trust
        view = trust.view()
        if not _revoked_in(view, frame):
            view = trust.view(refresh=True)
        device = view.device(frame.from_device)
        if device is None or device.member_id != frame.from_member:
            return False
        if _revoked_in(view, frame):
            return True
        try:
            return frame.from_member not in trust.members_now(frame.channel_id)
        except (ApiError, MembershipRefused):
            return False  # a log this device cannot read or verify shows nothing

    def _usable(self, device_id: str) -> bool:
        """Whether the device is usable now (not revoked, its member not removed), asking the
        server again once if not: ``Trust.sender`` also accepts a revoked device, rightly for a
        message sent before the revocation, but a live call signal is sent now (19.4)."""
        trust = self._m.trust
        return (
            trust.view().usable(device_id) is not None
            or trust.view(refresh=True).usable(device_id) is not None
        )

    def open(self, frame: CallFrame | Mapping[str, Any]) -> CallSignal:
        """A relayed call frame, checked: UntrustedSignal if its sender is not a certified device of
        a member of the channel, or is revoked (or its member removed), if the server claims
        another member for it, if what is sealed does not open for this device, this channel,
        this call and this signal, or if a signal without media parameters was made more than
        FRESH_SECONDS from now (a replay)."""
        if not isinstance(frame, CallFrame):
            frame = CallFrame.model_validate(dict(frame))
        try:
            signal = Signal(frame.signal)
        except ValueError as exc:
            raise UntrustedSignal(f"unknown call signal {frame.signal!r}") from exc
        if frame.reason is not None:
            return self._server_notice(frame, signal)
        certified, lied = self._m.trust.sender(frame.from_device, frame.from_member, frame.channel_id)
        if certified is None or lied:
            raise UntrustedSignal(f"{frame.from_device} is not a certified device")
        if certified["member_id"] not in self._m.trust.members_now(frame.channel_id):
            raise UntrustedSignal(f"{certified['member_id']} is not in the channel's signed membership")
        if not self._usable(frame.from_device):
            raise UntrustedSignal(f"{frame.from_device} is revoked or of a removed member")
        if frame.sealed is None:
            raise UntrustedSignal(f"a {signal.value} without its sealed payload")
        try:
            data: dict[str, Any] | None = open_call_signal(
                self._m.keys,
                frame.sealed,
                frame.from_device,
                certified["box_public_key"],
                frame.channel_id,
                frame.call_id,
                signal.value,
            )
        except CryptoError as exc:
            raise UntrustedSignal(str(exc)) from exc
        if signal not in MEDIA_SIGNALS:
            self._require_fresh(signal, data)
            data = None
        return CallSignal(
            frame.channel_id,
            frame.call_id,
            signal,
            frame.from_device,
            certified["member_id"],
            frame.at,
            data=data,
            display_name=certified.get("display_name", "?"),
            elsewhere=signal in ANSWERING_SIGNALS
            and certified["member_id"] == self._m.info["member_id"]
            and frame.from_device != self._m.device_id,
        )


def _revoked_in(view: TrustView, frame: CallFrame) -> bool:
    """The frame's device is certified for its member, and revoked or of a removed member."""
    device = view.device(frame.from_device)
    return (
        device is not None
        and device.member_id == frame.from_member
        and view.usable(frame.from_device) is None
    )
