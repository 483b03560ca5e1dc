"""QR codes for activation links: PNG for mail, SVG for print, text for a terminal.

Pure functions over segno, no I/O except ``write_qr``. Always a full QR code
(never a Micro QR, which many phone scanners cannot read), error correction at
least "M": segno raises it for free when the symbol size stays the same.
"""

from __future__ import annotations

import io
from itertools import zip_longest
from pathlib import Path

import segno

#: Quiet zone in modules; the QR specification asks for four.
BORDER = 4
SVG_TITLE = "Bocage activation"

# Two module rows per text line: (top dark, bottom dark) -> glyph. Blocks draw in
# the foreground colour, so on a light terminal dark modules come out dark.
_HALF_BLOCKS = {
    (False, False): " ",
    (True, False): "\u2580",  # upper half block
    (False, True): "\u2584",  # lower half block
    (True, True): "\u2588",  # full block
}


def _make(url: str) -> segno.QRCode:
    if not url:
        raise ValueError("cannot encode an empty activation URL")
    return segno.make_qr(url, error="m")


def qr_png(url: str, scale: int = 6) -> bytes:
    """The QR code as a black-on-white PNG, ``scale`` pixels per module."""
    out = io.BytesIO()
    _make(url).save(out, kind="png", scale=scale, border=BORDER, dark="#000", light="#fff")
    return out.getvalue()


def qr_svg(url: str) -> str:
    """A standalone SVG document with an opaque white background, so it scans on any page."""
    out = io.BytesIO()
    _make(url).save(
        out,
        kind="svg",
        scale=6,
        border=BORDER,
        dark="#000",
        light="#fff",
        title=SVG_TITLE,
        xmldecl=True,
        svgns=True,
    )
    return out.getvalue().decode("utf-8")


def qr_terminal(url: str, border: int = BORDER) -> str:
    """The QR code as text, two module rows per line, for a light-background terminal.

    segno's own compact writer assumes a dark terminal (dark modules are spaces),
    hence this rendering. Every line has the same width, quiet zone included.
    """
    qr = _make(url)
    rows = [[bool(module) for module in row] for row in qr.matrix_iter(scale=1, border=border)]
    width = len(rows[0])
    pairs = zip_longest(rows[0::2], rows[1::2], fillvalue=[False] * width)
    return (
        "\n".join(
            "".join(_HALF_BLOCKS[pair] for pair in zip(top, bottom, strict=True)) for top, bottom in pairs
        )
        + "\n"
    )


def write_qr(url: str, path: str | Path) -> Path:
    """Write the QR code as PNG or SVG, chosen by the file suffix; return the path."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".png":
        target.write_bytes(qr_png(url))
    elif suffix == ".svg":
        target.write_text(qr_svg(url), encoding="utf-8")
    else:
        raise ValueError(f"unsupported QR file type {target.suffix!r} for {target}: use .png or .svg")
    return target
