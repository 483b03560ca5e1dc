"""The web app's file encryption (web/js/filecrypt.js) against the Python client's
(bocage/client/filecrypt.py), under node: each side opens what the other sealed, both produce the
same bytes from the same key and prefix, and both refuse the same altered blobs."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from bocage.client.filecrypt import (
    CHUNK_BYTES,
    HEADER_BYTES,
    MAC_BYTES,
    FileRef,
    blob_size,
    decrypt_file,
    encrypt_file,
    padded_size,
    parse_file_ref,
    seal_file,
)
from chalicelib.domain.encoding import b64d, b64e
from tests.wire_js import ROOT, run_harness

HARNESS = ROOT / "tests" / "browser" / "files_harness.mjs"
STEP = CHUNK_BYTES + MAC_BYTES


def run_files(*commands: dict[str, Any]) -> list[Any]:
    return run_harness(HARNESS, *commands)


def test_python_and_js_make_the_same_blob_and_size_buckets() -> None:
    key, prefix = secrets.token_bytes(32), secrets.token_bytes(16)
    data = secrets.token_bytes(150_000)
    sizes = [0, 1, 255, 256, 65_535, 65_536, 1_000_000, 4_000_000, 25_000_000]
    blob, buckets = run_files(
        {"op": "encrypt", "data": b64e(data), "key": b64e(key), "prefix": b64e(prefix)},
        {"op": "sizes", "sizes": sizes},
    )
    assert b64d(blob) == encrypt_file(data, key, prefix)
    assert buckets == [[padded_size(n), blob_size(n)] for n in sizes]


@pytest.mark.parametrize("size", [0, 70_000, 300_001])
def test_each_side_opens_what_the_other_sealed(size: int) -> None:
    data = secrets.token_bytes(size)
    ref, blob = seal_file(data, "b_py", "relevé é.pdf", "application/pdf")
    [opened, js_sealed] = run_files(
        {"op": "decrypt", "blob": b64e(blob), "ref": ref.to_content()},
        {"op": "seal", "data": b64e(data), "blob_id": "b_js", "name": "photo 📷.jpg", "mime": "image/jpeg"},
    )
    assert b64d(opened["data"]) == data
    js_ref = parse_file_ref(js_sealed["ref"])
    assert js_ref.name == "photo 📷.jpg" and js_ref.size == size
    assert decrypt_file(b64d(js_sealed["blob"]), js_ref) == data


def _altered(blob: bytes, other: bytes) -> dict[str, bytes]:
    body = blob[HEADER_BYTES:]
    chunks = [body[i : i + STEP] for i in range(0, len(body), STEP)]
    other_chunks = [other[HEADER_BYTES:][i : i + STEP] for i in range(0, len(other) - HEADER_BYTES, STEP)]
    flipped = bytearray(blob)
    flipped[HEADER_BYTES + STEP + 3] ^= 0x40
    head = blob[:HEADER_BYTES]
    return {
        "tampered": bytes(flipped),
        "truncated": head + b"".join(chunks[:-1]),
        "reordered": head + chunks[1] + chunks[0] + b"".join(chunks[2:]),
        "dropped": head + chunks[0] + b"".join(chunks[2:]),
        "swapped": head + chunks[0] + other_chunks[1] + b"".join(chunks[2:]),
        "other blob": other,
    }


def test_both_clients_refuse_the_same_altered_blobs() -> None:
    ref, blob = seal_file(secrets.token_bytes(200_000), "b_site", "plan.pdf", "application/pdf")
    _, other = seal_file(secrets.token_bytes(200_000), "b_else", "plan.pdf", "application/pdf")
    cases = _altered(blob, other)
    results = run_files(
        *({"op": "decrypt", "blob": b64e(bad), "ref": ref.to_content()} for bad in cases.values())
    )
    for (name, bad), result in zip(cases.items(), results, strict=True):
        expected = "TruncatedFile" if name == "truncated" else "TamperedFile"
        assert result["error"] == expected, name
        with pytest.raises(Exception) as raised:
            decrypt_file(bad, ref)
        assert type(raised.value).__name__ == expected, name
        assert str(raised.value) == result["message"], name


def test_both_clients_refuse_the_same_malformed_references() -> None:
    ref, _ = seal_file(b"x", "b_ok", "a.txt", "text/plain")
    bad = [
        {**ref.to_content(), "name": "../x"},
        {**ref.to_content(), "size": 1.5},
        {**ref.to_content(), "key": b64e(bytes(16))},
        {k: v for k, v in ref.to_content().items() if k != "mime"},
    ]
    results = run_files(
        *({"op": "parse_ref", "ref": raw} for raw in bad), {"op": "parse_ref", "ref": ref.to_content()}
    )
    assert all(r.get("error") == "FileCryptoError" for r in results[:-1]), results
    assert parse_file_ref(results[-1]) == ref
    assert isinstance(ref, FileRef)
