"""Shared test helpers: a recording mailer, a signed API driver over chalice.test.Client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bocage.client.profile import DeviceKeys, OperatorKey, sign_token
from chalicelib.adapters.clocks import ManualClock
from chalicelib.domain.auth_token import SCHEME
from chalicelib.domain.encoding import b64e
from chalicelib.domain.invitation import activation_proof_message
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

    def __init__(self, http: Any, clock: ManualClock) -> None:
        self.http = http
        self.clock = clock

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
        return Reply(response.status_code, parsed)

    def create_org(
        self, operator: OperatorKey, name: str = "Mairie de Bocage", **extra: Any
    ) -> dict[str, Any]:
        reply = self.call("POST", "/orgs", {"name": name, **extra}, signer=operator)
        assert reply.status == 201, reply.body
        return dict(reply.body)

    def activate(
        self, code: str, name: str = "Someone", keys: DeviceKeys | None = None
    ) -> tuple[DeviceKeys, Reply]:
        keys = keys or DeviceKeys.generate()
        proof = keys.signing.sign(activation_proof_message(code, keys.box_public_key)).signature
        body = {
            "code": code,
            "sign_public_key": keys.sign_public_key,
            "box_public_key": keys.box_public_key,
            "proof": b64e(proof),
            "device_name": "test",
            "display_name": name,
        }
        return keys, self.call("POST", "/activate", body)

    def join(self, admin: DeviceKeys, name: str, role: str = "member") -> tuple[DeviceKeys, dict[str, Any]]:
        """Invite then activate: a new active member's keys and activation result."""
        invite = self.call("POST", "/invitations", {"display_name": name, "role": role}, signer=admin)
        assert invite.status == 201, invite.body
        keys, reply = self.activate(invite.body["activation_code"], name)
        assert reply.status == 201, reply.body
        return keys, dict(reply.body)
