"""Whom a sender names in ``notify``: the mentioned members whose own choice says "mentions only".

The server serves the choices (``GET /channels/{c}/members``, ``notify``) but is not believed:
a choice counts only if a device this client's trust view certifies for that member signed it,
for this organisation and channel (docs/protocol.md, section 17). So a server that forges or
replays someone's choice never learns when that member is mentioned; it learns it only for the
members who chose it themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bocage.client.certs import TrustView
from chalicelib.domain.statements import NOTIFY, StatementError, check_shape, verify_checked


def mentions_only(view: TrustView, org_id: str, channel_id: str, statements: Iterable[Any]) -> set[str]:
    """The members whose latest valid choice for this channel is "mentions only"."""
    latest: dict[str, dict[str, Any]] = {}
    for raw in statements:
        try:
            checked = check_shape(raw, NOTIFY)
        except StatementError:
            continue
        if checked["org_id"] != org_id or checked["channel_id"] != channel_id:
            continue
        signer = view.usable(checked["by_device"])
        if signer is None or signer.member_id != checked["member_id"]:
            continue
        try:
            verify_checked(checked, signer.sign_public_key)
        except StatementError:
            continue
        kept = latest.get(checked["member_id"])
        if kept is None or checked["issued_at"] > kept["issued_at"]:
            latest[checked["member_id"]] = checked
    return {member_id for member_id, choice in latest.items() if choice["mentions_only"]}


def to_notify(
    view: TrustView, org_id: str, channel_id: str, mentioned: Iterable[str], statements: Iterable[Any]
) -> list[str]:
    """The mentioned members to name in ``notify``, in mention order."""
    quiet = mentions_only(view, org_id, channel_id, statements)
    return [m for m in dict.fromkeys(mentioned) if m in quiet]
