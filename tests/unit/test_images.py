"""Photos made sober on the device (bocage/client/images.py): resized, oriented, re-encoded,
and no metadata (the EXIF location) left in what is encrypted and sent."""

from __future__ import annotations

import io
import random

from PIL import Image

from bocage.client.images import MAX_SIDE, THUMB_MAX_BYTES, compress_image, photo_side, thumbnail

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def photo_with_location(width: int, height: int, *, orientation: int = 1) -> bytes:
    """A noisy phone-sized photo with a GPS position and a camera model in its EXIF."""
    rng = random.Random(7)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    exif = Image.Exif()
    exif[0x0110] = "Phone 12"  # Model
    exif[ORIENTATION] = orientation
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def test_a_phone_photo_is_resized_reencoded_and_loses_its_location() -> None:
    original = photo_with_location(4000, 3000)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)
    data, name, mime = compress_image(original, "IMG_0042.JPEG", "image/jpeg")
    assert (name, mime) == ("IMG_0042.jpg", "image/jpeg")
    sent = Image.open(io.BytesIO(data))
    assert max(sent.size) == MAX_SIDE and sent.size == (1600, 1200)
    assert not sent.getexif() and "exif" not in sent.info
    assert b"Phone 12" not in data
    assert len(data) < len(original) / 2


def test_the_orientation_is_applied_before_the_exif_goes() -> None:
    data, _, _ = compress_image(
        photo_with_location(800, 600, orientation=6), "p.jpg", "image/jpeg"
    )  # rotated 90°
    assert Image.open(io.BytesIO(data)).size == (600, 800)


def test_a_transparent_image_stays_png_and_a_document_is_untouched() -> None:
    image = Image.new("RGBA", (2000, 1000), (10, 20, 30, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    data, name, mime = compress_image(out.getvalue(), "logo.png", "image/png")
    assert (name, mime) == ("logo.png", "image/png")
    assert Image.open(io.BytesIO(data)).size == (1600, 800)
    pdf = b"%PDF-1.7 minutes"
    assert compress_image(pdf, "cr.pdf", "application/pdf") == (pdf, "cr.pdf", "application/pdf")


def test_a_photo_s_thumbnail_fits_in_the_message() -> None:
    """At most 8 KB and 160 px even for pure noise (the worst case for JPEG), upright, no EXIF."""
    original = photo_with_location(3000, 2000, orientation=6)
    thumb = thumbnail(original, "image/jpeg")
    assert thumb is not None and len(thumb) <= THUMB_MAX_BYTES
    shown = Image.open(io.BytesIO(thumb))
    assert shown.format == "JPEG" and shown.size == (107, 160)  # portrait, as the EXIF said
    assert not shown.getexif() and b"Phone 12" not in thumb
    assert thumbnail(b"%PDF-1.4", "application/pdf") is None  # documents have none


def test_the_organisations_photo_size_is_believed_only_within_its_range() -> None:
    assert photo_side(1280) == 1280
    for said in (0, -5, 1, 100_000, "1280", None, True, 1280.5):
        assert photo_side(said) == MAX_SIDE
