"""The activation QR code renders the URL's exact module grid, in every format.

There is no QR decoder here, so the PNG is read back with a small stdlib PNG
reader and its pixels, sampled at module centres, are compared with segno's matrix.
"""

from __future__ import annotations

import math
import struct
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import segno

from chalicelib.activation_qr import BORDER, SVG_TITLE, qr_png, qr_svg, qr_terminal, write_qr

URL = "https://bocage.example.org/activate#invite=Zm9vYmFyYmF6cXV4&org=les-jardins"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


# PNG filter type -> the prediction added back to each byte, from its left, up and up-left bytes.
_PREDICTORS: dict[int, Callable[[int, int, int], int]] = {
    0: lambda left, up, up_left: 0,
    1: lambda left, up, up_left: left,
    2: lambda left, up, up_left: up,
    3: lambda left, up, up_left: (left + up) // 2,
    4: _paeth,
}


@dataclass(frozen=True)
class PngImage:
    """What the decoder needs from the chunks: the IHDR fields, the palette and the joined IDAT data."""

    width: int
    height: int
    bit_depth: int
    colour_type: int
    palette: list[bytes]
    idat: bytes


def read_png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield each chunk's (type, body) up to IEND, checking every CRC."""
    assert data.startswith(PNG_SIGNATURE)
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        pos += 12 + length
        if kind == b"IEND":
            return
        yield kind, body


def read_png_image(data: bytes) -> PngImage:
    """Collect the header, palette and image data of a non-interlaced greyscale or palette PNG."""
    idat = b""
    palette: list[bytes] = []
    width = height = bit_depth = colour_type = 0
    for kind, body in read_png_chunks(data):
        if kind == b"IHDR":
            width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert interlace == 0
            assert colour_type in (0, 3), f"unexpected colour type {colour_type}"
        elif kind == b"PLTE":
            palette = [body[i : i + 3] for i in range(0, len(body), 3)]
        elif kind == b"IDAT":
            idat += body
    return PngImage(width, height, bit_depth, colour_type, palette, idat)


def unfilter_line(filter_type: int, line: bytearray, previous: bytearray, bpp: int) -> bytearray:
    """Undo one scanline's filter in place, given the already unfiltered line above it."""
    assert filter_type in _PREDICTORS, filter_type
    predict = _PREDICTORS[filter_type]
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up_left = previous[i - bpp] if i >= bpp else 0
        line[i] = (line[i] + predict(left, previous[i], up_left)) & 0xFF
    return line


def unfiltered_lines(raw: bytes, image: PngImage) -> Iterator[bytearray]:
    """Split the inflated image data into scanlines and unfilter each."""
    stride = (image.width * image.bit_depth + 7) // 8
    bpp = max(1, image.bit_depth // 8)
    previous = bytearray(stride)
    for offset in range(0, image.height * (1 + stride), 1 + stride):
        line = bytearray(raw[offset + 1 : offset + 1 + stride])
        previous = unfilter_line(raw[offset], line, previous, bpp)
        yield previous


def luminance(line: bytearray, image: PngImage) -> list[int]:
    """One scanline's samples as 0..255 luminance (a palette entry's mean of red, green and blue)."""
    depth = image.bit_depth
    mask = (1 << depth) - 1
    samples = [(line[(x * depth) // 8] >> (8 - depth - (x * depth) % 8)) & mask for x in range(image.width)]
    if image.colour_type == 3:
        return [sum(image.palette[s]) // 3 for s in samples]
    return [s * 255 // mask for s in samples]


def read_png_gray(data: bytes) -> list[list[int]]:
    """Decode a non-interlaced greyscale or palette PNG into rows of 0..255 luminance."""
    image = read_png_image(data)
    raw = zlib.decompress(image.idat)
    return [luminance(line, image) for line in unfiltered_lines(raw, image)]


def expected_grid(url: str) -> list[list[bool]]:
    qr = segno.make(url, error="m", micro=False)
    return [[bool(m) for m in row] for row in qr.matrix_iter(scale=1, border=BORDER)]


def test_png_has_signature_and_renders_exact_module_grid():
    scale = 5
    png = qr_png(URL, scale=scale)
    assert png.startswith(PNG_SIGNATURE)
    pixels = read_png_gray(png)
    grid = expected_grid(URL)
    assert len(pixels) == len(grid) * scale
    assert len(pixels[0]) == len(grid[0]) * scale
    half = scale // 2
    sampled = [
        [pixels[r * scale + half][c * scale + half] < 128 for c in range(len(grid[0]))]
        for r in range(len(grid))
    ]
    assert sampled == grid
    # the quiet zone really is light, all around
    assert not any(grid[0]) and not any(grid[-1])


def test_qr_uses_at_least_error_level_m_and_no_micro_qr():
    qr = segno.make(URL, error="m", micro=False)
    assert qr.error in ("M", "Q", "H")
    assert not segno.make("x", error="m", micro=False).is_micro
    # a short payload still gives a full QR code (phones rarely read Micro QR)
    assert read_png_gray(qr_png("x", scale=1))[0] == [255] * (21 + 2 * BORDER)


def test_svg_is_well_formed_and_titled():
    svg = qr_svg(URL)
    root = ET.fromstring(svg.encode("utf-8"))
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    title = root.find(f"{ns}title")
    assert title is not None and title.text == SVG_TITLE
    assert svg.startswith("<?xml")


def test_terminal_rendering_is_compact_and_rectangular():
    text = qr_terminal(URL)
    lines = text.splitlines()
    grid = expected_grid(URL)
    assert len(lines) == math.ceil(len(grid) / 2)
    assert {len(line) for line in lines} == {len(grid[0])}
    assert set(text) <= {" ", "\u2580", "\u2584", "\u2588", "\n"}
    # dark on light: the quiet zone is blank, the top-left finder corner is ink
    assert lines[0].strip() == ""
    assert lines[BORDER // 2][BORDER] in ("\u2580", "\u2588")


def test_terminal_rows_match_the_module_grid():
    grid = expected_grid(URL)
    glyph = {(False, False): " ", (True, False): "\u2580", (False, True): "\u2584", (True, True): "\u2588"}
    padded = [*grid, [False] * len(grid[0])] if len(grid) % 2 else grid
    expected = [
        "".join(glyph[(top, bottom)] for top, bottom in zip(padded[r], padded[r + 1], strict=True))
        for r in range(0, len(padded), 2)
    ]
    assert qr_terminal(URL).splitlines() == expected


def test_write_qr_by_suffix(tmp_path):
    png = write_qr(URL, tmp_path / "invite.png")
    svg = write_qr(URL, str(tmp_path / "invite.SVG"))
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert svg.stat().st_size > 0
    ET.fromstring(svg.read_bytes())


def test_write_qr_rejects_other_suffixes(tmp_path):
    with pytest.raises(ValueError, match=r"\.gif.*\.png or \.svg"):
        write_qr(URL, tmp_path / "invite.gif")
    assert not (tmp_path / "invite.gif").exists()


def test_empty_url_is_refused():
    with pytest.raises(ValueError):
        qr_png("")
