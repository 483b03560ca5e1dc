"""The CLI's progress bar for an upload or a download: one line on stderr (stdout is the
command's JSON), redrawn only when the whole percent changes, so a 25 MB file draws it at most a
hundred times however small the blocks."""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self._label = label
        self._stream = stream or sys.stderr
        self._shown: int | None = None

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent == self._shown:
            return
        if self._shown is not None and percent < self._shown < 100:
            self._stream.write("\n")  # an upload tried again starts a new line from 0
        self._shown = percent
        filled = WIDTH * percent // 100
        bar = "#" * filled + " " * (WIDTH - filled)
        self._stream.write(f"\r{self._label} [{bar}] {percent:3d} %  {_size(done)} of {_size(total)}")
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


def wanted(choice: str) -> bool:
    """``--progress auto`` draws the bar only on a terminal."""
    return choice == "on" or (choice == "auto" and sys.stderr.isatty())


def _size(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    return f"{count / 1000:.0f} kB" if count >= 1000 else f"{count} B"
