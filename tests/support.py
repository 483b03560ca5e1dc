"""Shared test helpers: a recording mailer, a signed API driver over chalice.test.Client."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from nacl.signing import SigningKey

from bocage.client.api import ApiError, BocageClient, join_body
from bocage.client.issuing import (
    device_ticket,
    enrol,
    follower_cert,
    member_ticket,
    membership_entry,
    removal,
    revocation,
    role_statement,
)
from bocage.client.profile import DeviceKeys, OperatorKey, sign_token
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.domain.activation_link import ActivationTarget, parse_activation, with_fragment_params
from chalicelib.domain.auth_token import SCHEME
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.encoding import b64e
from chalicelib.domain.followers import parse_join_url
from chalicelib.domain.invitation import activation_proof_message, normalise_code
from chalicelib.domain.organisation import Device
from chalicelib.domain.statements import public_key_of
from chalicelib.ports import MailMessage


class RecordingMailer:
    """Our own Mailer port implemented in memory: records what would be delivered."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[MailMessage] = []
        self.fail = fail

    def send(self, message: MailMessage) -> None:
        if self.fail:
            raise ConnectionError("mail relay down")
        self.sent.append(message)


@dataclass
class Reply:
    status: int
    body: Any

    def error(self) -> str:
        return str(self.body.get("error"))


class SignedApi:
    """Drives the Chalice app as a client would, signing with device or operator keys."""

    def __init__(self, http: Any, clock: ManualClock, lambda_: Any = None) -> None:
        self.http = http
        self.clock = clock
        self.lambda_ = lambda_
        # What the people's devices keep (docs/protocol.md, 13): the fragments of the activation
        # URLs they were handed (by code), members' identity keys, and each device's org and member.
        self.targets: dict[str, ActivationTarget] = {}
        self.identities: dict[str, SigningKey] = {}
        self.devices: dict[str, dict[str, str]] = {}

    def ws(self, handler: str, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke a WebSocket handler of the app as API Gateway would."""
        response = self.lambda_.invoke(handler, event)
        return dict(response.payload)

    def ws_connect(self, keys: DeviceKeys, connection_id: str) -> dict[str, Any]:
        token = sign_token(keys.signing, keys.device_id, "GET", "$connect", None, b"", now=self.clock.now())
        return self.ws("ws_connect", ws_event("$connect", connection_id, token=token))

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        signer: DeviceKeys | OperatorKey | None = None,
        query: dict[str, str] | None = None,
        raw: bytes | None = None,
        token: str | None = None,
        lifetime: int = 60,
    ) -> Reply:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"}
        if token is None and signer is not None:
            subject = signer.device_id if isinstance(signer, DeviceKeys) else signer.key_id
            token = sign_token(
                signer.signing, subject, method, path, query, data, now=self.clock.now(), lifetime=lifetime
            )
        if token is not None:
            headers["Authorization"] = f"{SCHEME} {token}"
        url = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        response = self.http.request(method, url, headers=headers, body=data)
        parsed = json.loads(response.body) if response.body else None
        if isinstance(parsed, dict) and "activation_url" in parsed and "activation_code" in parsed:
            self._remember_url(parsed)  # an e-mailed invitation's link, as the mail carries it
        return Reply(response.status_code, parsed)

    def create_org(
        self, operator: OperatorKey, name: str = "Mairie de Bocage", **extra: Any
    ) -> dict[str, Any]:
        reply = self.call("POST", "/orgs", {"name": name, **extra}, signer=operator)
        assert reply.status == 201, reply.body
        self._remember_url(reply.body)
        return dict(reply.body)

    def _remember_url(self, invitation: dict[str, Any]) -> None:
        self.targets[normalise_code(invitation["activation_code"])] = parse_activation(
            invitation["activation_url"]
        )

    def activate(
        self, code: str, name: str | None = None, keys: DeviceKeys | None = None
    ) -> tuple[DeviceKeys, Reply]:
        """Activate as the web app or the CLI would from the URL handed over for ``code``;
        ``name`` None: the one the link names (an invitation), else "Someone"."""
        keys = keys or DeviceKeys.generate()
        body = self.activation_body(code, name, keys)
        reply = self.call("POST", "/activate", body)
        if reply.status == 201:
            self.devices[keys.device_id] = {
                "org_id": reply.body["org_id"],
                "member_id": reply.body["member_id"],
                "root": str(reply.body.get("root")),
                "first": "yes" if body.get("member_cert") else "",
            }
        return keys, reply

    def activation_body(self, code: str, name: str | None, keys: DeviceKeys) -> dict[str, Any]:
        """What ``POST /activate`` carries: keys, proof and the certificates the URL allows."""
        proof = keys.signing.sign(activation_proof_message(code, keys.box_public_key)).signature
        body: dict[str, Any] = {
            "code": code,
            "sign_public_key": keys.sign_public_key,
            "box_public_key": keys.box_public_key,
            "proof": b64e(proof),
            "device_name": "test",
            "display_name": name or "Someone",
        }
        target = self.targets.get(normalise_code(code))
        if target is not None:
            enrolment = enrol(
                replace(target, code=code),
                device_id=keys.device_id,
                sign_public_key=keys.sign_public_key,
                box_public_key=keys.box_public_key,
                display_name=name if name is not None or target.name else "Someone",
                now=self.clock.now(),
                identity=self.identities.get(str(target.member)),
            )
            body.update(member_cert=enrolment.member_cert, device_cert=enrolment.device_cert)
            if enrolment.member_cert is None:
                body.pop("display_name")
            else:
                body["display_name"] = enrolment.member_cert["display_name"]
            if enrolment.identity is not None:
                self.identities[str(target.member)] = enrolment.identity
        return body

    def invite(
        self, admin: DeviceKeys, name: str, role: str = "member", *, expect: int = 201
    ) -> dict[str, Any]:
        """``POST /invitations`` with the admin device's ticket; the URL gets its fragment (13.4)."""
        issuer = self.devices[admin.device_id]
        ticket = member_ticket(admin.signing, admin.device_id, issuer["org_id"], role, name, self.clock.now())
        body = {"display_name": name, "role": role, "ticket": ticket.statement}
        reply = self.call("POST", "/invitations", body, signer=admin)
        assert reply.status == expect, reply.body
        if reply.status == 201:
            url = with_fragment_params(
                reply.body["activation_url"], ticket=ticket.fragment_seed, root=issuer["root"]
            )
            reply.body["activation_url"] = url
            self._remember_url(reply.body)
        return dict(reply.body)

    def link(self, device: DeviceKeys, *, expect: int = 201) -> dict[str, Any]:
        """``POST /devices/link`` with the device's link ticket."""
        mine = self.devices[device.device_id]
        ticket = device_ticket(
            device.signing, device.device_id, mine["org_id"], mine["member_id"], self.clock.now()
        )
        reply = self.call("POST", "/devices/link", {"ticket": ticket.statement}, signer=device)
        assert reply.status == expect, reply.body
        if reply.status == 201:
            identity = public_key_of(bytes(self.identities[mine["member_id"]]))
            url = with_fragment_params(
                reply.body["activation_url"], ticket=ticket.fragment_seed, root=mine["root"], ik=identity
            )
            reply.body["activation_url"] = url
            self._remember_url(reply.body)
        return dict(reply.body)

    def member_row(self, by: DeviceKeys, member_id: str) -> dict[str, Any]:
        for member in self.call("GET", "/members", signer=by).body["members"]:
            if member["member_id"] == member_id:
                return dict(member)
        raise KeyError(member_id)

    def set_role(self, by: DeviceKeys, member_id: str, role: str, serial: int | None = None) -> Reply:
        """``PUT /members/{m}/role`` with a role statement signed by ``by``."""
        try:
            member = self.member_row(by, member_id)
        except KeyError:  # another organisation's member: the server answers 404 first
            return self.call("PUT", f"/members/{member_id}/role", {"role": role}, signer=by)
        serial = serial or 1 + max((s["serial"] for s in member["role_statements"]), default=0)
        statement = role_statement(by.signing, by.device_id, member, role, serial, self.clock.now())
        return self.call(
            "PUT", f"/members/{member_id}/role", {"role": role, "statement": statement}, signer=by
        )

    def remove(self, by: DeviceKeys, member_id: str) -> Reply:
        """``DELETE /members/{m}`` with a removal statement signed by ``by``."""
        try:
            statement: Any = removal(
                by.signing, by.device_id, self.member_row(by, member_id), self.clock.now()
            )
        except (KeyError, TypeError):
            statement = None  # another organisation's member, or one never activated
        return self.call("DELETE", f"/members/{member_id}", {"statement": statement}, signer=by)

    def revoke(self, by: DeviceKeys, device_id: str) -> Reply:
        """``POST /devices/{d}/revoke`` with a revocation statement signed by ``by``."""
        devices = self.call("GET", "/members", signer=by).body["devices"]
        target = next((d for d in devices if d["device_id"] == device_id), None)
        statement = None if target is None else revocation(by.signing, by.device_id, target, self.clock.now())
        return self.call("POST", f"/devices/{device_id}/revoke", {"statement": statement}, signer=by)

    def join(self, admin: DeviceKeys, name: str, role: str = "member") -> tuple[DeviceKeys, dict[str, Any]]:
        """Invite then activate: a new active member's keys and activation result."""
        invite = self.invite(admin, name, role)
        keys, reply = self.activate(invite["activation_code"], name)
        assert reply.status == 201, reply.body
        return keys, dict(reply.body)


def follower_join_body(url: str, keys: DeviceKeys, name: str, now: int) -> dict[str, Any]:
    """``POST /join`` for a new follower device as a client builds it (its certificate made),
    without a profile: cheap enough to join thousands (bench/followers.py)."""
    target = parse_join_url(url)
    keys_of = {"sign_public_key": keys.sign_public_key, "box_public_key": keys.box_public_key}
    return join_body(target.link, keys, follower_cert(target, **keys_of, display_name=name, now=now))


def join_followers(api: SignedApi, url: str, count: int) -> list[DeviceKeys]:
    """``count`` follower devices joined from a public tribe's link, one ``POST /join`` each."""
    joined = []
    for i in range(count):
        device = DeviceKeys.generate()
        reply = api.call("POST", "/join", follower_join_body(url, device, f"Habitant {i}", api.clock.now()))
        assert reply.status == 201, reply.body
        joined.append(device)
    return joined


class RecordingPush:
    """Our own Push port in memory: records frames; ids in ``gone`` answer like a 410."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self.closed: list[str] = []
        self.close_codes: dict[str, tuple[int, str]] = {}
        self.gone: set[str] = set()

    def send(self, connection_id: str, data: bytes) -> None:
        from chalicelib.ports import ConnectionGone

        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        self.frames.append((connection_id, json.loads(data)))

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        self.closed.append(connection_id)
        self.close_codes[connection_id] = (code, reason)

    def to(self, connection_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [f for c, f in self.frames if c == connection_id and (kind is None or f.get("type") == kind)]


def ws_event(
    route: str, connection_id: str, *, body: str | None = None, token: str | None = None
) -> dict[str, Any]:
    """An API Gateway WebSocket event as Lambda receives it."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "domainName": "abc123.execute-api.eu-west-3.amazonaws.com",
            "stage": "api",
            "apiId": "abc123",
            "requestId": "req",
            "connectedAt": 0,
        },
        "isBase64Encoded": False,
    }
    if token is not None:
        event["queryStringParameters"] = {"token": token}
    if body is not None:
        event["body"] = body
    return event


IN_PROCESS_SERVER = "http://in-process.invalid"


class InProcessClient(BocageClient):
    """A BocageClient whose transport is the app through chalice.test.Client."""

    def __init__(self, api: SignedApi, keys: DeviceKeys) -> None:  # no socket
        self.api = api
        self.keys = keys
        self.server = IN_PROCESS_SERVER

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
    ) -> dict[str, Any]:
        query = {k: v for k, v in (query or {}).items() if v is not None} or None
        reply = self.api.call(method, path, body, signer=self.keys, query=query)
        if reply.status >= 400:
            raise ApiError(reply.status, reply.body.get("error", "error"), reply.body.get("message", ""))
        return dict(reply.body or {})


def messenger_for(api: SignedApi, keys: DeviceKeys, directory: Any, info: dict[str, Any]) -> Any:
    """A Messenger over the in-process app, with its profile (keys, key ring) in ``directory``."""
    from bocage.client.messenger import Messenger
    from bocage.client.profile import Profile, TrustState

    profile = Profile(directory)
    profile.save_keys(keys)
    profile.save_info({"server": IN_PROCESS_SERVER, **info})
    mine = api.devices[keys.device_id]
    if mine["first"]:
        profile.save_identity(api.identities[mine["member_id"]])
    profile.save_trust(TrustState(root=mine["root"]))
    return Messenger(profile, client=InProcessClient(api, keys), clock=api.clock.now)


def js_trust_view(messenger: Any, channel_id: str, since: int = 0) -> dict[str, Any]:
    """The trust view the web client would build for ``messenger``'s device, in the JS harness's
    argument shape: its kept root, verified and seen marks, and what the server answers that
    device now (GET /members, the channel's membership log from ``since``). Tests that hand the
    web client's code the same server answers as the Python client's start from this."""
    trust = messenger.trust
    members, devices = trust.client.member_listing()
    entries, head = trust.client.membership_log(channel_id, since)
    return {
        "org_id": trust.org_id,
        "root": trust.state.root,
        "members": members,
        "devices": devices,
        "verified": trust.state.verified,
        "seen": trust.state.seen,
        "answer": {"entries": entries, "head": head},
    }


class People:
    def __init__(self, api: SignedApi, owned_org: tuple[DeviceKeys, dict[str, Any]], tmp_path: Any) -> None:
        self.api = api
        self.tmp = tmp_path
        keys, info = owned_org
        self.owner = messenger_for(api, keys, tmp_path / "owner", info)
        self.keys = {"owner": keys}
        self.info = {"owner": info}

    def join(self, name: str, role: str = "member") -> Any:
        keys, info = self.api.join(self.keys["owner"], name, role)
        self.keys[name], self.info[name] = keys, info
        return messenger_for(self.api, keys, self.tmp / name, info)


def scan_all(store: Any) -> list[dict[str, Any]]:
    """Every raw row of the table, expired or not: what is physically stored.

    Reads the adapter's own storage (the SQLite file, or a DynamoDB Scan), since the
    Store port, by design, never shows expired items. A message item also shows its wire
    fields by name (it is stored with short names and binary ciphertext: records/messages.py).
    """
    from chalicelib.adapters.records.messages import message_fields

    return [
        item | message_fields(item) if str(item["sk"]).startswith("MSG#") else item for item in _rows(store)
    ]


def _rows(store: Any) -> list[dict[str, Any]]:
    from chalicelib.adapters.dynamodb_store import DynamoDbStore, _from_attrs
    from chalicelib.adapters.sqlite_store import SqliteStore, load_item

    inner = getattr(store, "inner", store)
    if isinstance(inner, SqliteStore):
        import sqlite3

        with sqlite3.connect(inner._path) as db:
            return [
                load_item(data) | {"pk": pk, "sk": sk}
                for pk, sk, data in db.execute("select pk, sk, data from items")
            ]
    if isinstance(inner, DynamoDbStore):
        rows: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": inner._table}
        while True:
            page = inner._client.scan(**kwargs)
            rows += [_from_attrs(item) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raise TypeError(f"cannot scan {type(inner).__name__}")


def sealed_envelope(
    messenger: Any, channel_id: str, content: dict[str, Any], *, kind: str = "message", sent_at_ms: int = 1
) -> dict[str, Any]:
    """An envelope sealed and signed by ``messenger``'s device for the channel's current epoch,
    as JSON, so a test can send it by hand (twice, tampered, over the socket...)."""
    from bocage.client.crypto import new_message_id, seal_message

    epoch = messenger.distribute_key(channel_id)
    message_id = new_message_id()
    index, key = messenger.ring.next_key(channel_id, epoch, message_id, int(messenger.clock()))
    messenger.save()
    return dict(
        seal_message(
            messenger.keys,
            key,
            index=index,
            channel_id=channel_id,
            epoch=epoch,
            message_id=message_id,
            content=content,
            kind=kind,
            sent_at_ms=sent_at_ms,
        ).model_dump(mode="json")
    )


def device_model(device_id: str, member_id: str, *, org_id: str = "o_1", created_at: int = 0) -> Device:
    """A device record with placeholder keys, for tests of storage and events (no crypto)."""
    return Device(
        device_id=device_id,
        org_id=org_id,
        member_id=member_id,
        name="phone",
        sign_public_key=f"sign-{device_id}",
        box_public_key=f"box-{device_id}",
        created_at=created_at,
    )


def plant_addition(
    container: Any,
    signer: DeviceKeys,
    *,
    org_id: str,
    channel_id: str,
    previous: dict[str, Any],
    member_id: str,
    now: int,
    devices_from: str | None = None,
) -> None:
    """What a malicious server does to slip a member into a channel: an ``add`` entry signed by a
    device of its choosing, written after ``previous`` in the channel's log, and the membership
    row. Clients must refuse the entry (docs/protocol.md, section 14). ``devices_from``: the
    member's organisation, to put their devices in the roster too (where keys would be sealed)."""
    signed = membership_entry(
        signer.signing,
        signer.device_id,
        org_id=org_id,
        channel_id=channel_id,
        previous=previous,
        op="add",
        member_id=member_id,
        role="member",
        now=now,
    )
    container.store.put(keys.record(keys.membership_entry(channel_id, signed["seq"]), {"entry": signed}))
    ChannelRecords(container.store).save_membership(
        ChannelMember(
            channel_id=channel_id,
            member_id=member_id,
            role=ChannelRole.MEMBER,
            added_at=1,
            added_by=member_id,
        )
    )
    if devices_from is not None:
        ChannelRecords(container.store).add_devices(
            channel_id, container.orgs.devices_of(devices_from, member_id)
        )
