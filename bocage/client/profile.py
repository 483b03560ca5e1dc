"""A device's profile on disk: its private keys (mode 0600) and who it is.

Layout of a profile directory::

    profile.json   server URL, org, member and device ids (no secrets)
    sign.key       Ed25519 seed, raw 32 bytes, mode 0600
    box.key        X25519 private key, raw 32 bytes, mode 0600
    identity.key   the member's identity key (Ed25519 seed), on their first device only, 0600
    trust.json     the pinned root, verified members, identity keys seen, role serials seen,
                   the last verified membership state of each channel (docs/protocol.md, 13-15)
                   and the partner roots pinned and ends seen (section 22)
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from chalicelib.domain.auth_token import Claims, encode_token, request_digest
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.ids import device_id_for, operator_id_for

TOKEN_LIFETIME = 120  # seconds; the server accepts at most 300


def write_private(path: Path, data: bytes) -> None:
    """Create or replace a secret file that is never readable by others, even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def sign_token(
    key: SigningKey,
    subject: str,
    method: str,
    path: str,
    query: dict[str, str] | None,
    body: bytes,
    *,
    now: int,
    lifetime: int = TOKEN_LIFETIME,
) -> str:
    claims = Claims(
        subject=subject,
        issued_at=now,
        expires_at=now + lifetime,
        nonce=b64e(secrets.token_bytes(16)),
        digest=request_digest(method, path, query, body),
    ).to_bytes()
    return encode_token(claims, key.sign(claims).signature)


@dataclass(frozen=True)
class DeviceKeys:
    signing: SigningKey
    box: PrivateKey

    @classmethod
    def generate(cls) -> DeviceKeys:
        return cls(SigningKey.generate(), PrivateKey.generate())

    @property
    def sign_public_key(self) -> str:
        return b64e(bytes(self.signing.verify_key))

    @property
    def box_public_key(self) -> str:
        return b64e(bytes(self.box.public_key))

    @property
    def device_id(self) -> str:
        return device_id_for(bytes(self.signing.verify_key))


@dataclass(frozen=True)
class OperatorKey:
    """The operator's Ed25519 key: the server knows only its public half."""

    signing: SigningKey

    @classmethod
    def generate(cls) -> OperatorKey:
        return cls(SigningKey.generate())

    @classmethod
    def load(cls, path: str | Path) -> OperatorKey:
        p = Path(path)
        if p.stat().st_mode & 0o077:
            raise PermissionError(f"{p} must not be readable by others (chmod 600)")
        return cls(SigningKey(b64d(p.read_text().strip())))

    def save(self, path: str | Path) -> None:
        write_private(Path(path), (b64e(bytes(self.signing)) + "\n").encode())

    @property
    def public_key(self) -> str:
        return b64e(bytes(self.signing.verify_key))

    @property
    def key_id(self) -> str:
        return operator_id_for(bytes(self.signing.verify_key))


class Profile:
    """One device's identity in a directory; created at activation."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)

    @property
    def exists(self) -> bool:
        return (self.dir / "profile.json").exists()

    def info(self) -> dict[str, Any]:
        if not self.exists:
            raise FileNotFoundError(f"no activated profile in {self.dir}; run 'bocage activate' first")
        data: dict[str, Any] = json.loads((self.dir / "profile.json").read_text())
        return data

    def keys(self) -> DeviceKeys:
        for name in ("sign.key", "box.key"):
            if (self.dir / name).stat().st_mode & 0o077:
                raise PermissionError(f"{self.dir / name} must not be readable by others (chmod 600)")
        return DeviceKeys(
            SigningKey((self.dir / "sign.key").read_bytes()), PrivateKey((self.dir / "box.key").read_bytes())
        )

    def save_keys(self, keys: DeviceKeys) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        write_private(self.dir / "sign.key", bytes(keys.signing))
        write_private(self.dir / "box.key", bytes(keys.box))

    def identity(self) -> SigningKey | None:
        """The member's identity key, if this is the device that made it."""
        path = self.dir / "identity.key"
        if not path.exists():
            return None
        if path.stat().st_mode & 0o077:
            raise PermissionError(f"{path} must not be readable by others (chmod 600)")
        return SigningKey(path.read_bytes())

    def save_identity(self, identity: SigningKey) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_private(self.dir / "identity.key", bytes(identity))

    @property
    def trust_path(self) -> Path:
        return self.dir / "trust.json"

    def trust(self) -> TrustState:
        return TrustState.load(self.trust_path)

    def save_trust(self, state: TrustState) -> None:
        state.save(self.trust_path)

    def join_links(self) -> dict[str, str]:
        """Public tribes' join links this device published, secret seed included (for posters)."""
        path = self.dir / "join_links.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def save_join_link(self, channel_id: str, url: str) -> None:
        write_private(
            self.dir / "join_links.json", json.dumps({**self.join_links(), channel_id: url}).encode()
        )

    def forget(self) -> None:
        """Delete every file of this profile (a follower who left: their keys go with them)."""
        for path in self.dir.glob("*"):
            if path.is_file():
                path.unlink()
        for path in self.dir.glob(".*"):
            if path.is_file():
                path.unlink()

    def save_info(self, info: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "profile.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


T = TypeVar("T")


def _per_org(data: object, value: Callable[[Any], T]) -> dict[str, dict[str, T]]:
    """A kept ``org -> id -> value`` map, as written by ``TrustState.save``."""
    found = data if isinstance(data, dict) else {}
    return {str(org): {str(k): value(v) for k, v in dict(ids).items()} for org, ids in found.items()}


@dataclass
class TrustState:
    """What this device verified and must never forget (a server cannot roll it back)."""

    root: str = ""
    verified: dict[str, str] = field(default_factory=dict)  # member id -> identity key
    seen: dict[str, str] = field(default_factory=dict)  # member id -> identity key first seen
    role_serials: dict[str, int] = field(default_factory=dict)
    logs: dict[str, dict[str, Any]] = field(default_factory=dict)  # channel id -> LogState JSON
    # Partner organisations (docs/protocol.md, 22): org id -> {"root", "ticket_key", "ended"}: the
    # root pinned through our own statement, and an end once seen (a server cannot undo it).
    partners: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Revocations and removals verified once (13.7), ours and partners', per organisation (a
    # partner's listing never speaks for our ids): a listing that later drops one is a rollback,
    # and the device or member stays out from the kept date.
    revoked: dict[str, dict[str, int]] = field(default_factory=dict)  # org -> device -> issued_at
    removed: dict[str, dict[str, int]] = field(default_factory=dict)  # org -> member -> issued_at
    # Partners' members' identity keys first verified (22.6), per partner organisation: apart
    # from ``seen``, so a partner's listing cannot pin a key under one of our members' ids.
    partner_seen: dict[str, dict[str, str]] = field(default_factory=dict)  # org -> member -> key

    @classmethod
    def load(cls, path: Path) -> TrustState:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(
            root=str(data.get("root", "")),
            verified=dict(data.get("verified", {})),
            seen=dict(data.get("seen", {})),
            role_serials={k: int(v) for k, v in data.get("role_serials", {}).items()},
            logs=dict(data.get("logs", {})),
            partners=dict(data.get("partners", {})),
            revoked=_per_org(data.get("revoked"), int),
            removed=_per_org(data.get("removed"), int),
            partner_seen=_per_org(data.get("partner_seen"), str),
        )

    def save(self, path: Path) -> None:
        data = {
            "root": self.root,
            "verified": self.verified,
            "seen": self.seen,
            "role_serials": self.role_serials,
            "logs": self.logs,
            "partners": self.partners,
            "revoked": self.revoked,
            "removed": self.removed,
            "partner_seen": self.partner_seen,
        }
        write_private(path, json.dumps(data, sort_keys=True).encode("utf-8"))
