"""The REST client: every call signed by the device (or operator) key.

Standard library HTTP only, so scripts need nothing beyond PyNaCl.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from nacl.signing import SigningKey

from bocage.client.profile import DeviceKeys, OperatorKey, sign_token
from chalicelib.domain.auth_token import SCHEME
from chalicelib.domain.encoding import b64e
from chalicelib.domain.invitation import activation_proof_message


class ApiError(Exception):
    """An error answer from the server: status, stable code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BocageClient:
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

    # -- high level ------------------------------------------------------------------

    def create_org(self, name: str, plan: str = "free", owner_name: str = "Owner") -> dict[str, Any]:
        return self.request("POST", "/orgs", {"name": name, "plan": plan, "owner_name": owner_name})

    def activate(
        self, code: str, keys: DeviceKeys, *, device_name: str = "", display_name: str | None = None
    ) -> dict[str, Any]:
        proof = keys.signing.sign(activation_proof_message(code, keys.box_public_key)).signature
        body: dict[str, Any] = {
            "code": code,
            "sign_public_key": keys.sign_public_key,
            "box_public_key": keys.box_public_key,
            "proof": b64e(proof),
            "device_name": device_name,
        }
        if display_name:
            body["display_name"] = display_name
        return self.request("POST", "/activate", body)

    def whoami(self) -> dict[str, Any]:
        return self.request("GET", "/me")

    def invite(self, display_name: str, *, role: str = "member", email: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"display_name": display_name, "role": role}
        if email:
            body["email"] = email
        return self.request("POST", "/invitations", body)

    def link_device(self) -> dict[str, Any]:
        return self.request("POST", "/devices/link")

    def members(self) -> list[dict[str, Any]]:
        """Every member with their devices, gathered over all pages."""
        members: dict[str, dict[str, Any]] = {}
        devices: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.request("GET", "/members", query={"cursor": cursor} if cursor else None)
            for m in page["members"]:
                members[m["member_id"]] = {**m, "devices": []}
            devices.extend(page["devices"])
            cursor = page.get("cursor")
            if not cursor:
                break
        for d in devices:
            if d["member_id"] in members:
                members[d["member_id"]]["devices"].append(d)
        return list(members.values())

    def remove_member(self, member_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/members/{member_id}")

    def set_role(self, member_id: str, role: str) -> dict[str, Any]:
        return self.request("PUT", f"/members/{member_id}/role", {"role": role})

    def revoke_device(self, device_id: str) -> dict[str, Any]:
        return self.request("POST", f"/devices/{device_id}/revoke")


def _api_error(status: int, payload: bytes) -> ApiError:
    try:
        body = json.loads(payload)
        return ApiError(status, str(body.get("error", "error")), str(body.get("message", "")))
    except (ValueError, AttributeError):
        return ApiError(status, "error", payload[:200].decode("utf-8", "replace"))
