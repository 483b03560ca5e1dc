"""Photos and documents, encrypted on the device before they leave it (docs/protocol.md,
section 18), pure and I/O-free.

A file gets a fresh random key and is sealed in 64 KiB chunks, each a SecretBox whose nonce binds
a random per-file prefix, the chunk's index and whether it is the last: chunks cannot be reordered,
dropped, cut off at the end or taken from another file without opening failing. The plaintext is
padded to a size bucket first, so the server, which stores the blob, learns its size only roughly.
The key, the file's hash, size, type and name travel in the sealed message (``file`` in a text
content), never in clear. The web client implements the same bytes (``web/js/filecrypt.js``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
from nacl.bindings import crypto_secretbox, crypto_secretbox_open

from bocage.client.crypto import CryptoError
from chalicelib.domain.encoding import b64d, b64e

VERSION = 1
CHUNK_BYTES = 64 * 1024
MAC_BYTES = 16
KEY_BYTES = 32
PREFIX_BYTES = 16
HEADER_BYTES = 1 + PREFIX_BYTES
_MIN_GRAIN_BITS = 8
_MANTISSA_BITS = 3
_MARKER = 0x80
_MAX_NAME = 255
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\Z")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}\Z")
_BLOB_ID = re.compile(r"^[A-Za-z0-9_-]{3,64}\Z")


class FileCryptoError(CryptoError):
    """A blob that does not open as the file its message describes: never show any of it."""


class TamperedFile(FileCryptoError):
    """A chunk was altered, moved, or comes from another file."""


class TruncatedFile(FileCryptoError):
    """The blob stops before its last chunk: bytes are missing at the end."""


@dataclass(frozen=True)
class FileRef:
    """What a message says about its file (``content.file``): enough to fetch, open and check it."""

    blob_id: str
    name: str
    mime: str
    size: int
    sha256: str
    key: bytes

    def to_content(self) -> dict[str, Any]:
        return {
            "blob_id": self.blob_id,
            "key": b64e(self.key),
            "mime": self.mime,
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
        }


def padded_size(size: int) -> int:
    """The bucket a file of ``size`` bytes is padded to: ``size + 1`` rounded up to keep 3 bits
    after the leading one (at most 12.5 % more), never finer than 256 bytes."""
    length = size + 1
    grain = 1 << max(_MIN_GRAIN_BITS, length.bit_length() - 1 - _MANTISSA_BITS)
    return -(-length // grain) * grain


def blob_size(size: int) -> int:
    """The stored blob's length for a file of ``size`` bytes: all the server learns of it."""
    padded = padded_size(size)
    chunks = -(-padded // CHUNK_BYTES)
    return HEADER_BYTES + padded + chunks * MAC_BYTES


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + b"\x00\x00\x00" + (b"\x01" if final else b"\x00")


def new_file_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encrypt_file(data: bytes, key: bytes, prefix: bytes | None = None) -> bytes:
    """The blob for ``data``: version byte, nonce prefix, then the sealed chunks of the padded file."""
    if len(key) != KEY_BYTES:
        raise ValueError("a file key is 32 bytes")
    prefix = secrets.token_bytes(PREFIX_BYTES) if prefix is None else prefix
    if len(prefix) != PREFIX_BYTES:
        raise ValueError("a nonce prefix is 16 bytes")
    padded = data + bytes([_MARKER]) + bytes(padded_size(len(data)) - len(data) - 1)
    starts = range(0, len(padded), CHUNK_BYTES)
    last = len(starts) - 1
    parts = [bytes([VERSION]), prefix]
    for index, start in enumerate(starts):
        chunk = padded[start : start + CHUNK_BYTES]
        parts.append(crypto_secretbox(chunk, _nonce(prefix, index, index == last), key))
    return b"".join(parts)


def _open_chunk(sealed: bytes, prefix: bytes, index: int, final: bool, key: bytes) -> bytes:
    try:
        return crypto_secretbox_open(sealed, _nonce(prefix, index, final), key)
    except nacl.exceptions.CryptoError:
        pass
    if final:
        try:
            crypto_secretbox_open(sealed, _nonce(prefix, index, False), key)
        except nacl.exceptions.CryptoError:
            pass
        else:
            raise TruncatedFile(f"the file is cut short: chunk {index} is not its last") from None
    raise TamperedFile(f"chunk {index} of the file does not open: altered, moved or from another file")


def decrypt_file(blob: bytes, ref: FileRef) -> bytes:
    """The file ``ref`` describes, from its stored blob; ``FileCryptoError`` if it is not exactly it."""
    if len(blob) < HEADER_BYTES + MAC_BYTES or blob[0] != VERSION:
        raise TamperedFile("not a Bocage file blob (version 1)")
    prefix, body = blob[1:HEADER_BYTES], blob[HEADER_BYTES:]
    step = CHUNK_BYTES + MAC_BYTES
    count = -(-len(body) // step)
    plain = []
    for index in range(count):
        sealed = body[index * step : (index + 1) * step]
        if len(sealed) < MAC_BYTES:
            raise TamperedFile(f"chunk {index} of the file is too short")
        plain.append(_open_chunk(sealed, prefix, index, index == count - 1, ref.key))
    padded = b"".join(plain)
    if len(padded) != padded_size(ref.size):
        raise TruncatedFile(
            f"the file is {len(padded)} padded bytes, its message says {padded_size(ref.size)}"
        )
    data, rest = padded[: ref.size], padded[ref.size :]
    if rest[:1] != bytes([_MARKER]) or any(rest[1:]):
        raise TamperedFile("the file's padding is not exactly 0x80 then zeros")
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise TamperedFile("the file's SHA-256 is not the one its message names")
    return data


def seal_file(data: bytes, blob_id: str, name: str, mime: str) -> tuple[FileRef, bytes]:
    """A fresh key, the blob to upload and the reference to put in the message."""
    key = new_file_key()
    ref = FileRef(blob_id, name, mime, len(data), hashlib.sha256(data).hexdigest(), key)
    parse_file_ref(ref.to_content())
    return ref, encrypt_file(data, key)


def _field(raw: Mapping[str, Any], name: str, kind: type) -> Any:
    value = raw.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise FileCryptoError(f"the message's file has no valid {name!r}")
    return value


def parse_file_ref(raw: object) -> FileRef:
    """A message's ``content.file``, checked: a reader shows no file it cannot trust the shape of."""
    if not isinstance(raw, Mapping) or set(raw) != {"blob_id", "key", "mime", "name", "sha256", "size"}:
        raise FileCryptoError("the message's file must have exactly blob_id, key, mime, name, sha256, size")
    blob_id, name, mime = _field(raw, "blob_id", str), _field(raw, "name", str), _field(raw, "mime", str)
    size, digest = _field(raw, "size", int), _field(raw, "sha256", str)
    if not _BLOB_ID.match(blob_id):
        raise FileCryptoError("the message's file has a malformed blob_id")
    if (
        not 1 <= len(name) <= _MAX_NAME
        or "/" in name
        or "\\" in name
        or name in {".", ".."}
        or "\x00" in name
    ):
        raise FileCryptoError("the message's file name must be 1-255 characters, no path")
    if not _MIME.match(mime):
        raise FileCryptoError("the message's file type is not a media type")
    if not 0 <= size <= 2**31 - 1 or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise FileCryptoError("the message's file has a bad size or sha256")
    encoded = _field(raw, "key", str)
    if not _B64URL.match(encoded):
        raise FileCryptoError("the message's file key is not base64url")
    key = b64d(encoded)
    if len(key) != KEY_BYTES:
        raise FileCryptoError("the message's file key is not 32 bytes")
    return FileRef(blob_id, name, mime, size, digest, key)
