"""Public tribes and their followers (docs/protocol.md, section 16): the join link a tribe's
manager publishes and the checks of the statements that certify a follower.

Pure and shared by the server (which refuses with a 400 what no honest client sends) and the
Python client (which seals a tribe's sender keys to a follower only once these checks pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.encoding import b64d
from chalicelib.domain.ids import device_id_for, follower_id_for
from chalicelib.domain.statements import (
    FOLLOWER_CERT,
    HISTORY,
    STATEMENT_CLOCK_SKEW,
    TICKET,
    StatementError,
    verify_statement,
)
from chalicelib.domain.x25519 import UnsafeBoxKey, check_box_public_key

#: A poster stays on a wall: a join ticket may be valid for up to five years.
MAX_JOIN_TICKET_SECONDS = 5 * 365 * 86400
JOIN_PROOF_LABEL = "bocage-join"
DAY = 86400
#: How far ahead of a clock a recent-history choice may be dated (section 23): further, it is
#: refused (a wrong clock, or a signer planting a date no real later choice could beat).
HISTORY_CLOCK_SKEW = STATEMENT_CLOCK_SKEW


class JoinLink(BaseModel):
    """A public tribe's multi-use join link: the manager's signed ticket, its limits, its state."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    link_id: str
    org_id: str
    channel_id: str
    ticket: dict[str, Any]
    created_by: str
    created_at: int
    cap: int | None = None
    revoked_at: int | None = None
    joined: int = 0

    @property
    def expires_at(self) -> int:
        return int(self.ticket["expires_at"])

    def refusal(self, now: int) -> str | None:
        """Why this link takes no more followers (the 410's message), or None."""
        if self.revoked_at is not None:
            return "this join link was revoked; ask the organisation for its new poster"
        if now >= self.expires_at:
            return "this join link has expired; ask the organisation for its new poster"
        if self.cap is not None and self.joined >= self.cap:
            return f"this join link has reached its cap of {self.cap} followers"
        return None

    def status(self, followers: int) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "link_id": self.link_id,
            "expires_at": self.expires_at,
            "cap": self.cap,
            "joined": self.joined,
            "revoked": self.revoked_at is not None,
            "followers": followers,
        }


def join_url(app_url: str, api_url: str, link: JoinLink) -> str:
    """The link without its secret: the manager's client appends ``ticket`` and ``root``."""
    query = (
        f"server={quote(api_url, safe='')}&link={link.link_id}&org={link.org_id}&channel={link.channel_id}"
    )
    return f"{app_url}/#/join?{query}"


@dataclass(frozen=True)
class JoinTarget:
    """What a scanned join link tells a device: where, which link and tribe, and its secrets."""

    server: str
    link: str
    org: str
    channel: str
    ticket_seed: bytes
    root: str


def parse_join_url(url: str) -> JoinTarget:
    """A join link as scanned from a poster; ValueError naming what is missing."""
    fragment = urlsplit(url.strip()).fragment
    if not fragment.startswith("/join?"):
        raise ValueError("not a join link: its fragment must start with /join?")
    params = {name: values[0] for name, values in parse_qs(fragment.split("?", 1)[1]).items()}
    missing = [n for n in ("server", "link", "org", "channel", "ticket", "root") if not params.get(n)]
    if missing:
        raise ValueError(f"this join link lacks {', '.join(missing)}: scan the whole poster's code")
    seed = b64d(params["ticket"])
    if len(seed) != 32:
        raise ValueError("this join link's ticket is not a 32-byte key")
    return JoinTarget(
        server=params["server"].rstrip("/"),
        link=params["link"],
        org=params["org"],
        channel=params["channel"],
        ticket_seed=seed,
        root=params["root"],
    )


def join_proof_message(link_id: str, box_public_key: str) -> bytes:
    """What a joining device signs with its new key: it holds the key, and binds its box key."""
    return f"{JOIN_PROOF_LABEL}\n{link_id}\n{box_public_key}".encode()


def verify_join_ticket(
    ticket: object, *, org_id: str, channel_id: str, issuer_sign_key: str
) -> dict[str, Any]:
    """A follower ticket of this tribe, signed by the device whose key is given."""
    checked = verify_statement(ticket, TICKET, issuer_sign_key)
    if checked["grant"] != "follower" or (checked["org_id"], checked["channel_id"]) != (org_id, channel_id):
        raise StatementError("ticket: expected a follower ticket of this tribe")
    issued, expires = int(checked["issued_at"]), int(checked["expires_at"])
    if not issued < expires <= issued + MAX_JOIN_TICKET_SECONDS:
        raise StatementError("ticket: expires_at must follow issued_at, within five years")
    return checked


def verify_follower_cert(
    cert: object, ticket: dict[str, Any], *, sign_public_key: str, box_public_key: str
) -> dict[str, Any]:
    """A follower device's certificate: signed by the join ticket's key, naming this device's
    keys, issued before the ticket expired, with a box key anyone's seal is safe to."""
    checked = verify_statement(cert, FOLLOWER_CERT, str(ticket["ticket_key"]))
    raw = b64d(sign_public_key)
    expected = {
        "org_id": ticket["org_id"],
        "channel_id": ticket["channel_id"],
        "ticket_key": ticket["ticket_key"],
        "sign_public_key": sign_public_key,
        "box_public_key": box_public_key,
        "device_id": device_id_for(raw),
        "follower_id": follower_id_for(raw),
    }
    wrong = sorted(name for name, value in expected.items() if checked[name] != value)
    if wrong:
        raise StatementError(f"follower_cert: {', '.join(wrong)} do not match this device and join link")
    if int(checked["issued_at"]) > int(ticket["expires_at"]):
        raise StatementError("follower_cert: issued after its join link expired")
    try:
        check_box_public_key(box_public_key)
    except UnsafeBoxKey as exc:
        raise StatementError(str(exc)) from exc
    return checked


class HistoryChoice(BaseModel):
    """A public tribe's latest "last N days" choice (section 23) and the statement proving it."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    channel_id: str
    days: int
    issued_at: int
    by_device: str
    statement: dict[str, Any]


def verify_history(statement: object, *, org_id: str, channel_id: str, sign_public_key: str) -> HistoryChoice:
    """A recent-history choice for this tribe signed by the key given (StatementError if not).

    Whether the signer is one of the tribe's managers is for the caller to decide: the server
    from its records, an author's device from its own verified view (section 23)."""
    checked = verify_statement(statement, HISTORY, sign_public_key)
    if (checked["org_id"], checked["channel_id"]) != (org_id, channel_id):
        raise StatementError("history: expected a choice for this organisation's tribe")
    return HistoryChoice(
        channel_id=channel_id,
        days=checked["days"],
        issued_at=checked["issued_at"],
        by_device=checked["by_device"],
        statement=checked,
    )


def dated_ahead(issued_at: int, now: int) -> bool:
    """Whether a choice dated ``issued_at`` is more than HISTORY_CLOCK_SKEW ahead of ``now``."""
    return issued_at > now + HISTORY_CLOCK_SKEW


def window_start(now: int, days: int) -> int:
    """Where a new follower's history starts: 00:00 UTC ``days`` days before today's (section
    23); with 0 days, now (they read from joining)."""
    return now if days <= 0 else now - now % DAY - days * DAY
