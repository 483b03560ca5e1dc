"""Device-signed request authentication (see chalicelib.domain.auth_token).

Per request: one read of the device, one of its member, one conditional write
of the nonce. A revoked device or removed member fails on its very next request.
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.nonces import NonceRecords
from chalicelib.domain.auth_token import Claims, decode_token, request_digest
from chalicelib.domain.encoding import b64d
from chalicelib.domain.ids import operator_id_for
from chalicelib.domain.principal import Operator, Principal
from chalicelib.errors import Unauthorized
from chalicelib.ports import Clock, Store

CLOCK_SKEW = 30  # seconds a client clock may run ahead


@dataclass(frozen=True)
class SignedRequest:
    """What the token must match: the request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes

    @property
    def digest(self) -> str:
        return request_digest(self.method, self.path, self.query, self.body)


class Authenticator:
    def __init__(
        self, store: Store, clock: Clock, *, max_age: int = 300, operator_keys: tuple[str, ...] = ()
    ) -> None:
        self._members = MemberRecords(store)
        self._nonces = NonceRecords(store)
        self._clock = clock
        self._max_age = max_age
        self._operators = {operator_id_for(b64d(k)): VerifyKey(b64d(k)) for k in operator_keys}

    def device(self, token: str | None, request: SignedRequest) -> Principal:
        claims, signed, signature = self._parse(token, request)
        principal = self.device_principal(claims.subject, signed_by=(signed, signature))
        self._spend_nonce(claims)
        return principal

    def device_principal(self, device_id: str, *, signed_by: tuple[bytes, bytes] | None = None) -> Principal:
        """The device's principal, if it is still allowed in: checked on every call and action.

        ``signed_by`` (bytes, signature) is verified with the device's key when given.
        """
        device = self._members.device(device_id)
        if device is None:
            raise Unauthorized("unknown device")
        if device.is_revoked:
            raise Unauthorized("this device has been revoked")
        if signed_by is not None:
            _verify(VerifyKey(b64d(device.sign_public_key)), *signed_by)
        member = self._members.get(device.org_id, device.member_id)
        if member is None:
            raise Unauthorized("unknown member")
        if not member.is_active:
            raise Unauthorized("this member has been removed from the organisation")
        return Principal(
            org_id=device.org_id,
            member_id=device.member_id,
            device_id=device.device_id,
            role=member.role,
            display_name=member.display_name,
        )

    def operator(self, token: str | None, request: SignedRequest) -> Operator:
        claims, signed, signature = self._parse(token, request)
        key = self._operators.get(claims.subject)
        if key is None:
            raise Unauthorized("unknown operator key")
        _verify(key, signed, signature)
        self._spend_nonce(claims)
        return Operator(key_id=claims.subject)

    def _parse(self, token: str | None, request: SignedRequest) -> tuple[Claims, bytes, bytes]:
        if not token:
            raise Unauthorized("missing 'Authorization: Bocage <token>' header")
        try:
            claims, signed, signature = decode_token(token)
        except ValueError as exc:
            raise Unauthorized(str(exc)) from exc
        now = self._clock.now()
        if claims.expires_at <= now:
            raise Unauthorized("token expired")
        if claims.expires_at - claims.issued_at > self._max_age or claims.issued_at > now + CLOCK_SKEW:
            raise Unauthorized(f"token lifetime must be at most {self._max_age} seconds from now")
        if claims.digest != request.digest:
            raise Unauthorized("token does not match this request (method, path, query or body)")
        return claims, signed, signature

    def _spend_nonce(self, claims: Claims) -> None:
        if not self._nonces.spend(claims.subject, claims.nonce, keep_until=claims.expires_at + CLOCK_SKEW):
            raise Unauthorized("token already used (replayed nonce)")


def _verify(key: VerifyKey, signed: bytes, signature: bytes) -> None:
    try:
        key.verify(signed, signature)
    except (BadSignatureError, ValueError) as exc:
        raise Unauthorized("bad token signature") from exc
