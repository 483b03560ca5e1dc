"""Web Push subscriptions: what a device hands the server so it can be woken when it is offline.

The endpoint is a URL the server will POST to, chosen by the client: untrusted input, and the
classic way to make a server call into its own network (SSRF). So only ``https`` URLs whose
host is a known push service are accepted (the big browsers' by default, more by setting, e.g.
a stand-in on loopback for tests or a self-hosted push service), with no credentials in the URL
and bounded sizes; the keys must be what RFC 8291 says (a P-256 point, a 16-byte secret).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from chalicelib.errors import BadRequest

MAX_ENDPOINT = 1024
#: The browsers' push services: Chrome/Edge-on-Android (FCM), Firefox (Mozilla autopush),
#: Safari (Apple), Edge on Windows (WNS). A leading dot allows every subdomain; no port means 443.
DEFAULT_PUSH_SERVICES = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    ".push.apple.com",
    ".notify.windows.com",
)
P256_POINT = 65  # uncompressed: 0x04, x, y
AUTH_SECRET = 16


class PushSubscription(BaseModel):
    """A device's subscription, validated (``parse_subscription``), as the store keeps it."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    device_id: str
    member_id: str
    endpoint: str
    p256dh: str
    auth: str
    created_at: int
    #: Channels the device muted: no push for them (the service worker must show every push it
    #: gets, so muting is the server's to apply; it learns which channels, nothing more).
    muted: tuple[str, ...] = ()


def b64url_decode(text: str) -> bytes:
    """Unpadded base64url (what browsers give), strictly: anything else is refused."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("push keys must be unpadded base64url") from exc


def check_keys(p256dh: str, auth: str) -> None:
    if len(p256dh) > 100 or len(auth) > 40:
        raise BadRequest("push keys are too long")
    point = b64url_decode(p256dh)
    if len(point) != P256_POINT or point[0] != 4:
        raise BadRequest("keys.p256dh must be an uncompressed P-256 public key (65 bytes)")
    if len(b64url_decode(auth)) != AUTH_SECRET:
        raise BadRequest("keys.auth must be a 16-byte secret")


def allowed_host(host: str, port: int | None, services: Iterable[str]) -> bool:
    """Whether ``host[:port]`` is on the allow-list: an entry ``name`` is that host on 443,
    ``.name`` any subdomain of it on 443, ``name:port`` that host on that port only."""
    for entry in services:
        name, _, wanted = entry.lower().partition(":")
        if (int(wanted) if wanted else 443) != (port or 443):
            continue
        if name.startswith(".") and host.endswith(name) and len(host) > len(name):
            return True
        if host == name:
            return True
    return False


def check_endpoint(endpoint: str, services: Iterable[str]) -> str:
    """The endpoint if the server may POST to it; ``BadRequest`` saying why not otherwise."""
    if len(endpoint) > MAX_ENDPOINT:
        raise BadRequest(f"the push endpoint is over {MAX_ENDPOINT} characters")
    try:
        url = urlsplit(endpoint)
        host, port = (url.hostname or "").lower(), url.port
    except ValueError as exc:
        raise BadRequest("the push endpoint is not a valid URL") from exc
    if url.scheme != "https":
        raise BadRequest("the push endpoint must be an https URL")
    if url.username is not None or url.password is not None or not host:
        raise BadRequest("the push endpoint must name a host and carry no credentials")
    if not allowed_host(host, port, services):
        raise BadRequest(f"{host} is not a known push service")
    return endpoint
