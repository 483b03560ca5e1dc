"""HTTP answers as data: which ones `bocage serve` compresses."""

from __future__ import annotations

import gzip

import pytest

from bocage.local.answers import Answer, accepts_gzip, compressed, json_answer


@pytest.mark.parametrize(
    ("header", "takes"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        (None, False),
    ],
)
def test_accept_encoding(header: str | None, takes: bool) -> None:
    assert accepts_gzip(header) is takes


def test_only_large_text_is_compressed() -> None:
    text = Answer(200, [("Content-Type", "application/json"), ("ETag", '"abc"')], b'{"a": 1}' * 200)
    packed = compressed(text, "gzip")
    assert gzip.decompress(packed.body) == text.body
    assert ("Content-Encoding", "gzip") in packed.headers and ("ETag", 'W/"abc"') in packed.headers
    image = Answer(200, [("Content-Type", "image/png")], b"\x89PNG" * 500)
    assert compressed(image, "gzip") is image
    assert compressed(json_answer(200, {"small": True}), "gzip").body == b'{"small": true}'
    assert compressed(Answer(304, [("Content-Type", "text/css")]), "gzip").status == 304
