"""Checks of a public tribe's A4 poster PDF shared by the CLI's tests and the browser's: both
clients write the PDF by hand, so both must give readers what they rely on (a cross-reference
table whose offsets land on their objects, a stream of its declared length, an A4 page)."""

from __future__ import annotations

import re
from typing import Any

import segno
from segno import consts

from bocage.client.poster import A4_MM, MM_TO_PT


def assert_one_a4_page_with_sound_xref(pdf: bytes) -> None:
    """The header, the trailer's startxref, every xref entry on its "N 0 obj", the content
    stream's /Length, and the A4 MediaBox."""
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    start = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[start:].startswith(b"xref\n0 ")
    section, trailer = pdf[start:].split(b"trailer", 1)
    head, free, *entries = section.split(b"\n")[1:-1]
    count = int(head.split(b" ")[1])
    assert free == b"0000000000 65535 f " and len(entries) == count - 1 >= 6
    assert f"/Size {count} ".encode() in trailer
    for number, line in enumerate(entries, start=1):
        assert re.fullmatch(rb"\d{10} 00000 n ", line), line
        offset = int(line.split(b" ")[0])
        assert pdf[offset:].startswith(f"{number} 0 obj\n".encode())
    length = int(re.search(rb"<< /Length (\d+) >>\nstream\n", pdf)[1])  # type: ignore[index]
    body = pdf.split(b"stream\n", 1)[1]
    assert body[length:].startswith(b"\nendstream")
    width, height = (f"{v * MM_TO_PT:.2f}".encode() for v in A4_MM)
    assert b"/MediaBox [0 0 " + width + b" " + height + b"]" in pdf


def runs_to_modules(runs: list[tuple[int, int, int]]) -> set[tuple[int, int]]:
    """The dark modules (row, column) of dark runs (row, column, length)."""
    return {(row, col + k) for row, col, n in runs for k in range(n)}


# The eight data masks of the QR standard (ISO/IEC 18004, 7.8.2), by row i and column j.
MASKS = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)


def _gf_mul(a: int, b: int) -> int:
    return 0 if 0 in (a, b) else consts.GALIOS_EXP[(consts.GALIOS_LOG[a] + consts.GALIOS_LOG[b]) % 255]


def _codeword_ok(block: list[int], ec_count: int) -> bool:
    """Reed-Solomon: a block without error has all its syndromes zero."""
    for k in range(ec_count):
        syndrome = 0
        for value in block:
            syndrome = _gf_mul(syndrome, consts.GALIOS_EXP[k]) ^ value
        if syndrome:
            return False
    return True


def _function_modules(n: int, version: int) -> set[tuple[int, int]]:
    """The modules that hold no data: finders with their separators and format bits, timing
    lines, alignment patterns and, from version 7, the version bits."""
    taken: set[tuple[int, int]] = set()

    def box(top: int, left: int, height: int, width: int) -> None:
        taken.update((r, c) for r in range(top, top + height) for c in range(left, left + width))

    box(0, 0, 9, 9)
    box(0, n - 8, 9, 8)
    box(n - 8, 0, 8, 9)
    box(6, 0, 1, n)
    box(0, 6, n, 1)
    centres = consts.ALIGNMENT_POS[version - 2] if version > 1 else ()
    for r in centres:
        for c in centres:
            if (r, c) not in {(6, 6), (6, n - 7), (n - 7, 6)}:
                box(r - 2, c - 2, 5, 5)
    if version >= 7:
        box(0, n - 11, 6, 3)
        box(n - 11, 0, 3, 6)
    return taken


# The 15 format bits' first copy, beside the top-left finder.
FORMAT_CELLS = [(8, c) for c in (0, 1, 2, 3, 4, 5, 7, 8)] + [(r, 8) for r in (7, 5, 4, 3, 2, 1, 0)]


def _codewords(grid: list[list[bool]], version: int, mask: int) -> list[int]:
    """The data modules read in the standard's zigzag (two columns at a time, from the bottom
    right, up then down), unmasked, eight bits to a codeword."""
    n, taken = len(grid), _function_modules(len(grid), version)
    bits: list[int] = []
    upward, col = True, n - 1
    while col > 0:
        if col == 6:  # the vertical timing pattern is skipped
            col -= 1
        for row in range(n - 1, -1, -1) if upward else range(n):
            bits += [int(grid[row][c] ^ MASKS[mask](row, c)) for c in (col, col - 1) if (row, c) not in taken]
        upward, col = not upward, col - 2
    return [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - 7, 8)]


def _data_bits(codewords: list[int], version: int) -> str:
    """The data codewords, de-interleaved from their blocks once each block's check holds."""
    groups: Any = consts.ECC[version][consts.ERROR_LEVEL_M]  # type: ignore[index]  # segno's table, untyped
    shapes = [(g.num_data, g.num_total - g.num_data) for g in groups for _ in range(g.num_blocks)]
    blocks: list[list[int]] = [[] for _ in shapes]
    at = 0
    for part in (0, 1):  # data codewords interleaved across the blocks, then their EC codewords
        for k in range(max(shape[part] for shape in shapes)):
            for block, shape in zip(blocks, shapes, strict=True):
                if k < shape[part]:
                    block.append(codewords[at])
                    at += 1
    for block, (_, ec_count) in zip(blocks, shapes, strict=True):
        assert _codeword_ok(block, ec_count), "a block fails its Reed-Solomon check"
    return "".join(f"{v:08b}" for block, (data, _) in zip(blocks, shapes, strict=True) for v in block[:data])


def decode_qr(dark: set[tuple[int, int]], size: int) -> str:
    """What a phone reads from a level-M QR code drawn with a quiet zone of 4 (`size` modules
    across): the format bits name the mask, the data modules in their zigzag give codewords, every
    block's Reed-Solomon check must hold, and the byte-mode segment is the text. segno supplies
    only the standard's tables (format bits, alignment positions, the blocks of each version)."""
    n = size - 8
    version = (n - 17) // 4
    grid = [[(r + 4, c + 4) in dark for c in range(n)] for r in range(n)]
    references = [segno.make_qr("0", error="m", version=version, mask=m, boost_error=False) for m in range(8)]
    masks = [
        m
        for m, ref in enumerate(references)
        if all(grid[r][c] == bool(ref.matrix[r][c]) for r, c in FORMAT_CELLS)
    ]
    assert len(masks) == 1, "the format bits name no level-M mask"
    stream = _data_bits(_codewords(grid, version, masks[0]), version)
    assert stream[:4] == "0100", "not a byte-mode segment"
    width = 8 if version < 10 else 16
    length = int(stream[4 : 4 + width], 2)
    body = stream[4 + width : 4 + width + 8 * length]
    return bytes(int(body[i : i + 8], 2) for i in range(0, len(body), 8)).decode("utf-8")
