"""Which followers of a public tribe get its sender keys, as this device verifies them
(docs/protocol.md, 16.3): never on the server's word.

A roster device is a follower when its certificate is a follower certificate. It is trusted in
this channel only when its join ticket names this channel and organisation and was signed by a
device certified in this device's view, not revoked and of a member then an admin or owner, or
an author of the channel in its verified membership; and when its certificate was signed by
that ticket's key for exactly the roster's keys and ids. Only in a channel whose verified log
is a ``tribe``: elsewhere a manager's ticket would be an unseen reader (no signed "joined").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bocage.client.certs import ADMIN_ROLES, TrustView, TrustWarning
from chalicelib.domain.followers import verify_follower_cert, verify_join_ticket
from chalicelib.domain.membership_log import ENTRY_ORDER_SKEW_SECONDS, LogState
from chalicelib.domain.statements import FOLLOWER_CERT, TICKET, StatementError, check_shape


def is_follower_device(device: Mapping[str, Any]) -> bool:
    cert = device.get("device_cert")
    return isinstance(cert, Mapping) and cert.get("purpose") == FOLLOWER_CERT


def verified_follower(
    device: Mapping[str, Any],
    channel_id: str,
    org_id: str,
    view: TrustView,
    state: LogState,
    org_role: Callable[[str, int], str | None] | None = None,
) -> dict[str, str] | TrustWarning:
    """The follower's keys and name, from their certificate, or why they are refused. ``org_id``
    is the tribe's host and ``org_role`` the roles in it (a partner's member verifies the host's
    followers with the host's admins, 22.6); by default the view's own."""
    device_id, member_id = str(device.get("device_id")), str(device.get("member_id"))

    def refused(message: str) -> TrustWarning:
        return TrustWarning("uncertified_follower", f"{device_id}: {message}", member_id, device_id)

    if state.kind != "tribe":  # a ticket naming a group or a direct conversation makes nobody a reader
        return refused(f"followers are a public tribe's; this channel's signed log is a {state.kind!r}")
    try:
        shape = check_shape(device.get("ticket"), TICKET)
        issued_at = int(shape["issued_at"])
        if issued_at < state.created_at - ENTRY_ORDER_SKEW_SECONDS:
            return refused("its join ticket is dated before the tribe was created")
        issuer = view.usable(str(shape["issuer_device"]), issued_at)
        if issuer is None:
            return refused("its join ticket was not signed by a certified, unrevoked device")
        role = (org_role or view.org_role)(issuer.member_id, issued_at)
        if role not in ADMIN_ROLES and state.members.get(issuer.member_id) != "author":
            return refused("its join ticket was signed by someone who does not manage this tribe")
        ticket = verify_join_ticket(
            shape, org_id=org_id, channel_id=channel_id, issuer_sign_key=issuer.sign_public_key
        )
        cert = verify_follower_cert(
            device.get("device_cert"),
            ticket,
            sign_public_key=str(device.get("sign_public_key")),
            box_public_key=str(device.get("box_public_key")),
        )
    except (StatementError, ValueError) as exc:  # a key that is no base64url: refused, never a crash
        return refused(str(exc))
    if (cert["device_id"], cert["follower_id"]) != (device_id, member_id):
        return refused("the roster names another device or follower than its certificate")
    if not _before_withdrawal(view, issuer.device_id, issuer.member_id, int(cert["issued_at"])):
        return refused("certified after its join ticket's signer was revoked or removed")
    # Anyone with the poster can certify a "follower" over a member's public keys: the device
    # stays the member's, or the server could file her votes under that follower and refuse her posts.
    if view.device(device_id) is not None:
        return refused(
            "its keys are a certified member device's: a follower certificate cannot take them over"
        )
    return {
        "device_id": device_id,
        "member_id": member_id,
        "sign_public_key": str(cert["sign_public_key"]),
        "box_public_key": str(cert["box_public_key"]),
        "display_name": str(cert["display_name"]),
    }


def _before_withdrawal(view: TrustView, device_id: str, member_id: str, at: int) -> bool:
    """A join link dies with its signer's device or membership (as a member ticket does)."""
    revoked, removed = view.revoked_at(device_id), view.removed_at(member_id)
    return (revoked is None or at < revoked) and (removed is None or at < removed)
