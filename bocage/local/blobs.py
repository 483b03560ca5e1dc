"""The encrypted file blobs of ``bocage serve``: what S3's presigned URLs are on AWS.

``PUT /blobs/<key>?expires&size&sig`` stores exactly ``size`` bytes (Content-Length must say so;
the body is streamed to a temporary file and renamed, so a cut upload leaves nothing and an
upload never sits in memory), ``GET`` returns the blob as an opaque download: a member could
upload any bytes in place of a sealed blob, and this is the web app's origin, so a browser must
never sniff or render one. The URL's HMAC (chalicelib/adapters/local_objects.py) is the only authority:
the API issued it to a member allowed to do that one thing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl

from bocage.local.answers import Answer, refusal
from bocage.local.rest import ClientGone, Receive, Scope, Send, header_pairs, respond
from chalicelib.adapters.local_objects import BLOB_PATH, BadBlobUrl, LocalObjectStore

#: A blob is never rendered nor sniffed, even if it is not what its uploader's client sealed.
BLOB_HEADERS = (
    ("Content-Type", "application/octet-stream"),
    ("Content-Disposition", "attachment"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; sandbox"),
    ("Cache-Control", "no-store"),
)


class TooLong(Exception):
    """The body went past the size its URL was signed for."""


class BlobGateway:
    def __init__(self, store: LocalObjectStore, read_timeout: float = 120.0) -> None:
        self._store = store
        self._read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        key = scope["path"][len(BLOB_PATH) :]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if method not in {"GET", "PUT"}:
            await respond(send, refusal(405, "method_not_allowed", "blobs are PUT once and read with GET"))
            return
        try:
            size = self._store.check(method, key, query)
        except BadBlobUrl as exc:
            await respond(send, refusal(403, "forbidden", str(exc)))
            return
        if method == "GET":
            await respond(send, await asyncio.to_thread(self._read, key))
            return
        await respond(send, await self._upload(scope, receive, key, size))

    def _read(self, key: str) -> Answer:
        try:
            data = self._store.path_of(key).read_bytes()
        except FileNotFoundError:
            return refusal(404, "not_found", "no such blob (never uploaded, or deleted with its message)")
        return Answer(200, list(BLOB_HEADERS), data)

    async def _upload(self, scope: Scope, receive: Receive, key: str, size: int) -> Answer:
        headers = header_pairs(scope)
        lengths = {value.strip() for name, value in headers if name == "content-length"}
        if any(name == "transfer-encoding" for name, _ in headers) or lengths != {str(size)}:
            return refusal(
                400, "bad_request", f"the upload must be exactly {size} bytes, with that Content-Length"
            )
        if self._store.size_of(key) is not None:
            return refusal(409, "conflict", "this upload slot was already used")
        partial = self._store.partial(key)
        try:
            async with asyncio.timeout(self._read_timeout):
                received = await self._receive_into(receive, partial, size)
            if received != size:
                return refusal(400, "bad_request", f"the upload must be exactly {size} bytes")
            await asyncio.to_thread(self._store.commit, partial, key)
        except TooLong:
            return refusal(400, "bad_request", f"the upload must be exactly {size} bytes")
        except (TimeoutError, ClientGone):
            return refusal(408, "request_timeout", "the upload did not arrive whole: nothing was stored")
        finally:
            partial.unlink(missing_ok=True)
        return Answer(200)

    @staticmethod
    async def _receive_into(receive: Receive, partial: Path, size: int) -> int:
        """Write the body to ``partial`` as it arrives; the number of bytes received."""
        received = 0
        out: IO[bytes] = await asyncio.to_thread(partial.open, "wb")
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > size:
                    raise TooLong
                if chunk:
                    await asyncio.to_thread(out.write, chunk)
                if not message.get("more_body", False):
                    return received
        finally:
            await asyncio.to_thread(out.close)
