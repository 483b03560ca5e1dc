"""The service worker's build stamp: the app shell's files and a version drawn from their bytes.

The worker (web/sw.js) precaches exactly what is served under /app/, and a browser installs a new
worker only when sw.js's own bytes change. So the list of files and a hash of all of them are
written into sw.js, by this one function: when ``bocage serve`` answers it and when
``make web-dist`` builds the files CloudFront serves. Any change to any file is a new version.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Protocol

#: The line of web/sw.js that carries the stamp; in the repository it reads the development value.
BUILD_LINE = re.compile(rb"^const BUILD = \{.*\};$", re.MULTILINE)


#: Files the app never shows itself: the install prompt's large icon (the browser fetches it once).
NOT_PRECACHED = frozenset({"icons/icon-512.png"})


class ShellSource(Protocol):
    def web_files(self) -> dict[str, Path]: ...

    def vendor_files(self) -> dict[str, Path]: ...


def shell_files(static: ShellSource, worker: str = "sw.js") -> dict[str, Path]:
    """Relative path under /app/ -> file, for every file the worker precaches (all but itself)."""
    files = {**static.web_files(), **static.vendor_files()}
    return {name: files[name] for name in sorted(files) if name != worker and name not in NOT_PRECACHED}


def shell_version(files: dict[str, Path]) -> str:
    """A short hash over every file's path and bytes: it changes when any of them does."""
    digest = hashlib.sha256()
    for relative, path in files.items():
        digest.update(relative.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def stamp_worker(static: ShellSource, source: bytes) -> bytes:
    """sw.js's source with its ``const BUILD = {...};`` line holding this shell's version and files."""
    if not BUILD_LINE.search(source):
        raise ValueError("sw.js has no `const BUILD = {...};` line to stamp")
    files = shell_files(static)
    build = {"version": shell_version(files), "files": list(files)}
    line = b"const BUILD = " + json.dumps(build, separators=(",", ":")).encode() + b";"
    return BUILD_LINE.sub(lambda _: line, source, count=1)
