"""The local object store's signed URLs (chalicelib/adapters/local_objects.py): what a URL is
signed for is all it allows, and a malformed signature is refused, never a crash."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.local_objects import BadBlobUrl, LocalObjectStore


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_a_url_allows_what_it_was_signed_for_only(tmp_path: Path) -> None:
    clock = ManualClock(1_000)
    store = LocalObjectStore(str(tmp_path), "http://127.0.0.1:8000", clock)
    signed = query_of(store.upload_url("o_a/b_1", 300, 60).url)
    assert store.check("PUT", "o_a/b_1", signed) == 300
    for method, key, query in (
        ("GET", "o_a/b_1", signed),  # another method
        ("PUT", "o_a/b_2", signed),  # another blob
        ("PUT", "o_a/b_1", {**signed, "size": "301"}),  # a larger upload
        ("PUT", "o_a/b_1", {**signed, "sig": "é" * 64}),  # non-ASCII: refused, not a TypeError
        ("PUT", "o_a/b_1", {**signed, "sig": ""}),
    ):
        with pytest.raises(BadBlobUrl):
            store.check(method, key, query)
    clock.advance(61)
    with pytest.raises(BadBlobUrl):
        store.check("PUT", "o_a/b_1", signed)
