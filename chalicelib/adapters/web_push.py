"""The WebPush port: sealed pushes POSTed to the browsers' push services (RFC 8030).

Each request carries the VAPID authorisation (RFC 8292), ``TTL``, and a ``Topic``, so a
phone that stays offline finds one pending push, not one per message. Redirects are never
followed: the endpoint passed the allow-list, wherever a redirect points did not. The
cryptography is imported on the first push (or the first read of the public key), never at
start: a Lambda that only stores a message does not load it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from chalicelib.ports import PushRequest

if TYPE_CHECKING:
    import urllib.request

    from chalicelib.adapters.web_push_crypto import VapidKey

logger = logging.getLogger(__name__)

PARALLEL = 8
TIMEOUT = 10
PUSH_TTL = 24 * 3600  # a push older than a day wakes nobody: the app catches up when opened
TOPIC = "bocage"  # the push service keeps the newest pending push of this topic per device
GONE = (404, 410)


def _opener() -> urllib.request.OpenerDirector:
    """HTTPS that follows no redirect (a 3xx is then an HTTPError: the push failed, nothing else
    was called), with a context per push: it reads SSL_CERT_FILE, as a self-hosted push service
    may need. Imported here: a cold start that sends no push does not load ssl or urllib."""
    import ssl
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    https = urllib.request.HTTPSHandler(context=ssl.create_default_context())
    return urllib.request.build_opener(NoRedirect, https)


class WebPushSender:
    def __init__(
        self, private_key: str | Callable[[], str], subject: str, *, parallel: int = PARALLEL
    ) -> None:
        """``private_key``: the VAPID key's text, or what reads it (AWS: an SSM SecureString)."""
        self._private_key = private_key
        self._subject = subject
        self._key: VapidKey | None = None
        self._parallel = parallel
        self._pool: ThreadPoolExecutor | None = None

    @property
    def key(self) -> VapidKey:
        if self._key is None:
            from chalicelib.adapters.web_push_crypto import VapidKey

            text = self._private_key if isinstance(self._private_key, str) else self._private_key()
            self._key = VapidKey.from_text(text)
        return self._key

    @property
    def public_key(self) -> str:
        return self.key.public_key

    def send_many(self, requests: Sequence[PushRequest]) -> list[str]:
        if len(requests) <= 1:
            outcomes = [self._try_send(r) for r in requests]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._parallel, thread_name_prefix="webpush")
            outcomes = list(self._pool.map(self._try_send, requests))
        return [r.device_id for r, gone in zip(requests, outcomes, strict=True) if gone]

    def _try_send(self, request: PushRequest) -> bool:
        """True when the push service says the subscription is gone. Endpoints are not logged:
        they identify a device to its push service."""
        from urllib.error import HTTPError

        try:
            self.send(request)
        except HTTPError as error:
            if error.code in GONE:
                return True
            logger.warning("web push refused", extra={"status": error.code, "device_id": request.device_id})
        except Exception:
            logger.warning("web push failed", extra={"device_id": request.device_id}, exc_info=True)
        return False

    def send(self, request: PushRequest) -> None:
        import urllib.request

        from chalicelib.adapters.web_push_crypto import encrypt

        body = encrypt(request.payload, request.p256dh, request.auth)
        headers = {
            "Authorization": self.key.authorization(request.endpoint, self._subject, int(time.time())),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(PUSH_TTL),
            "Topic": TOPIC,
            "Urgency": "normal",
        }
        # The endpoint passed check_endpoint when it was registered: https, an allowed host.
        post = urllib.request.Request(request.endpoint, data=body, headers=headers, method="POST")  # noqa: S310
        with _opener().open(post, timeout=TIMEOUT) as answer:
            answer.read()
