"""The REST client: every call signed by the device (or operator) key.

Standard library HTTP only, so scripts need nothing beyond PyNaCl.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast
from urllib.parse import urlencode

from nacl.signing import SigningKey

from bocage.client.profile import DeviceKeys, OperatorKey, sign_token
from bocage.client.results import (
    AuditEntry,
    AuditPage,
    Channel,
    ChannelList,
    Device,
    Document,
    Health,
    Invitation,
    KeysStored,
    MembersPage,
    MemberWithDevices,
    MessagePage,
    Receipt,
    Roster,
    RosterDevice,
    RosterPage,
    SealedKey,
    SealedKeys,
    WhoAmI,
)
from chalicelib.domain.auth_token import SCHEME
from chalicelib.domain.encoding import b64e
from chalicelib.domain.envelope import Envelope
from chalicelib.domain.followers import join_proof_message
from chalicelib.domain.invitation import activation_proof_message

#: A signed statement (docs/protocol.md, 13.1), sent and received as a JSON object.
Statement = dict[str, Any]


class ApiError(Exception):
    """An error answer from the server: status, stable code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BocageClient:
    """Every route of the REST API as a method; ``request`` is the signed transport under them."""

    def __init__(
        self,
        server: str,
        *,
        device: DeviceKeys | None = None,
        operator: OperatorKey | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        if not server.startswith(("http://", "https://")):
            raise ValueError(f"the server URL must start with http:// or https://, not {server!r}")
        self.server = server.rstrip("/")
        self._signer: tuple[SigningKey, str] | None = None
        if device is not None:
            self._signer = (device.signing, device.device_id)
        elif operator is not None:
            self._signer = (operator.signing, operator.key_id)
        self._clock = clock
        self._timeout = timeout

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """One signed call; an error answer raises ApiError, a reply that is not ours too."""
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        query = {k: v for k, v in (query or {}).items() if v is not None}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._signer is not None:
            key, subject = self._signer
            token = sign_token(key, subject, method, path, query, data, now=int(self._clock()))
            headers["Authorization"] = f"{SCHEME} {token}"
        url = self.server + path + (f"?{urlencode(query)}" if query else "")
        req = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            url, data=data if body is not None else None, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310 (the scheme is checked in __init__)
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            raise _api_error(err.code, err.read()) from None
        if not payload:
            return {}
        try:
            result = json.loads(payload)
        except ValueError:
            result = None
        if not isinstance(result, dict):
            # a proxy's page, a wrong URL: say so rather than fail to parse
            raise ApiError(status, "bad_response", f"not a Bocage API reply from {self.server}")
        return result

    def _paged(self, path: str) -> Iterator[dict[str, Any]]:
        """Every page of a listing, following the server's cursor."""
        cursor: str | None = None
        while True:
            page = self.request("GET", path, query={"cursor": cursor} if cursor else None)
            yield page
            cursor = page.get("cursor")
            if not cursor:
                return

    # -- identity and organisation -------------------------------------------------------------

    def health(self) -> Health:
        return cast(Health, self.request("GET", "/health"))

    def create_org(self, name: str, plan: str = "free", owner_name: str = "Owner") -> Document:
        """A new organisation and its owner's invitation (operator)."""
        return self.request("POST", "/orgs", {"name": name, "plan": plan, "owner_name": owner_name})

    def activate(
        self,
        code: str,
        keys: DeviceKeys,
        *,
        device_name: str = "",
        display_name: str | None = None,
        member_cert: Statement | None = None,
        device_cert: Statement | None = None,
    ) -> Document:
        proof = keys.signing.sign(activation_proof_message(code, keys.box_public_key)).signature
        body: dict[str, Any] = {
            "code": code,
            "sign_public_key": keys.sign_public_key,
            "box_public_key": keys.box_public_key,
            "proof": b64e(proof),
            "device_name": device_name,
            "member_cert": member_cert,
            "device_cert": device_cert,
        }
        if display_name:
            body["display_name"] = display_name
        return self.request("POST", "/activate", body)

    def whoami(self) -> WhoAmI:
        return cast(WhoAmI, self.request("GET", "/me"))

    def rename_org(self, name: str) -> Document:
        """Admins: the organisation's new name (display only, in no signed statement)."""
        return self.request("PUT", "/org", {"name": name})

    def invite(
        self,
        display_name: str,
        *,
        role: str = "member",
        email: str | None = None,
        ticket: Statement | None = None,
    ) -> Invitation:
        """The ticket's secret stays here: the caller appends it to the URL's fragment (13.4)."""
        body: dict[str, Any] = {"display_name": display_name, "role": role}
        if email:
            body["email"] = email
        if ticket is not None:
            body["ticket"] = ticket
        return cast(Invitation, self.request("POST", "/invitations", body))

    def link_device(self, ticket: Statement) -> Invitation:
        return cast(Invitation, self.request("POST", "/devices/link", {"ticket": ticket}))

    def member_listing(self) -> tuple[list[Document], list[Document]]:
        """Every member and every device as the server lists them, certificates included."""
        members: list[Document] = []
        devices: list[Document] = []
        for page in self._paged("/members"):
            members.extend(page["members"])
            devices.extend(page["devices"])
        return members, devices

    def members(self) -> list[MemberWithDevices]:
        """Every member with their devices, gathered over all pages."""
        members: dict[str, MemberWithDevices] = {}
        devices: list[Device] = []
        for page in self._paged("/members"):
            for m in cast(MembersPage, page)["members"]:
                members[m["member_id"]] = cast(MemberWithDevices, {**m, "devices": []})
            devices.extend(cast(MembersPage, page)["devices"])
        for d in devices:
            if d["member_id"] in members:
                members[d["member_id"]]["devices"].append(d)
        return list(members.values())

    def remove_member(self, member_id: str, statement: Statement) -> Document:
        return self.request("DELETE", f"/members/{member_id}", {"statement": statement})

    def set_role(self, member_id: str, role: str, statement: Statement) -> Document:
        return self.request("PUT", f"/members/{member_id}/role", {"role": role, "statement": statement})

    def revoke_device(self, device_id: str, statement: Statement) -> Document:
        return self.request("POST", f"/devices/{device_id}/revoke", {"statement": statement})

    # -- channels ------------------------------------------------------------------------------

    def create_channel(self, kind: str, name: str, membership: Statement, id_seed: str) -> Channel:
        body = {"kind": kind, "name": name, "membership": membership, "id_seed": id_seed}
        return cast(Channel, self.request("POST", "/channels", body))

    def open_direct(self, member_id: str, membership: list[Statement]) -> Channel:
        """The one-to-one conversation with a member: found again, or created (protocol 14.1)."""
        return cast(Channel, self.request("PUT", f"/direct/{member_id}", {"membership": membership}))

    def channels(self) -> ChannelList:
        """My channels, where each stands and what is unread on this device."""
        return cast(ChannelList, self.request("GET", "/channels"))

    def rename_channel(self, channel_id: str, name: str) -> Channel:
        return cast(Channel, self.request("PUT", f"/channels/{channel_id}", {"name": name}))

    def add_channel_member(
        self, channel_id: str, member_id: str, role: str, membership: Statement
    ) -> Document:
        body = {"role": role, "membership": membership}
        return self.request("PUT", f"/channels/{channel_id}/members/{member_id}", body)

    def remove_channel_member(self, channel_id: str, member_id: str, membership: Statement) -> Document:
        return self.request(
            "DELETE", f"/channels/{channel_id}/members/{member_id}", {"membership": membership}
        )

    def membership_log(self, channel_id: str, start: int = 0) -> tuple[list[Statement], Document | None]:
        """The channel's signed membership log from entry ``start``, every page, and its head."""
        entries: list[Statement] = []
        head: Document | None = None
        while True:
            query = {"from": str(start + len(entries))}
            page = self.request("GET", f"/channels/{channel_id}/membership", query=query)
            entries.extend(page["entries"])
            head = page.get("head")
            if not page.get("more") or not page["entries"]:
                return entries, head

    def channel_members(self, channel_id: str) -> Document:
        return self.request("GET", f"/channels/{channel_id}/members")

    def roster(self, channel_id: str) -> Roster:
        """Every device of the channel, gathered over all pages."""
        devices: list[RosterDevice] = []
        last: dict[str, Any] = {}
        for page in self._paged(f"/channels/{channel_id}/roster"):
            devices.extend(cast(RosterPage, page)["devices"])
            last = page
        return {"epoch": int(last["epoch"]), "roster": int(last["roster"]), "devices": devices}

    def put_sender_keys(self, channel_id: str, epoch: int, sealed: list[SealedKey]) -> KeysStored:
        body = {"epoch": epoch, "keys": sealed}
        return cast(KeysStored, self.request("PUT", f"/channels/{channel_id}/keys", body))

    def sender_keys(self, channel_id: str, epoch: int) -> SealedKeys:
        """The sender keys sealed to this device for one epoch."""
        query = {"epoch": str(epoch)}
        return cast(SealedKeys, self.request("GET", f"/channels/{channel_id}/keys", query=query))

    def send_message(self, envelope: Envelope, notify: Sequence[str] = ()) -> Receipt:
        """``notify``: mentioned members in "mentions only" mode (protocol section 17), beside
        the envelope in the query string, never in it."""
        path = f"/channels/{envelope.channel_id}/messages"
        query = {"notify": ",".join(notify)} if notify else None
        return cast(Receipt, self.request("POST", path, envelope.model_dump(mode="json"), query=query))

    def choose_notify(self, channel_id: str, statement: Statement) -> Document:
        """Post this member's signed "mentions only" (or "all") choice for a channel."""
        return self.request("PUT", f"/channels/{channel_id}/notify", {"statement": statement})

    def messages(self, channel_id: str, *, since: int = 0, limit: int = 100) -> MessagePage:
        query = {"since": str(since), "limit": str(limit)}
        return cast(MessagePage, self.request("GET", f"/channels/{channel_id}/messages", query=query))

    def call_ice(self, channel_id: str) -> dict[str, Any]:
        """ICE servers and TURN credentials for a call in the channel (docs/calls.md)."""
        return self.request("GET", f"/channels/{channel_id}/calls/ice")

    def seen(self, channel_id: str) -> dict[str, Any]:
        """How far each member of the channel has read (their devices' furthest cursor)."""
        return self.request("GET", f"/channels/{channel_id}/seen")

    # -- retention -------------------------------------------------------------------------------

    def retention(self, channel_id: str | None = None) -> Document:
        """The retention in force: the organisation's, or a channel's."""
        return self.request("GET", _retention_path(channel_id))

    def set_retention(self, duration: str, channel_id: str | None = None) -> Document:
        return self.request("PUT", _retention_path(channel_id), {"duration": duration})

    # -- the administrators' audit log -----------------------------------------------------------

    def audit(self, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        """One page of the audit log, newest first (owners and admins)."""
        query = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        return cast(AuditPage, self.request("GET", "/audit", query=query))

    def audit_entries(self, *, page_size: int = 200) -> Iterator[AuditEntry]:
        """Every entry still kept, newest first, page after page."""
        cursor: str | None = None
        while True:
            page = self.audit(cursor=cursor, limit=page_size)
            yield from page["entries"]
            cursor = page["cursor"]
            if not cursor:
                return

    def set_audit_retention(self, duration: str) -> Document:
        """How long the audit log keeps what is recorded from now on (owners; 30d to 5y)."""
        return self.request("PUT", "/audit/retention", {"duration": duration})

    # -- plan, billing and impact --------------------------------------------------------------

    def plan(self) -> Document:
        return self.request("GET", "/plan")

    def choose_pilot_end(self, choice: str) -> Document:
        return self.request("PUT", "/plan/pilot-end", {"choice": choice})

    def invoices(self) -> Document:
        return self.request("GET", "/invoices")

    def invoice(self, month: str) -> Document:
        return self.request("GET", f"/invoices/{month}")

    def pilot_report(self, *, csv: bool = False) -> Document:
        return self.request("GET", "/report", query={"format": "csv"} if csv else None)

    def impact(self) -> Document:
        """Trees planted and CO2e avoided, for everyone (no signature needed)."""
        return self.request("GET", "/impact")

    def org_impact(self) -> Document:
        return self.request("GET", "/impact/org")

    def run_billing(self, *, month: str | None = None, dry_run: bool = False) -> Document:
        """Bill a month (operator); without a month, the last one (or, dry, this one to date)."""
        body: dict[str, Any] = {"dry_run": dry_run}
        if month:
            body["month"] = month
        return self.request("POST", "/billing/run", body)

    # -- Web Push (docs/protocol.md, section 17) ------------------------------------------------

    def push_key(self) -> str | None:
        """The server's VAPID public key; None when it sends no Web Push."""
        key = self.request("GET", "/push").get("public_key")
        return str(key) if key else None

    def register_push(
        self, device_id: str, subscription: dict[str, Any], muted: Iterable[str] = ()
    ) -> Document:
        """Register this device's push subscription (``PushSubscription.toJSON()``'s shape)."""
        return self.request("PUT", f"/devices/{device_id}/push", {**subscription, "muted": list(muted)})

    def remove_push(self, device_id: str) -> Document:
        return self.request("DELETE", f"/devices/{device_id}/push")

    # -- public tribes and followers (docs/protocol.md, 16) --------------------------------------

    def publish_tribe(self, channel_id: str, ticket: Statement, *, cap: int | None = None) -> Document:
        """A new join link for the tribe; the ticket's seed stays here (the caller puts it in the link)."""
        body: dict[str, Any] = {"ticket": ticket}
        if cap is not None:
            body["cap"] = cap
        return self.request("PUT", f"/channels/{channel_id}/public", body)

    def recent_history(self, channel_id: str) -> Document:
        """The tribe's latest signed "last N days" choice (section 23): verified by the caller."""
        return self.request("GET", f"/channels/{channel_id}/history")

    def choose_history(self, channel_id: str, statement: Statement) -> Document:
        return self.request("PUT", f"/channels/{channel_id}/history", {"statement": statement})

    def join_link(self, channel_id: str) -> Document:
        return self.request("GET", f"/channels/{channel_id}/public")

    def revoke_join_link(self, channel_id: str) -> Document:
        return self.request("DELETE", f"/channels/{channel_id}/public")

    def join(
        self, link: str, keys: DeviceKeys, follower_cert: Statement, *, device_name: str = ""
    ) -> Document:
        """Activate this device as a follower (no token: the join link's certificate vouches)."""
        return self.request("POST", "/join", join_body(link, keys, follower_cert, device_name=device_name))

    def leave_as_follower(self) -> Document:
        return self.request("DELETE", "/follower")

    # -- partner organisations (docs/protocol.md, 22) ----------------------------------------------

    def invite_partner(self, ticket: Statement) -> Document:
        return self.request("POST", "/partners/invitations", {"ticket": ticket})

    def accept_partner(self, code: str, acceptance: Statement, statement: Statement) -> Document:
        body = {"code": code, "acceptance": acceptance, "statement": statement}
        return self.request("POST", "/partners/accept", body)

    def partners(self) -> list[Document]:
        return list(self.request("GET", "/partners")["partners"])

    def partner_listing(self, org_id: str) -> tuple[list[Document], list[Document]]:
        """A partner's signers and their certifiers (members and devices), to verify its statements."""
        listing = self.request("GET", f"/partners/{org_id}/members")
        return list(listing["members"]), list(listing["devices"])

    def partner_member(self, org_id: str, member_id: str) -> tuple[list[Document], list[Document]]:
        """One member of an active partner with their certifiers up to its root (a contact card's)."""
        listing = self.request("GET", f"/partners/{org_id}/members/{member_id}")
        return list(listing["members"]), list(listing["devices"])

    def confirm_partner(self, org_id: str, statement: Statement) -> Document:
        return self.request("PUT", f"/partners/{org_id}", {"statement": statement})

    def end_partner(self, org_id: str, statement: Statement) -> Document:
        return self.request("DELETE", f"/partners/{org_id}", {"statement": statement})

    # -- questions to the town hall (docs/protocol.md, 20) ----------------------------------------

    def ask_question(self, channel_id: str, question_id: str, sealed: dict[str, str]) -> Document:
        body = {"question_id": question_id, "sealed": sealed}
        return self.request("POST", f"/channels/{channel_id}/questions", body)

    def questions(self, channel_id: str) -> list[dict[str, Any]]:
        """Every question this device may see in the tribe, over all pages."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"cursor": cursor} if cursor else None
            page = self.request("GET", f"/channels/{channel_id}/questions", query=query)
            found += page["questions"]
            cursor = page.get("cursor")
            if not cursor:
                return found

    def answer_question(
        self, channel_id: str, question_id: str, sealed: str, published_message_id: str | None
    ) -> Document:
        body = {"sealed": sealed, "published_message_id": published_message_id}
        return self.request("PUT", f"/channels/{channel_id}/questions/{question_id}/answer", body)


def join_body(
    link: str, keys: DeviceKeys, follower_cert: Statement, *, device_name: str = ""
) -> dict[str, Any]:
    """``POST /join``'s body: the device's keys, the proof it holds them, its certificate."""
    proof = keys.signing.sign(join_proof_message(link, keys.box_public_key)).signature
    return {
        "link": link,
        "sign_public_key": keys.sign_public_key,
        "box_public_key": keys.box_public_key,
        "proof": b64e(proof),
        "follower_cert": follower_cert,
        "device_name": device_name,
    }


def _retention_path(channel_id: str | None) -> str:
    return f"/channels/{channel_id}/retention" if channel_id else "/retention"


def _api_error(status: int, payload: bytes) -> ApiError:
    try:
        body = json.loads(payload)
        return ApiError(status, str(body.get("error", "error")), str(body.get("message", "")))
    except (ValueError, AttributeError):
        return ApiError(status, "error", payload[:200].decode("utf-8", "replace"))
