"""The public tribe's poster: A4, the names, and a QR code of the join link big enough to scan
from a metre, in SVG and in a hand-written PDF that a reader can parse."""

from __future__ import annotations

import re

import segno

from bocage.client.poster import (
    A4_MM,
    BOLD_EM,
    MM_TO_PT,
    QR_MM,
    SUBTITLE_MM,
    TEXT_WIDTH_MM,
    TITLE_MM,
    poster_pdf,
    poster_svg,
)
from tests.posters import assert_one_a4_page_with_sound_xref

URL = (
    "https://bocage.example/app/#/join?server=https%3A%2F%2Fbocage.example&link=j_abcdefghijklmnop"
    "&org=o_abcdefghijklmnop&channel=c_abcdefghijklmnop&ticket=" + "A" * 43 + "&root=" + "B" * 43
)


def _modules(
    rects: list[tuple[float, float, float, float]], module: float, left: float, top: float
) -> set[tuple[int, int]]:
    dark = set()
    for x, y, w, _ in rects:
        row, col = round((y - top) / module), round((x - left) / module)
        for k in range(round(w / module)):
            dark.add((row, col + k))
    return dark


def _expected(url: str) -> tuple[int, set[tuple[int, int]]]:
    matrix = segno.make_qr(url, error="m").matrix
    dark = {(r + 4, c + 4) for r, row in enumerate(matrix) for c, v in enumerate(row) if v}
    return len(matrix) + 8, dark


def test_the_svg_draws_exactly_the_join_links_qr_code_150_mm_wide() -> None:
    svg = poster_svg("Mairie de Saint-Éloi <& Co>", "La vie du village", URL)
    assert 'width="210mm" height="297mm" viewBox="0 0 210 297"' in svg
    assert "Mairie de Saint-Éloi &lt;&amp; Co&gt;" in svg and "La vie du village" in svg
    size, dark = _expected(URL)
    module = QR_MM / size
    rects: list[tuple[float, float, float, float]] = [
        (float(m[1]), float(m[2]), float(m[3]), float(m[4]))
        for m in re.finditer(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/>', svg)
    ]
    left = (A4_MM[0] - QR_MM) / 2
    assert _modules(rects, module, left, 75.0) == dark
    assert QR_MM >= 100  # a phone reads a code from ~10 times its width: a metre needs 10 cm


def test_the_pdf_is_one_a4_page_with_a_sound_cross_reference_table() -> None:
    pdf = poster_pdf("Mairie de Saint-Éloi", "Marché (du dimanche)", URL)
    assert_one_a4_page_with_sound_xref(pdf)
    other = poster_pdf("C\u0153ur d\u2019E\u0301loi", "5 \u20ac \u6f22", URL)  # beyond Latin-1
    assert b"(C\x9cur d\x92\xc9loi) Tj" in other and b"(5 \x80 ?) Tj" in other
    assert "Mairie de Saint-Éloi".encode("latin-1") in pdf and b"March\xe9 \\(du dimanche\\)" in pdf
    size, dark = _expected(URL)
    runs = re.findall(rb"[\d.]+ [\d.]+ ([\d.]+) [\d.]+ re", pdf)
    module = QR_MM / size * MM_TO_PT
    assert sum(round(float(w) / module) for w in runs) == len(dark)


def test_a_long_name_is_set_smaller_to_fit_the_page_and_a_short_one_is_not() -> None:
    long_org = "Communauté de communes du Pays de Landerneau-Daoulas"
    svg = poster_svg(long_org, "Vie du village", URL)
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
    assert sizes[0] < TITLE_MM and sizes[0] * BOLD_EM * len(long_org) <= TEXT_WIDTH_MM
    assert sizes[1:] == [SUBTITLE_MM, 5.0, 5.0]
    short = [
        float(s)
        for s in re.findall(r'font-size="([\d.]+)"', poster_svg("Mairie de Plouzané", "Vie du village", URL))
    ]
    assert short == [TITLE_MM, SUBTITLE_MM, 5.0, 5.0]
