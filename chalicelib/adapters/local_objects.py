"""Blobs in a directory, for ``bocage serve``: the same short-lived signed URLs as S3's presigned
ones, checked by the gateway (``bocage/local/blobs.py``) that serves them.

A URL carries its method, key, exact size (uploads) and expiry, signed with HMAC-SHA256 under a
secret kept in the data directory (created on first use, readable by its owner only): whoever
holds a URL may do that one thing with that one blob until it expires, nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

from chalicelib.ports import Clock, SignedUrl

#: Where the gateway serves blobs.
BLOB_PATH = "/blobs/"
SIGNING_KEY_FILENAME = "blob-urls.key"
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,4}\Z")


class BadBlobUrl(Exception):
    """A blob URL that is not signed by this server, is expired, or names another request."""


def load_secret(data_dir: str) -> bytes:
    """The data directory's URL-signing secret, made on first use (mode 0600)."""
    path = Path(data_dir) / SIGNING_KEY_FILENAME
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another replica or worker made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(32))
    return path.read_bytes()


class LocalObjectStore:
    """Blobs under ``<data dir>/blobs``; the signing secret is read (or made) on first use only."""

    def __init__(self, data_dir: str, base_url: str, clock: Clock) -> None:
        self._data_dir = data_dir
        self._root = Path(data_dir) / "blobs"
        self._base = base_url.rstrip("/")
        self._clock = clock

    @functools.cached_property
    def _secret(self) -> bytes:
        return load_secret(self._data_dir)

    def path_of(self, key: str) -> Path:
        if not _KEY.match(key):
            raise BadBlobUrl(f"not a blob key: {key!r}")
        return self._root / key

    def _signature(self, method: str, key: str, size: int, expires: int) -> str:
        message = f"{method}\n{key}\n{size}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _url(self, method: str, key: str, size: int, expires_in: int) -> SignedUrl:
        self.path_of(key)
        expires = self._clock.now() + expires_in
        query = {"expires": expires, "size": size, "sig": self._signature(method, key, size, expires)}
        headers = {"Content-Length": str(size)} if method == "PUT" else {}
        return SignedUrl(f"{self._base}{BLOB_PATH}{key}?{urlencode(query)}", method, expires, headers)

    def upload_url(self, key: str, size: int, expires_in: int) -> SignedUrl:
        return self._url("PUT", key, size, expires_in)

    def download_url(self, key: str, expires_in: int) -> SignedUrl:
        return self._url("GET", key, 0, expires_in)

    def check(self, method: str, key: str, query: Mapping[str, str]) -> int:
        """The size a signed URL allows (0 for a GET), or BadBlobUrl."""
        try:
            expires, size = int(query.get("expires", "")), int(query.get("size", ""))
        except ValueError:
            raise BadBlobUrl("the blob URL is not signed") from None
        expected = self._signature(method, key, size, expires)
        given = query.get("sig", "")
        if not given.isascii() or not hmac.compare_digest(expected, given):  # non-ASCII: refused, not a 500
            raise BadBlobUrl("the blob URL's signature does not match")
        if self._clock.now() > expires:
            raise BadBlobUrl("the blob URL has expired")
        self.path_of(key)
        return size

    def size_of(self, key: str) -> int | None:
        try:
            return self.path_of(key).stat().st_size
        except FileNotFoundError:
            return None

    def partial(self, key: str) -> Path:
        """A temporary file to receive a blob into; ``commit`` makes it the blob whole."""
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")

    def commit(self, partial: Path, key: str) -> None:
        os.replace(partial, self.path_of(key))

    def write(self, key: str, data: bytes) -> None:
        """Store a whole blob at once (a temporary file renamed): never a half-written one."""
        partial = self.partial(key)
        partial.write_bytes(data)
        self.commit(partial, key)

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def set_lifetime(self, key: str, days: int) -> None:
        """A directory has no lifecycle of its own: the purge job is the only deleter here."""
        self.path_of(key)
