"""Settings, read once from environment variables (the only configuration channel).

Every variable is listed in the README's settings table; keep both in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: The web app in this source tree (or next to the installed packages): BOCAGE_WEB_DIR's default.
DEFAULT_WEB_DIR = str(Path(__file__).resolve().parents[1] / "web")


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    store: str = "sqlite"
    data_dir: str = ".bocage-data"
    table: str = "bocage"
    dynamodb_endpoint: str | None = None
    create_table: bool = False
    region: str = "eu-west-3"
    mailer: str = "console"
    mail_from: str = "Bocage <no-reply@bocage.localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    public_url: str | None = None
    app_url: str | None = None
    operator_keys: tuple[str, ...] = ()
    invite_ttl_days: int = 7
    token_max_age: int = 300
    max_body_bytes: int = 128 * 1024
    ws_endpoint: str | None = None
    ws_url: str | None = None
    fanout_queue_url: str | None = None
    web_dir: str = DEFAULT_WEB_DIR
    #: WebSockets a device may hold; its next connect closes the oldest (docs/protocol.md, 9).
    ws_per_device: int = 5
    #: Calls (docs/calls.md): STUN and TURN URLs handed to members' devices, the secret the TURN
    #: server shares (coturn's static-auth-secret), and how long a TURN credential lasts.
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = field(default=None, repr=False)
    #: On AWS: the SSM SecureString holding that secret, read on the first call (never in the env).
    turn_secret_parameter: str | None = None
    turn_ttl: int = 4 * 3600
    #: Web Push (docs/protocol.md, "Web Push"): the VAPID private key (base64url or PEM; None:
    #: no pushes), who the push services may contact about it, and push services beyond the
    #: browsers' (``host``, ``.suffix`` or ``host:port``).
    vapid_private_key: str | None = field(default=None, repr=False)
    #: On AWS: the SSM SecureString holding that key, read on the first push (never in the env).
    vapid_parameter: str | None = None
    vapid_subject: str = "mailto:admin@bocage.localhost"
    push_services: tuple[str, ...] = ()
    #: Files (docs/protocol.md, 18): an S3 bucket, or else a directory of the data dir.
    bucket: str | None = None
    s3_endpoint: str | None = None
    #: New followers one public tribe takes an hour (docs/protocol.md, 16.2), whatever their
    #: addresses: throwaway joins cannot spend its questions budget (20.3) without bound.
    joins_per_tribe_hour: int = 2000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        on_lambda = bool(e.get("AWS_LAMBDA_FUNCTION_NAME"))
        return cls(
            store=e.get("BOCAGE_STORE", "dynamodb" if on_lambda else "sqlite"),
            data_dir=e.get("BOCAGE_DATA_DIR", ".bocage-data"),
            table=e.get("BOCAGE_TABLE", "bocage"),
            dynamodb_endpoint=e.get("BOCAGE_DYNAMODB_ENDPOINT") or None,
            create_table=_flag(e.get("BOCAGE_CREATE_TABLE")),
            region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or "eu-west-3",
            mailer=e.get("BOCAGE_MAILER", "ses" if on_lambda else "console"),
            mail_from=e.get("BOCAGE_MAIL_FROM", cls.mail_from),
            smtp_host=e.get("BOCAGE_SMTP_HOST", "localhost"),
            smtp_port=int(e.get("BOCAGE_SMTP_PORT", "25")),
            smtp_user=e.get("BOCAGE_SMTP_USER") or None,
            smtp_password=e.get("BOCAGE_SMTP_PASSWORD") or None,
            smtp_starttls=_flag(e.get("BOCAGE_SMTP_STARTTLS")),
            public_url=(e.get("BOCAGE_PUBLIC_URL") or "").rstrip("/") or None,
            app_url=(e.get("BOCAGE_APP_URL") or "").rstrip("/") or None,
            operator_keys=_split(e.get("BOCAGE_OPERATOR_KEYS")),
            invite_ttl_days=int(e.get("BOCAGE_INVITE_TTL_DAYS", "7")),
            token_max_age=min(int(e.get("BOCAGE_TOKEN_MAX_AGE", "300")), 300),
            max_body_bytes=int(e.get("BOCAGE_MAX_BODY_BYTES", str(128 * 1024))),
            ws_endpoint=(e.get("BOCAGE_WS_ENDPOINT") or "").rstrip("/") or None,
            ws_url=e.get("BOCAGE_WS_URL") or None,
            fanout_queue_url=e.get("BOCAGE_FANOUT_QUEUE_URL") or None,
            web_dir=e.get("BOCAGE_WEB_DIR") or DEFAULT_WEB_DIR,
            stun_urls=_split(e.get("BOCAGE_STUN_URLS")),
            turn_urls=_split(e.get("BOCAGE_TURN_URLS")),
            turn_secret=e.get("BOCAGE_TURN_SECRET") or None,
            turn_secret_parameter=e.get("BOCAGE_TURN_SECRET_PARAMETER") or None,
            turn_ttl=int(e.get("BOCAGE_TURN_TTL", str(4 * 3600))),
            ws_per_device=max(1, int(e.get("BOCAGE_WS_PER_DEVICE", cls.ws_per_device))),
            vapid_private_key=e.get("BOCAGE_VAPID_PRIVATE_KEY") or None,
            vapid_parameter=e.get("BOCAGE_VAPID_PARAMETER") or None,
            vapid_subject=e.get("BOCAGE_VAPID_SUBJECT") or cls.vapid_subject,
            push_services=_split(e.get("BOCAGE_PUSH_SERVICES")),
            bucket=e.get("BOCAGE_BUCKET") or None,
            s3_endpoint=(e.get("BOCAGE_S3_ENDPOINT") or "").rstrip("/") or None,
            joins_per_tribe_hour=max(1, int(e.get("BOCAGE_JOINS_PER_TRIBE_HOUR", cls.joins_per_tribe_hour))),
        )
