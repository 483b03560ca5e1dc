"""Photos made sober before they leave the device: the longest side brought down to 1,600 px,
re-encoded, and every metadata block (EXIF, with its GPS location) left behind.

Pillow is an optional, client-only extra (``pip install 'bocage[images]'``): the server never
decodes an image (it could not: they are encrypted).
"""

from __future__ import annotations

import io
from pathlib import PurePath

MAX_SIDE = 1600
JPEG_QUALITY = 82
#: The thumbnail that travels inside the sealed message (docs/protocol.md, 18): a JPEG of at most
#: this many bytes and this side, shown before the photo is fetched.
THUMB_MAX_BYTES = 8 * 1024
THUMB_SIDE = 160
THUMB_QUALITIES = (70, 55, 40, 25)
#: What is re-encoded; any other type (a PDF, a GIF that may be animated) is sent as it is.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff"})


#: The sizes an organisation may choose (chalicelib/domain/files.py): anything else the server
#: says is not believed (a photo of 1 px, or one never reduced, would be the server's doing).
SIDE_RANGE = (480, 4096)


def photo_side(chosen: object) -> int:
    """The organisation's choice when it is one, else the default."""
    low, high = SIDE_RANGE
    believable = isinstance(chosen, int) and not isinstance(chosen, bool) and low <= chosen <= high
    return chosen if believable else MAX_SIDE  # type: ignore[return-value]


class ImagesUnavailable(ValueError):
    """Pillow is missing: a photo would leave with its metadata (its location) if sent as it is."""


def compress_image(data: bytes, name: str, mime: str, *, max_side: int = MAX_SIDE) -> tuple[bytes, str, str]:
    """(bytes, name, mime) of the photo to send: resized, oriented, re-encoded, without metadata.

    Images with transparency stay PNG; the others become JPEG. Non-images come back unchanged."""
    if mime not in IMAGE_TYPES:
        return data, name, mime
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImagesUnavailable(
            "photos are compressed and stripped of their location before sending: "
            "install the images extra (pip install 'bocage[images]'), or send it as it is with --original"
        ) from None
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened)  # the orientation the EXIF said, then no EXIF
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        transparent = image.mode in {"RGBA", "LA"} or (image.mode == "P" and "transparency" in image.info)
        if transparent:
            image.save(out, "PNG", optimize=True)  # no pnginfo: no text chunks
            return out.getvalue(), str(PurePath(name).with_suffix(".png")), "image/png"
        image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
        return out.getvalue(), str(PurePath(name).with_suffix(".jpg")), "image/jpeg"


def thumbnail(data: bytes, mime: str) -> bytes | None:
    """A JPEG of at most 8 KB and 160 px of a photo, upright and without metadata; None for
    anything else, when Pillow is missing, or when no quality fits (a message then has none)."""
    if mime not in IMAGE_TYPES:
        return None
    try:
        from PIL import Image, ImageOps
    except ImportError:
        return None
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    for quality in THUMB_QUALITIES:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= THUMB_MAX_BYTES:
            return out.getvalue()
    return None
