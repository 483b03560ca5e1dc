"""A public tribe's printable poster: A4 portrait, the organisation's and the tribe's names and
the join link's QR code, as SVG or PDF. Pure functions, no dependency beyond segno.

The QR code is 150 mm wide: a phone reads a code from about ten times its width, so this one
scans from well over a metre even at the version a join link needs (~70 modules, 2 mm each).
The PDF is written by hand (one page, rectangles and the standard Helvetica font): a library
would add megabytes for what is a few hundred bytes of drawing operators.
"""

from __future__ import annotations

import html
import unicodedata

import segno

A4_MM = (210.0, 297.0)
QR_MM = 150.0
BORDER_MODULES = 4
MM_TO_PT = 72 / 25.4
TITLE_MM, SUBTITLE_MM, NOTE_MM = 14.0, 10.0, 5.0
TEXT_WIDTH_MM = 180.0  # a line never runs into the page's 15 mm margins
BOLD_EM = 0.62  # Helvetica Bold's wide letters (capitals, m, w) on average, with room to spare


def _dark_runs(url: str) -> tuple[int, list[tuple[int, int, int]]]:
    """The QR symbol's size in modules (quiet zone included) and its dark runs (row, column, length)."""
    if not url:
        raise ValueError("cannot print a poster without a join link")
    matrix = [list(row) for row in segno.make_qr(url, error="m").matrix]
    size = len(matrix) + 2 * BORDER_MODULES
    runs = []
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                runs.append((r + BORDER_MODULES, start + BORDER_MODULES, c - start))
            else:
                c += 1
    return size, runs


def _lines(org_name: str, tribe_name: str) -> list[tuple[str, float, float, bool]]:
    """(text, baseline from the top in mm, size in mm, bold) of the poster's words. A long name
    ("Communauté de communes du Pays de ...") is set smaller to fit the page's width."""
    return [
        (org_name, 40.0, _fitted(org_name, TITLE_MM), True),
        (tribe_name, 58.0, _fitted(tribe_name, SUBTITLE_MM), False),
        ("Scannez pour suivre : ni e-mail, ni numéro de téléphone", 250.0, NOTE_MM, False),
        ("Scan to follow: no e-mail, no phone number", 260.0, NOTE_MM, False),
    ]


def _fitted(text: str, size_mm: float) -> float:
    """``size_mm``, or less so that the line fits TEXT_WIDTH_MM (bold's width: the widest)."""
    return round(min(size_mm, TEXT_WIDTH_MM / (BOLD_EM * max(len(text), 1))), 2)


def poster_svg(org_name: str, tribe_name: str, join_url: str) -> str:
    """The poster as an SVG document, in millimetres."""
    size, runs = _dark_runs(join_url)
    module = QR_MM / size
    left, top = (A4_MM[0] - QR_MM) / 2, 75.0
    rects = "".join(
        f'<rect x="{left + c * module:.3f}" y="{top + r * module:.3f}" '
        f'width="{n * module + 0.01:.3f}" height="{module + 0.01:.3f}"/>'
        for r, c, n in runs
    )
    texts = "".join(
        f'<text x="105" y="{y}" font-size="{s}" text-anchor="middle" '
        f'font-weight="{"bold" if bold else "normal"}">{html.escape(t)}</text>'
        for t, y, s, bold in _lines(org_name, tribe_name)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" viewBox="0 0 210 297">'
        f"<title>{html.escape(org_name)} - {html.escape(tribe_name)}</title>"
        '<rect width="210" height="297" fill="#fff"/>'
        f'<g fill="#000">{rects}</g>'
        f'<g font-family="Helvetica, Arial, sans-serif" fill="#000">{texts}</g>'
        "</svg>\n"
    )


def poster_pdf(org_name: str, tribe_name: str, join_url: str) -> bytes:
    """The same poster as a one-page PDF 1.4 (points; the origin at the bottom left)."""
    size, runs = _dark_runs(join_url)
    module = QR_MM / size * MM_TO_PT
    page_w, page_h = A4_MM[0] * MM_TO_PT, A4_MM[1] * MM_TO_PT
    left, top = (A4_MM[0] - QR_MM) / 2 * MM_TO_PT, page_h - 75.0 * MM_TO_PT
    ops = ["0 g"]
    ops += [
        f"{left + c * module:.2f} {top - (r + 1) * module:.2f} {n * module:.2f} {module:.2f} re"
        for r, c, n in runs
    ]
    ops.append("f")
    for text, y, height, bold in _lines(org_name, tribe_name):
        pt = height * MM_TO_PT
        width = _helvetica_width(text) * pt  # approximate: centres the line well enough
        font = "/F2" if bold else "/F1"
        escaped = _pdf_text(text)
        x, baseline = (page_w - width) / 2, page_h - y * MM_TO_PT
        ops.append(f"BT {font} {pt:.1f} Tf {x:.2f} {baseline:.2f} Td ({escaped}) Tj ET")
    content = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page_w:.2f} {page_h:.2f}] "
            "/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> /Contents 4 0 R >>"
        ).encode(),
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_text(text: str) -> str:
    """A PDF string in WinAnsi (Windows-1252: French needs its œ, typographic apostrophe and €,
    which Latin-1 lacks), one character per byte; accents typed as combining marks are composed
    first, and characters outside it become '?'."""
    latin = unicodedata.normalize("NFC", text).encode("cp1252", "replace").decode("latin-1")
    return latin.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _helvetica_width(text: str) -> float:
    """The text's width in ems, near enough for centring (Helvetica's average advance)."""
    return 0.55 * len(text)
