"""Sending and fetching photos and documents (docs/protocol.md, section 18) with a Messenger.

The blob goes to the upload URL the server issues and comes back from a download URL: its bytes
never pass through the API. The message that carries the file's key is sent first, then the blob
is bound to it, so the blob lives exactly as long as that message.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import urlsplit

from bocage.client.filecrypt import (
    FileCryptoError,
    FileRef,
    blob_size,
    decrypt_file,
    parse_file_ref,
    seal_file,
)
from bocage.client.images import THUMB_MAX_BYTES
from bocage.client.messenger import Messenger
from chalicelib.domain.encoding import b64e

TRANSFER_TIMEOUT = 120
BLOCK = 64 * 1024  # bytes read or handed to the socket at a time, and between progress reports

#: Called as bytes move: (bytes done, bytes in all). An upload tried again starts again at 0.
Progress = Callable[[int, int], None]


class FileUnavailable(ValueError):
    """The message has no file this client can fetch (none, deleted, or not served)."""


class Transfer(Protocol):
    """Moves blob bytes to and from signed URLs (HTTP; in-process tests go straight to the store)."""

    def put(self, url: str, headers: Mapping[str, str], body: bytes) -> None: ...

    def get(self, url: str, limit: int) -> bytes:
        """The blob at ``url``; FileUnavailable past ``limit`` bytes (never reads more)."""
        ...


def _http_only(url: str) -> str:
    """A blob URL from the server: plain HTTP(S) only, never file: or another scheme."""
    if not url.startswith(("https://", "http://")):
        raise FileUnavailable("the server gave a file URL that is not HTTP(S)")
    return url


def blob_url(url: str, server: str) -> str:
    """A blob URL the API server named, checked before any request (attacker review L4): HTTPS
    (an object store, S3 on AWS), or the API server's own host (`bocage serve` stores blobs
    itself, over plain HTTP on one machine). Else a server could point this device at any
    plain-HTTP address of its network, a router's page or a metadata service."""
    target, api = urlsplit(_http_only(url)), urlsplit(server)
    if target.username is not None or target.password is not None:
        raise FileUnavailable("the server gave a file URL with credentials in it")
    if target.scheme != "https" and target.hostname != api.hostname:
        raise FileUnavailable(f"the server gave a plain-HTTP file URL on another host than {api.hostname}")
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A blob URL is fetched where it points, never where an answer redirects to (which
    ``blob_url`` did not check): the 3xx is an error."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class HttpTransfer:
    """Blob bytes over HTTP(S). An upload cut by the network is tried again (``attempts`` in all,
    a second apart): the slot's URL stays valid for 15 minutes, and a retry after an upload
    that did land is answered 409 by `bocage serve` (S3 simply overwrites), which counts as done
    since binding the blob checks its stored size anyway."""

    def __init__(self, attempts: int = 3, pause: float = 1.0, progress: Progress | None = None) -> None:
        self._attempts = attempts
        self._pause = pause
        self._progress = progress or (lambda done, total: None)

    def put(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        url = _http_only(url)
        for attempt in range(1, self._attempts + 1):
            request = urllib.request.Request(  # noqa: S310  (checked: HTTP(S) only)
                url,
                data=_Reported(body, self._progress),
                method="PUT",
                headers={**headers, "Content-Type": "application/octet-stream"},
            )
            try:
                with _OPENER.open(request, timeout=TRANSFER_TIMEOUT):
                    return
            except urllib.error.HTTPError as refused:
                if refused.code == HTTPStatus.CONFLICT and attempt > 1:
                    return  # the earlier attempt landed; its answer was lost
                raise FileUnavailable(f"the upload was refused ({refused.code})") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as cut:
                if attempt == self._attempts:
                    raise FileUnavailable(f"the upload did not get through ({cut})") from None
                time.sleep(self._pause)

    def get(self, url: str, limit: int) -> bytes:
        data = bytearray()
        try:
            with _OPENER.open(_http_only(url), timeout=TRANSFER_TIMEOUT) as answer:
                while block := answer.read(min(BLOCK, limit + 1 - len(data))):
                    data += block
                    self._progress(min(len(data), limit), limit)
                    if len(data) > limit:  # a server cannot fill the disk or memory with a bigger "file"
                        raise FileUnavailable(f"the server sent more than the file's {limit} bytes")
        except urllib.error.HTTPError as refused:
            raise FileUnavailable(f"the file could not be fetched ({refused.code})") from None
        return bytes(data)


class _Reported:
    """An upload's bytes, handed to the socket a block at a time (http.client reads a body that
    has ``read``), each block reported before it is sent."""

    def __init__(self, body: bytes, progress: Progress) -> None:
        self._body = memoryview(body)
        self._sent = 0
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        end = len(self._body) if size < 0 else self._sent + min(size, BLOCK)
        block = self._body[self._sent : end].tobytes()
        if block:
            self._sent += len(block)
            self._progress(self._sent, len(self._body))
        return block


def send_file(
    messenger: Messenger,
    channel_id: str,
    data: bytes,
    name: str,
    mime: str,
    text: str = "",
    *,
    transfer: Transfer | None = None,
    thumb: bytes | None = None,
) -> dict[str, Any]:
    """Encrypt, upload, send the message carrying the key (and a photo's thumbnail, at most
    8 KB, inside the sealed content), bind the blob to it."""
    transfer = transfer or HttpTransfer()
    parse_file_ref(
        FileRef("b_check", name, mime, len(data), "0" * 64, bytes(32)).to_content()
    )  # before any slot
    client = messenger.client
    slot = client.request("POST", f"/channels/{channel_id}/files", {"size": blob_size(len(data))})
    ref, blob = seal_file(data, slot["blob_id"], name, mime)
    transfer.put(blob_url(slot["upload_url"], client.server), slot["headers"], blob)
    content: dict[str, Any] = {"type": "text", "text": text, "file": ref.to_content()}
    if thumb is not None:
        if len(thumb) > THUMB_MAX_BYTES:
            raise ValueError(f"a thumbnail is at most {THUMB_MAX_BYTES} bytes")
        content["thumb"] = b64e(thumb)
    receipt = messenger.send(channel_id, content)
    bound = client.request(
        "PUT", f"/channels/{channel_id}/files/{ref.blob_id}", {"message_id": receipt["message_id"]}
    )
    attachment = {"blob_id": ref.blob_id, "name": name, "mime": mime, "size": len(data)}
    return {
        **receipt,
        "attachment": {**attachment, "stored_bytes": len(blob), "expires_at": bound["expires_at"]},
    }


def fetch_file(
    messenger: Messenger, channel_id: str, message_id: str, *, transfer: Transfer | None = None
) -> tuple[dict[str, Any], bytes]:
    """The file of one message, decrypted and checked against what the message says of it."""
    transfer = transfer or HttpTransfer()
    shown = next((m for m in messenger.history(channel_id) if m.get("message_id") == message_id), None)
    if shown is None or not shown.get("verified"):
        raise FileUnavailable(f"no readable message {message_id} in this channel")
    raw = (shown.get("content") or {}).get("file")
    if raw is None:
        raise FileUnavailable(f"message {message_id} carries no file")
    ref = parse_file_ref(raw)
    answer = messenger.client.request("GET", f"/channels/{channel_id}/files/{ref.blob_id}")
    url = blob_url(answer["url"], messenger.client.server)
    data = decrypt_file(transfer.get(url, blob_size(ref.size)), ref)
    return {"name": ref.name, "mime": ref.mime, "size": ref.size, "sha256": ref.sha256}, data


__all__ = ["FileCryptoError", "FileUnavailable", "HttpTransfer", "Transfer", "fetch_file", "send_file"]
