"""File encryption (bocage/client/filecrypt.py, docs/protocol.md section 18): a file opens only
as exactly the bytes its message describes; every way a server could alter the blob fails loudly."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from bocage.client.filecrypt import (
    CHUNK_BYTES,
    HEADER_BYTES,
    MAC_BYTES,
    FileCryptoError,
    FileRef,
    TamperedFile,
    TruncatedFile,
    blob_size,
    decrypt_file,
    encrypt_file,
    padded_size,
    parse_file_ref,
    seal_file,
)

STEP = CHUNK_BYTES + MAC_BYTES


def _chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    body = blob[HEADER_BYTES:]
    return blob[:HEADER_BYTES], [body[i : i + STEP] for i in range(0, len(body), STEP)]


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65_535, 65_536, 200_000, 1_000_003])
def test_a_file_opens_as_itself_and_its_blob_has_the_announced_size(size: int) -> None:
    data = secrets.token_bytes(size)
    ref, blob = seal_file(data, "b_test", "plan.pdf", "application/pdf")
    assert len(blob) == blob_size(size)
    assert decrypt_file(blob, ref) == data
    assert data[:32] not in blob or size < 32


def test_the_server_learns_only_a_size_bucket() -> None:
    assert padded_size(0) == 256
    assert padded_size(255) == 256
    assert padded_size(4_000_000) == 4_194_304
    assert blob_size(3_950_000) == blob_size(4_100_000)
    for size in (1, 1000, 70_000, 4_000_000, 25_000_000):
        assert size < padded_size(size) <= max(256, (size + 1) * 1.125)


def test_the_same_file_twice_gives_unrelated_blobs() -> None:
    data = b"compte rendu du conseil" * 100
    (ref1, blob1), (ref2, blob2) = (
        seal_file(data, "b_a", "cr.txt", "text/plain"),
        seal_file(data, "b_b", "cr.txt", "text/plain"),
    )
    assert ref1.key != ref2.key and blob1[1:HEADER_BYTES] != blob2[1:HEADER_BYTES]
    assert blob1[HEADER_BYTES:] != blob2[HEADER_BYTES:]


@pytest.fixture
def sealed() -> tuple[bytes, FileRef, bytes]:
    data = secrets.token_bytes(200_000)  # four chunks once padded
    ref, blob = seal_file(data, "b_site", "chantier.jpg", "image/jpeg")
    return data, ref, blob


def test_a_flipped_bit_anywhere_is_tampering(sealed: tuple[bytes, FileRef, bytes]) -> None:
    _, ref, blob = sealed
    for at in (1, HEADER_BYTES, HEADER_BYTES + STEP + 7, len(blob) - 1):
        broken = bytearray(blob)
        broken[at] ^= 0x01
        with pytest.raises(TamperedFile):
            decrypt_file(bytes(broken), ref)


def test_a_blob_cut_at_a_chunk_boundary_is_truncated(sealed: tuple[bytes, FileRef, bytes]) -> None:
    _, ref, blob = sealed
    header, chunks = _chunks(blob)
    with pytest.raises(TruncatedFile, match="cut short"):
        decrypt_file(header + b"".join(chunks[:-1]), ref)


def test_a_blob_cut_inside_a_chunk_fails(sealed: tuple[bytes, FileRef, bytes]) -> None:
    _, ref, blob = sealed
    with pytest.raises(TamperedFile):
        decrypt_file(blob[:-100], ref)
    with pytest.raises(TamperedFile, match="not a Bocage file"):
        decrypt_file(blob[:10], ref)


def test_reordered_or_dropped_chunks_fail(sealed: tuple[bytes, FileRef, bytes]) -> None:
    _, ref, blob = sealed
    header, chunks = _chunks(blob)
    with pytest.raises(TamperedFile, match="chunk 0"):
        decrypt_file(header + chunks[1] + chunks[0] + b"".join(chunks[2:]), ref)
    with pytest.raises(TamperedFile, match="chunk 1"):
        decrypt_file(header + chunks[0] + b"".join(chunks[2:]), ref)


def test_a_chunk_or_blob_from_another_file_fails(sealed: tuple[bytes, FileRef, bytes]) -> None:
    _, ref, blob = sealed
    other_ref, other = seal_file(secrets.token_bytes(200_000), "b_other", "x.jpg", "image/jpeg")
    header, chunks = _chunks(blob)
    _, other_chunks = _chunks(other)
    with pytest.raises(TamperedFile, match="chunk 2"):
        decrypt_file(header + chunks[0] + chunks[1] + other_chunks[2] + chunks[3], ref)
    with pytest.raises(TamperedFile):
        decrypt_file(other, ref)
    # Same key reused with another prefix (a server cannot do this, but the nonce binds it anyway).
    with pytest.raises(TamperedFile):
        decrypt_file(blob[:1] + other[1:HEADER_BYTES] + blob[HEADER_BYTES:], ref)
    assert decrypt_file(other, other_ref) != decrypt_file(blob, ref)


def test_a_message_that_lies_about_the_file_is_refused(sealed: tuple[bytes, FileRef, bytes]) -> None:
    _, ref, blob = sealed
    with pytest.raises(TamperedFile, match="SHA-256"):
        decrypt_file(
            blob,
            FileRef(ref.blob_id, ref.name, ref.mime, ref.size, hashlib.sha256(b"x").hexdigest(), ref.key),
        )
    with pytest.raises(FileCryptoError):
        decrypt_file(blob, FileRef(ref.blob_id, ref.name, ref.mime, ref.size - 1, ref.sha256, ref.key))
    with pytest.raises(TruncatedFile):
        decrypt_file(blob, FileRef(ref.blob_id, ref.name, ref.mime, ref.size * 2, ref.sha256, ref.key))


def test_encryption_is_deterministic_given_key_and_prefix() -> None:
    key, prefix = bytes(range(32)), bytes(range(100, 116))
    assert encrypt_file(b"abc", key, prefix) == encrypt_file(b"abc", key, prefix)
    assert encrypt_file(b"abc", key, prefix)[:HEADER_BYTES] == b"\x01" + prefix


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": True}, "size"),
        ({"size": -1}, "size"),
        ({"name": "../etc/passwd"}, "no path"),
        ({"name": ""}, "no path"),
        ({"mime": "not a type"}, "media type"),
        ({"key": "AAAA"}, "32 bytes"),
        ({"key": "!!"}, "base64url"),
        ({"sha256": "00"}, "sha256"),
        ({"blob_id": "a b"}, "blob_id"),
        ({"extra": 1}, "exactly"),
    ],
)
def test_a_malformed_file_reference_is_refused(change: dict[str, object], message: str) -> None:
    ref, _ = seal_file(b"x", "b_ok", "a.txt", "text/plain")
    raw = {**ref.to_content(), **change}
    with pytest.raises(FileCryptoError, match=message):
        parse_file_ref(raw)
    assert parse_file_ref(ref.to_content()) == ref
